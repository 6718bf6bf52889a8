// Live progress of training runs: every queued or running row polls its small JSON endpoint
// until the run ends. The page renders the current state on load, so a reload loses nothing.
(function () {
  "use strict";
  var POLL_MS = 2000;
  var CANCEL_POLL_MS = 400;
  var ACTIVE = { queued: true, running: true };
  var STATUS_LABELS = {
    queued: gettext("Queued"),
    running: gettext("Running"),
    succeeded: gettext("Succeeded"),
    failed: gettext("Failed"),
    cancelled: gettext("Cancelled"),
  };
  function fill(text, values) { return interpolate(text, values, true); }

  function percent(progress) { return Math.round((progress || 0) * 100) + "%"; }

  function progressText(run) {
    var parts = [percent(run.progress)];
    if (run.epoch && run.status === "succeeded" && run.epochs && run.epoch < run.epochs) {
      // Early stopping: say how far training went, not the configured maximum.
      parts.push(fill(gettext("stopped early after epoch %(epoch)s of %(epochs)s"), { epoch: run.epoch, epochs: run.epochs }));
    } else if (run.epoch && run.epochs) {
      parts.push(fill(gettext("epoch %(epoch)s/%(epochs)s"), { epoch: run.epoch, epochs: run.epochs }));
    } else if (run.epoch) {
      parts.push(fill(gettext("epoch %(epoch)s"), { epoch: run.epoch }));
    }
    if (run.loss !== null && run.loss !== undefined) { parts.push(fill(gettext("loss %(loss)s"), { loss: Number(run.loss).toFixed(4) })); }
    if (ACTIVE[run.status] && run.eta_seconds) { parts.push(fill(gettext("ETA %(eta)s s"), { eta: Math.round(run.eta_seconds) })); }
    return parts.join(" · ");
  }

  function field(row, name) { return row.querySelector('[data-field="' + name + '"]'); }

  function render(row, run) {
    row.dataset.status = run.status;
    var status = field(row, "status");
    status.textContent = STATUS_LABELS[run.status] || run.status;
    status.className = "run-status status-" + run.status;
    var bar = field(row, "bar");
    bar.value = run.progress || 0;
    bar.textContent = percent(run.progress);
    field(row, "text").textContent = progressText(run);
    field(row, "message").textContent = run.message_text || run.message || "";
    var cancel = field(row, "cancel");
    if (cancel && (!ACTIVE[run.status] || run.cancel_requested)) {
      cancel.querySelector("button").disabled = true;
    }
    var result = field(row, "result");
    if (run.model_version && !result.querySelector("a")) {
      var link = document.createElement("a");
      link.href = "/results/" + run.model_version + "/";
      link.textContent = run.model_version_name;
      result.replaceChildren(link);
    } else if (run.status === "failed" && run.error && !result.textContent.trim()) {
      var details = document.createElement("details");
      var summary = document.createElement("summary");
      summary.className = "error";
      summary.textContent = gettext("Error");
      var pre = document.createElement("pre");
      pre.className = "run-error";
      pre.textContent = run.error;
      details.append(summary, pre);
      result.replaceChildren(details);
    }
  }

  function follow(row) {
    var url = row.dataset.progressUrl;
    function poll() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (run) {
          render(row, run);
          // After a cancel, look more often: the worker stops within a batch and the row should say so.
          if (ACTIVE[run.status]) { window.setTimeout(poll, run.cancel_requested ? CANCEL_POLL_MS : POLL_MS); }
        })
        .catch(function () { window.setTimeout(poll, POLL_MS * 3); });
    }
    poll();
  }

  document.querySelectorAll("tr[data-run-id]").forEach(function (row) {
    if (ACTIVE[row.dataset.status]) { follow(row); }
  });
})();
