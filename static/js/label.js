// Keyboard labeling queue: fetch the next image, save a score with one key, undo, skip, zoom.
(function () {
  "use strict";

  const root = document.getElementById("labeling");
  if (!root) return;

  const queueUrl = root.dataset.queueUrl;
  const undoUrl = root.dataset.undoUrl;
  const csrfToken = root.querySelector("input[name=csrfmiddlewaretoken]").value;

  const image = document.getElementById("label-image");
  const faceBox = document.getElementById("face-box");
  const frame = document.getElementById("image-frame");
  const meta = document.getElementById("image-meta");
  const empty = document.getElementById("queue-empty");
  const loading = document.getElementById("queue-loading");
  const status = document.getElementById("label-status");
  const suggestion = document.getElementById("suggestion");
  const showSuggestion = document.getElementById("show-suggestion");
  const recent = document.getElementById("recent-labels");
  const zoomButton = document.getElementById("zoom-button");

  const state = {
    current: null, // the queue item on screen
    skipped: [], // ids passed over this session, sent back so the queue moves on
    saved: new Map(), // image id -> queue item, to show an image again after undo
    busy: false,
    zoomed: false,
  };

  function kind() {
    return root.querySelector("input[name=kind]:checked").value;
  }

  function setKind(value) {
    root.querySelector(`input[name=kind][value=${value}]`).checked = true;
    say(value === "observer" ? "Observer score selected." : "Self-report selected.");
  }

  function say(message, isError) {
    status.textContent = message;
    status.classList.toggle("error", Boolean(isError));
  }

  async function api(url, options) {
    const response = await fetch(url, {
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken, "Content-Type": "application/json", Accept: "application/json" },
      ...options,
    });
    let body = null;
    if (response.status !== 204) {
      body = await response.json().catch(() => null);
    }
    return { status: response.status, ok: response.ok, body };
  }

  function show(item) {
    state.current = item;
    loading.hidden = true;
    if (!item) {
      image.hidden = true;
      meta.hidden = true;
      faceBox.hidden = true;
      empty.hidden = false;
      return;
    }
    empty.hidden = true;
    image.hidden = false;
    meta.hidden = false;
    image.src = item.file_url;
    image.alt = `Face image ${item.id} of patient ${item.patient}`;
    document.getElementById("image-id").textContent = item.id;
    document.getElementById("image-patient").textContent = item.patient;
    document.getElementById("image-reason").textContent =
      item.reason === "second_observer" ? "needs a second observer" : "not labeled yet";
    document.getElementById("image-face").textContent = item.face_box ? "face box shown" : "no face found";
    placeFaceBox(item);
    setZoom(state.zoomed);
  }

  function placeFaceBox(item) {
    if (!item.face_box) {
      faceBox.hidden = true;
      return;
    }
    const [x, y, w, h] = item.face_box;
    faceBox.style.left = `${(100 * x) / item.width}%`;
    faceBox.style.top = `${(100 * y) / item.height}%`;
    faceBox.style.width = `${(100 * w) / item.width}%`;
    faceBox.style.height = `${(100 * h) / item.height}%`;
    faceBox.hidden = false;
  }

  function setZoom(on) {
    state.zoomed = on;
    zoomButton.setAttribute("aria-pressed", String(on));
    const item = state.current;
    if (!on || !item) {
      frame.style.transform = "";
      return;
    }
    // Zoom on the face when there is one, else on the centre of the image.
    const [x, y, w, h] = item.face_box || [0, 0, item.width, item.height];
    const scale = Math.min(3, Math.max(1, 0.8 * Math.min(item.width / w, item.height / h)));
    frame.style.transformOrigin = `${(100 * (x + w / 2)) / item.width}% ${(100 * (y + h / 2)) / item.height}%`;
    frame.style.transform = `scale(${scale.toFixed(2)})`;
  }

  async function loadNext() {
    loading.hidden = false;
    const url = state.skipped.length ? `${queueUrl}?skip=${state.skipped.join(",")}` : queueUrl;
    const result = await api(url, { method: "GET" });
    if (result.status === 204) {
      show(null);
    } else if (result.ok) {
      show(result.body);
    } else {
      loading.hidden = true;
      say(`Could not load the next image: ${result.body ? result.body.error : result.status}`, true);
    }
  }

  function remember(label, item) {
    state.saved.set(item.id, item);
    const entry = document.createElement("li");
    entry.dataset.labelId = label.id;
    entry.textContent = `Image ${label.image}: NRS ${label.nrs} (${label.kind === "observer" ? "observer" : "self-report"})`;
    recent.prepend(entry);
  }

  async function save(nrs) {
    const item = state.current;
    if (!item || state.busy) return;
    state.busy = true;
    try {
      const result = await api(`/api/images/${item.id}/labels/`, {
        method: "POST",
        body: JSON.stringify({ nrs: nrs, kind: kind() }),
      });
      if (result.status !== 201) {
        say(`Not saved: ${result.body ? result.body.error : result.status}`, true);
        return;
      }
      remember(result.body, item);
      say(`Saved NRS ${nrs} for image ${item.id}.`);
      if (showSuggestion.checked) {
        await showModelSuggestion(item.id);
      } else {
        suggestion.hidden = true;
      }
      await loadNext();
    } finally {
      state.busy = false;
    }
  }

  async function showModelSuggestion(imageId) {
    const result = await api(`/api/images/${imageId}/suggestion/`, { method: "GET" });
    suggestion.hidden = false;
    suggestion.textContent = "";
    const heading = document.createElement("strong");
    if (!result.ok) {
      heading.textContent = `No model suggestion for image ${imageId}: `;
      suggestion.append(heading, result.body && result.body.error ? result.body.error : `status ${result.status}`);
      return;
    }
    const body = result.body;
    if (!body.face_found) {
      heading.textContent = `No model suggestion for image ${imageId}: `;
      suggestion.append(heading, body.reason);
      return;
    }
    heading.textContent = `Model ${body.model_version} suggested "${body.level}" for image ${imageId}.`;
    const list = document.createElement("ul");
    for (const [level, probability] of Object.entries(body.probabilities || {})) {
      const line = document.createElement("li");
      line.textContent = `${level}: ${(100 * probability).toFixed(0)}%`;
      list.append(line);
    }
    suggestion.append(heading, list);
  }

  async function undo() {
    if (state.busy) return;
    state.busy = true;
    try {
      const result = await api(undoUrl, { method: "POST", body: "{}" });
      if (!result.ok) {
        say(result.body ? result.body.error : `Undo failed (${result.status})`, true);
        return;
      }
      const row = result.body;
      const undone = recent.querySelector("li:not(.undone)");
      if (undone) undone.classList.add("undone");
      say(
        row.is_retraction
          ? `Undone: your score for image ${row.image} is taken back.`
          : `Undone: your score for image ${row.image} is NRS ${row.nrs} again.`
      );
      state.skipped = state.skipped.filter((id) => id !== row.image);
      const item = state.saved.get(row.image);
      if (row.is_retraction && item) {
        show(item);
      }
    } finally {
      state.busy = false;
    }
  }

  function skip() {
    if (!state.current || state.busy) return;
    state.skipped.push(state.current.id);
    say(`Skipped image ${state.current.id}.`);
    loadNext();
  }

  root.querySelectorAll(".nrs-button").forEach((button) => {
    button.addEventListener("click", () => save(Number(button.dataset.nrs)));
  });
  document.getElementById("skip-button").addEventListener("click", skip);
  document.getElementById("undo-button").addEventListener("click", undo);
  zoomButton.addEventListener("click", () => setZoom(!state.zoomed));

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target.isContentEditable || ["TEXTAREA", "SELECT"].includes(target.tagName)) return;
    if (target.tagName === "INPUT" && !["radio", "checkbox"].includes(target.type)) return;
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
      event.preventDefault();
      undo();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.toLowerCase();
    if (/^[0-9]$/.test(key)) {
      event.preventDefault();
      save(Number(key));
    } else if (key === "t") {
      event.preventDefault();
      save(10);
    } else if (key === "o") {
      setKind("observer");
    } else if (key === "s") {
      setKind("self_report");
    } else if (key === "n" || event.key === "ArrowRight") {
      event.preventDefault();
      skip();
    } else if (key === "u") {
      event.preventDefault();
      undo();
    } else if (key === "z") {
      setZoom(!state.zoomed);
    }
  });

  loadNext();
})();
