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
    busy: false, // a save, undo or skip is talking to the server
    actions: [], // keys pressed while busy, run in order once it is done (never dropped)
    pendingOne: null, // timer while a typed "1" waits to see whether "0" follows (NRS 10)
    zoomed: false,
  };

  // After a "1", wait this long for a "0" before saving NRS 1. Enter saves the 1 at once.
  const TEN_WINDOW_MS = 700;
  const keyFeedback = document.getElementById("key-feedback");
  const QUEUED = () => (state.busy ? gettext(" (queued)") : "");
  const fill = (text, values) => interpolate(text, values, true);

  function kind() {
    return root.querySelector("input[name=kind]:checked").value;
  }

  function setKind(value) {
    root.querySelector(`input[name=kind][value=${value}]`).checked = true;
    say(value === "observer" ? gettext("Observer score selected.") : gettext("Self-report selected."));
  }

  // Every key gets an answer on screen: what it did, or that it does nothing here.
  function feedback(key, message, buttonSelector) {
    keyFeedback.textContent = "";
    const shown = document.createElement("kbd");
    shown.textContent = key;
    keyFeedback.append(shown, ` ${message}`);
    if (buttonSelector) {
      const button = root.querySelector(buttonSelector);
      if (button) {
        button.classList.remove("key-flash");
        void button.offsetWidth; // restart the flash when the same key is pressed twice
        button.classList.add("key-flash");
      }
    }
  }

  function markIdle() {
    const idle = !state.busy && !state.actions.length && state.pendingOne === null;
    root.dataset.idle = String(idle);
    root.setAttribute("aria-busy", String(!idle));
  }

  // Saves, undo and skip run one at a time, in the order they were asked for.
  function enqueue(action, description) {
    state.actions.push(action);
    if (state.busy && description) {
      say(fill(gettext("Queued: %(action)s (waiting for the previous save)."), { action: description }));
    }
    markIdle();
    drain();
  }

  async function drain() {
    if (state.busy) return;
    while (state.actions.length) {
      const action = state.actions.shift();
      state.busy = true;
      markIdle();
      let done = false;
      try {
        done = (await action()) !== false;
      } catch (error) {
        say(fill(gettext("Something went wrong: %(error)s"), { error: String(error) }), true);
      } finally {
        state.busy = false;
      }
      if (!done && state.actions.length) {
        // Later keys were typed for the images this one would have led to: apply none of them.
        const dropped = state.actions.length;
        state.actions = [];
        keyFeedback.textContent = fill(
          ngettext(
            "%(count)s key typed after it not applied: check the image and type again.",
            "%(count)s keys typed after it not applied: check the image and type again.",
            dropped
          ),
          { count: dropped }
        );
      }
    }
    markIdle();
  }

  function commitPendingOne() {
    if (state.pendingOne === null) return;
    clearTimeout(state.pendingOne.timer);
    const kindAtKey = state.pendingOne.kind;
    state.pendingOne = null;
    root.querySelector(".nrs-1").classList.remove("key-pending");
    enqueue(() => save(1, kindAtKey), "NRS 1");
  }

  function cancelPendingOne() {
    if (state.pendingOne === null) return false;
    clearTimeout(state.pendingOne.timer);
    state.pendingOne = null;
    root.querySelector(".nrs-1").classList.remove("key-pending");
    markIdle();
    return true;
  }

  function startPendingOne() {
    state.pendingOne = { kind: kind(), timer: setTimeout(commitPendingOne, TEN_WINDOW_MS) };
    root.querySelector(".nrs-1").classList.add("key-pending");
    markIdle();
  }

  function scoreFromKeyboard(nrs, key) {
    const kindAtKey = kind(); // the kind chosen when the key was pressed, even if the save waits
    feedback(key, `NRS ${nrs}${QUEUED()}`, `.nrs-${nrs}`);
    enqueue(() => save(nrs, kindAtKey), `NRS ${nrs}`);
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
    image.alt = fill(gettext("Face image %(id)s of patient %(patient)s"), { id: item.id, patient: item.patient });
    document.getElementById("image-id").textContent = item.id;
    document.getElementById("image-patient").textContent = item.patient;
    document.getElementById("image-reason").textContent =
      item.reason === "second_observer" ? gettext("needs a second observer") : gettext("not labeled yet");
    document.getElementById("image-face").textContent = item.face_box ? gettext("face box shown") : gettext("no face found");
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
      say(fill(gettext("Could not load the next image: %(error)s"), { error: result.body ? result.body.error : result.status }), true);
      return false;
    }
    return true;
  }

  function remember(label, item) {
    state.saved.set(item.id, item);
    const entry = document.createElement("li");
    entry.dataset.labelId = label.id;
    entry.textContent = fill(gettext("Image %(id)s: NRS %(nrs)s (%(kind)s)"), {
      id: label.image,
      nrs: label.nrs,
      kind: label.kind === "observer" ? gettext("observer") : gettext("self-report"),
    });
    recent.prepend(entry);
  }

  // Returns false when nothing was saved, so the keys queued behind it are not applied to an
  // image the clinician did not mean.
  async function save(nrs, kindAtKey) {
    const item = state.current;
    if (!item) {
      say(fill(gettext("Not saved: no image on screen for NRS %(nrs)s."), { nrs: nrs }), true);
      return false;
    }
    const result = await api(`/api/images/${item.id}/labels/`, {
      method: "POST",
      body: JSON.stringify({ nrs: nrs, kind: kindAtKey }),
    });
    if (result.status !== 201) {
      say(fill(gettext("Not saved: %(error)s"), { error: result.body ? result.body.error : result.status }), true);
      return false;
    }
    remember(result.body, item);
    say(fill(gettext("Saved NRS %(nrs)s for image %(id)s."), { nrs: nrs, id: item.id }));
    if (showSuggestion.checked) {
      await showModelSuggestion(item.id);
    } else {
      suggestion.hidden = true;
    }
    await loadNext();
    return true;
  }

  async function showModelSuggestion(imageId) {
    const result = await api(`/api/images/${imageId}/suggestion/`, { method: "GET" });
    suggestion.hidden = false;
    suggestion.textContent = "";
    const heading = document.createElement("strong");
    const none = fill(gettext("No model suggestion for image %(id)s: "), { id: imageId });
    if (!result.ok) {
      heading.textContent = none;
      const why = result.body && result.body.error ? result.body.error : fill(gettext("status %(status)s"), { status: result.status });
      suggestion.append(heading, why);
      return;
    }
    const body = result.body;
    if (!body.face_found) {
      heading.textContent = none;
      suggestion.append(heading, body.reason);
      return;
    }
    heading.textContent = fill(gettext("Production model %(version)s suggested “%(level)s” for image %(id)s."), {
      version: body.model_version_name,
      level: window.PainSiteWords.level(body.level),
      id: imageId,
    });
    const list = document.createElement("ul");
    for (const [level, probability] of Object.entries(body.probabilities || {})) {
      const line = document.createElement("li");
      line.textContent = `${window.PainSiteWords.level(level)}: ${(100 * probability).toFixed(0)}%`;
      list.append(line);
    }
    suggestion.append(heading, list);
  }

  async function undo() {
    const result = await api(undoUrl, { method: "POST", body: "{}" });
    if (!result.ok) {
      say(result.body ? result.body.error : fill(gettext("Undo failed (%(status)s)"), { status: result.status }), true);
      return false;
    }
    const row = result.body;
    const undone = recent.querySelector("li:not(.undone)");
    if (undone) undone.classList.add("undone");
    say(
      row.is_retraction
        ? fill(gettext("Undone: your score for image %(id)s is taken back."), { id: row.image })
        : fill(gettext("Undone: your score for image %(id)s is NRS %(nrs)s again."), { id: row.image, nrs: row.nrs })
    );
    state.skipped = state.skipped.filter((id) => id !== row.image);
    const item = state.saved.get(row.image);
    if (row.is_retraction && item) {
      show(item);
    }
    return true;
  }

  async function skip() {
    if (!state.current) return;
    state.skipped.push(state.current.id);
    say(fill(gettext("Skipped image %(id)s."), { id: state.current.id }));
    await loadNext();
  }

  root.querySelectorAll(".nrs-button").forEach((button) => {
    button.addEventListener("click", () => {
      commitPendingOne();
      const nrs = Number(button.dataset.nrs);
      const kindAtClick = kind();
      enqueue(() => save(nrs, kindAtClick), `NRS ${nrs}`);
    });
  });
  document.getElementById("skip-button").addEventListener("click", () => {
    commitPendingOne();
    enqueue(skip, gettext("skip"));
  });
  document.getElementById("undo-button").addEventListener("click", () => {
    if (cancelPendingOne()) return;
    enqueue(undo, gettext("undo"));
  });
  zoomButton.addEventListener("click", () => setZoom(!state.zoomed));

  // Shortcuts are letters no one reads as a digit: no O (0), I or L (1), Z (2), S (5), B (8).
  const LETTER_KEYS = {
    x: { run: (key) => scoreFromKeyboard(10, key) },
    e: { run: (key) => { setKind("observer"); feedback(key, gettext("observer score (my estimate)"), "#kind-observer-label"); } },
    r: { run: (key) => { setKind("self_report"); feedback(key, gettext("self-report (what the patient said)"), "#kind-self-report-label"); } },
    n: { run: (key) => { feedback(key, gettext("skip") + QUEUED(), "#skip-button"); enqueue(skip, gettext("skip")); } },
    u: { run: (key) => undoFromKeyboard(key) },
    f: { run: (key) => { setZoom(!state.zoomed); feedback(key, state.zoomed ? gettext("zoomed to the face") : gettext("zoom off"), "#zoom-button"); } },
  };

  function undoFromKeyboard(key) {
    if (cancelPendingOne()) {
      feedback(key, gettext("NRS 1 not saved (cancelled before saving)"), ".nrs-1");
      say(gettext("Cancelled: the typed 1 was not saved."));
      return;
    }
    feedback(key, gettext("undo your last score") + QUEUED(), "#undo-button");
    enqueue(undo, gettext("undo"));
  }

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target.isContentEditable || ["TEXTAREA", "SELECT"].includes(target.tagName)) return;
    if (target.tagName === "INPUT" && !["radio", "checkbox"].includes(target.type)) return;
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
      event.preventDefault();
      undoFromKeyboard("Ctrl+Z");
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (state.pendingOne !== null) {
      if (key === "0") {
        event.preventDefault();
        cancelPendingOne();
        scoreFromKeyboard(10, "1 0");
        return;
      }
      if (key === "Enter") {
        event.preventDefault();
        feedback("1", "NRS 1", ".nrs-1");
        commitPendingOne();
        return;
      }
      if (key === "Escape" || key === "Backspace") {
        event.preventDefault();
        undoFromKeyboard(key);
        return;
      }
      // Any other key first saves the waiting 1, then does its own job, in that order.
      commitPendingOne();
    }
    if (key === "1") {
      event.preventDefault();
      feedback("1", gettext("NRS 1 … type 0 now for NRS 10, or Enter to save 1"), ".nrs-1");
      startPendingOne();
    } else if (/^[0-9]$/.test(key)) {
      event.preventDefault();
      scoreFromKeyboard(Number(key), key);
    } else if (key === "ArrowRight") {
      event.preventDefault();
      LETTER_KEYS.n.run("→");
    } else if (Object.prototype.hasOwnProperty.call(LETTER_KEYS, key)) {
      event.preventDefault();
      LETTER_KEYS[key].run(key.toUpperCase());
    } else if (key.length === 1 && key.trim()) {
      feedback(key.toUpperCase(), gettext("does nothing here: see Keyboard below for the keys"), null);
    }
  });

  // The first image loads through the same queue, so keys typed before it appears wait for it.
  enqueue(loadNext, "");
})();
