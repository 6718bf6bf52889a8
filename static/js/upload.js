// Upload page: send each chosen or dropped file to POST /api/images/ on its own, three at a
// time, and show its progress and result in its own row.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("upload-files");
  const zone = document.getElementById("drop-zone");
  const results = document.getElementById("upload-results");
  const summary = document.getElementById("upload-summary");
  const patient = document.getElementById("upload-patient");
  const capturedAt = document.getElementById("upload-captured-at");
  const csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const apiUrl = form.dataset.apiUrl;
  const imageUrl = (id) => form.dataset.imageUrl.replace(/0\/$/, id + "/");
  const PARALLEL = 3;
  const queue = [];
  let running = 0;
  const counts = { stored: 0, duplicate: 0, rejected: 0 };
  const fill = (text, values) => interpolate(text, values, true);
  const imageLink = (id) => ({ href: imageUrl(id), text: fill(gettext("Image %(id)s"), { id: id }) });

  function addRow(file) {
    const row = document.createElement("li");
    row.className = "upload-row";
    const name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = file.name;
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", fill(gettext("Upload progress of %(name)s"), { name: file.name }));
    const status = document.createElement("span");
    status.className = "upload-status";
    status.textContent = gettext("waiting");
    row.append(name, bar, status);
    results.append(row);
    return { row, bar, status };
  }

  function finish(item, outcome, message, link) {
    item.row.dataset.outcome = outcome;
    item.bar.value = 100;
    item.status.textContent = message;
    if (link) {
      const a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      item.status.append(" ", a);
    }
    counts[outcome] += 1;
    summary.textContent = fill(gettext("%(stored)s stored, %(duplicate)s already stored, %(rejected)s rejected."), counts);
    running -= 1;
    next();
  }

  function send(item) {
    const body = new FormData();
    body.append("file", item.file);
    body.append("patient", item.patient);
    if (item.capturedAt) body.append("captured_at", item.capturedAt);
    const request = new XMLHttpRequest();
    request.open("POST", apiUrl);
    request.setRequestHeader("X-CSRFToken", csrfToken);
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) item.bar.value = Math.round((95 * event.loaded) / event.total);
    });
    request.addEventListener("load", () => {
      let data = {};
      try { data = JSON.parse(request.responseText); } catch (error) { data = { error: gettext("unexpected answer from the server") }; }
      if (request.status === 201) {
        const stored = data.face_box ? gettext("Stored (face found).") : gettext("Stored (no face found).");
        finish(item, "stored", stored, imageLink(data.id));
      } else if (request.status === 409) {
        const id = data.details && data.details.existing_id;
        finish(item, "duplicate", gettext("Already stored."), id ? imageLink(id) : null);
      } else {
        const why = data.error || fill(gettext("error %(status)s"), { status: request.status });
        finish(item, "rejected", fill(gettext("Rejected: %(reason)s"), { reason: why }));
      }
    });
    request.addEventListener("error", () => finish(item, "rejected", gettext("Rejected: the connection failed.")));
    item.status.textContent = gettext("uploading");
    request.send(body);
  }

  function next() {
    while (running < PARALLEL && queue.length) {
      running += 1;
      send(queue.shift());
    }
  }

  function enqueue(files) {
    const code = patient.value.trim();
    if (!code) {
      summary.textContent = gettext("Enter the patient code first.");
      patient.focus();
      return;
    }
    const when = capturedAt.value ? new Date(capturedAt.value).toISOString() : "";
    for (const file of files) {
      queue.push({ ...addRow(file), file, patient: code, capturedAt: when });
    }
    next();
  }

  input.addEventListener("change", () => {
    enqueue(Array.from(input.files));
    input.value = "";
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("drag-over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("drag-over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("drag-over");
    enqueue(Array.from(event.dataTransfer.files));
  });
})();
