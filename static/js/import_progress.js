// Import page: poll the job's JSON until it finishes, then reload to show the full report.
(function () {
  "use strict";
  const section = document.getElementById("import-progress");
  if (!section || section.dataset.finished === "true") return;
  const bar = document.getElementById("import-bar");
  const counts = document.getElementById("import-counts");
  const status = document.getElementById("import-status");
  // The import's status code, as the page names it (annotation.models.ImportStatus).
  const STATUS_WORDS = {
    queued: gettext("Queued"),
    running: gettext("Running"),
    succeeded: gettext("Succeeded"),
    failed: gettext("Failed"),
  };

  async function poll() {
    try {
      const response = await fetch(section.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        const job = await response.json();
        bar.max = Math.max(job.total_rows, 1);
        bar.value = job.processed_rows;
        status.textContent = STATUS_WORDS[job.status] || job.status;
        counts.textContent = interpolate(
          gettext("%(done)s of %(total)s rows: %(created)s created, %(duplicates)s duplicates, %(rejected)s rejected."),
          {
            done: job.processed_rows,
            total: job.total_rows,
            created: job.created_count,
            duplicates: job.duplicate_count,
            rejected: job.rejected_count,
          },
          true
        );
        if (job.is_finished) {
          window.location.reload();
          return;
        }
      }
    } catch (error) {
      status.textContent = gettext("waiting for the server");
    }
    window.setTimeout(poll, 1500);
  }
  window.setTimeout(poll, 1000);
})();
