// Import page: poll the job's JSON until it finishes, then reload to show the full report.
(function () {
  "use strict";
  const section = document.getElementById("import-progress");
  if (!section || section.dataset.finished === "true") return;
  const bar = document.getElementById("import-bar");
  const counts = document.getElementById("import-counts");
  const status = document.getElementById("import-status");

  async function poll() {
    try {
      const response = await fetch(section.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        const job = await response.json();
        bar.max = Math.max(job.total_rows, 1);
        bar.value = job.processed_rows;
        status.textContent = job.status;
        counts.textContent = job.processed_rows + " of " + job.total_rows + " rows: " + job.created_count + " created, " +
          job.duplicate_count + " duplicates, " + job.rejected_count + " rejected.";
        if (job.is_finished) {
          window.location.reload();
          return;
        }
      }
    } catch (error) {
      status.textContent = "waiting for the server";
    }
    window.setTimeout(poll, 1500);
  }
  window.setTimeout(poll, 1000);
})();
