/* Assessment: shared helpers (window.PainSiteAssess) and the /assess/ page.
   The server does the work: each picture goes to POST /api/assessments/ as multipart. */
(function () {
  "use strict";

  const KNOWN_LEVELS = ["none", "mild", "moderate", "severe"];
  const fill = (text, values) => interpolate(text, values, true);
  const levelWord = (name) => window.PainSiteWords.level(name);

  function csrfToken(root) {
    const input = root.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function percent(value) {
    return (100 * value).toFixed(value < 0.1 ? 1 : 0) + "%";
  }

  function levelClass(name) {
    return KNOWN_LEVELS.includes(name) ? "level-" + name : "level-other";
  }

  /* Send one picture; resolves to {status, body}. Errors come back as {error, details}. */
  async function assess(url, root, blob, filename, fields) {
    const data = new FormData();
    data.append("file", blob, filename);
    Object.entries(fields).forEach(([name, value]) => {
      if (value !== undefined && value !== null && value !== "") data.append(name, value);
    });
    const response = await fetch(url, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(root), Accept: "application/json" },
    });
    let body;
    try {
      body = await response.json();
    } catch (error) {
      body = { error: fill(gettext("the server answered %(status)s without a readable message"), { status: response.status }) };
    }
    return { status: response.status, ok: response.ok, body: body };
  }

  /* One row per level: name, bar, percentage. Text carries the value, colour only helps. */
  function renderBars(container, probabilities, level) {
    container.replaceChildren();
    Object.entries(probabilities).forEach(([name, value]) => {
      const row = document.createElement("div");
      row.className = "bar-row" + (name === level ? " is-current" : "");
      row.setAttribute("role", "listitem");
      const label = document.createElement("span");
      label.className = "bar-label";
      label.textContent = levelWord(name);
      const track = document.createElement("span");
      track.className = "bar-track";
      const fill = document.createElement("span");
      fill.className = "bar-fill " + levelClass(name);
      fill.style.width = (100 * value).toFixed(1) + "%";
      track.appendChild(fill);
      const number = document.createElement("span");
      number.className = "bar-value";
      number.textContent = percent(value);
      row.append(label, track, number);
      container.appendChild(row);
    });
  }

  /* No face, no score: the server gives no level, probabilities or alert without a face. */
  const NO_FACE = gettext("no face in view");

  function faceText(body) {
    return body.face_found ? gettext("face found") : gettext("no face in view: not assessed, nothing stored");
  }

  function alertText(body) {
    return fill(gettext("Severe pain likely: level %(level)s, P(NRS ≥ 7) = %(probability)s."), {
      level: levelWord(body.level),
      probability: percent(body.severe_probability),
    });
  }

  /* The device camera, or a message saying why not. */
  async function openCamera(video) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error(gettext("this browser cannot use a camera here (a camera needs HTTPS or localhost)"));
    }
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" }, audio: false });
    video.srcObject = stream;
    await video.play().catch(() => {});
    return stream;
  }

  function closeCamera(video, stream) {
    if (stream) stream.getTracks().forEach((track) => track.stop());
    video.srcObject = null;
  }

  /* A JPEG of the current video frame, at most 640 px on its long side. */
  function captureFrame(video) {
    const width = video.videoWidth;
    const height = video.videoHeight;
    if (!width || !height) return Promise.resolve(null);
    const scale = Math.min(1, 640 / Math.max(width, height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
  }

  window.PainSiteAssess = { NO_FACE, assess, renderBars, faceText, alertText, openCamera, closeCamera, captureFrame, percent, levelClass, levelWord, csrfToken };

  /* ---- the /assess/ page ---- */
  const root = document.getElementById("assess");
  if (!root) return;

  const form = document.getElementById("assess-form");
  const fileInput = document.getElementById("assess-file");
  const patientInput = document.getElementById("assess-patient");
  const versionSelect = document.getElementById("assess-version");
  const heatmapWanted = document.getElementById("assess-heatmap");
  const status = document.getElementById("assess-status");
  const submitButton = document.getElementById("assess-button");
  const result = document.getElementById("assess-result");
  const resultImage = document.getElementById("result-image");
  const heatmapToggle = document.getElementById("heatmap-toggle");
  const selfReport = document.getElementById("self-report");
  const selfReportInput = document.getElementById("self-report-nrs");
  const selfReportStatus = document.getElementById("self-report-status");
  const selfReportUnavailable = document.getElementById("self-report-unavailable");
  const video = document.getElementById("camera-video");
  const cameraBox = document.getElementById("camera");
  let stream = null;
  let pictureUrl = null;
  let overlayUrl = null;
  let imageId = null;

  function showPicture() {
    resultImage.src = heatmapToggle.checked && overlayUrl ? overlayUrl : pictureUrl;
    resultImage.alt = heatmapToggle.checked && overlayUrl
      ? gettext("The assessed image with the heatmap of where the model looked")
      : gettext("The assessed image");
  }

  async function send(blob, filename) {
    status.textContent = gettext("Assessing…");
    submitButton.disabled = true;
    const fields = {
      patient: patientInput.value.trim(),
      model_version: versionSelect ? versionSelect.value : "",
      heatmap: heatmapWanted.checked ? "true" : "false",
    };
    try {
      const answer = await window.PainSiteAssess.assess(root.dataset.apiUrl, root, blob, filename, fields);
      if (!answer.ok) {
        status.textContent = fill(gettext("Not assessed: %(error)s"), { error: answer.body.error });
        return;
      }
      show(answer.body, blob);
      if (!answer.body.face_found) {
        status.textContent = gettext("No face in view: nothing was assessed and nothing was stored. Frame the patient's face and try again.");
      } else {
        status.textContent = answer.body.assessment_id
          ? fill(gettext("Assessed and stored for patient %(patient)s."), { patient: fields.patient })
          : gettext("Assessed. Nothing was stored.");
      }
    } catch (error) {
      status.textContent = fill(gettext("Not assessed: the server could not be reached (%(error)s)."), { error: error.message });
    } finally {
      submitButton.disabled = false;
    }
  }

  function show(body, blob) {
    result.hidden = false;
    document.getElementById("result-level").textContent = body.face_found ? levelWord(body.level) : NO_FACE;
    document.getElementById("result-version").textContent = body.model_version_name;
    document.getElementById("result-face").textContent = window.PainSiteAssess.faceText(body);
    window.PainSiteAssess.renderBars(document.getElementById("result-bars"), body.probabilities || {}, body.level);
    const alertBox = document.getElementById("result-alert");
    alertBox.hidden = !body.alert;
    alertBox.textContent = body.alert ? window.PainSiteAssess.alertText(body) : "";
    if (pictureUrl) URL.revokeObjectURL(pictureUrl);
    pictureUrl = URL.createObjectURL(blob);
    overlayUrl = body.heatmap ? "data:image/png;base64," + body.heatmap : null;
    heatmapToggle.disabled = !overlayUrl;
    heatmapToggle.checked = Boolean(overlayUrl);
    showPicture();
    imageId = body.image_id;
    const canLabel = root.dataset.canLabel === "true";
    selfReport.hidden = !(imageId && canLabel);
    selfReportUnavailable.hidden = Boolean(imageId) || !body.face_found;
    selfReportStatus.textContent = "";
    selfReportInput.value = "";
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) {
      status.textContent = gettext("Choose a photo first, or use the camera.");
      fileInput.focus();
      return;
    }
    send(file, file.name);
  });

  heatmapToggle.addEventListener("change", showPicture);

  document.getElementById("camera-start").addEventListener("click", async () => {
    try {
      stream = await window.PainSiteAssess.openCamera(video);
      cameraBox.hidden = false;
      status.textContent = gettext("Camera on. Frame the patient's face, then take the photo.");
    } catch (error) {
      status.textContent = fill(gettext("Camera unavailable: %(error)s. Upload a photo instead."), { error: error.message });
    }
  });

  document.getElementById("camera-stop").addEventListener("click", () => {
    window.PainSiteAssess.closeCamera(video, stream);
    stream = null;
    cameraBox.hidden = true;
  });

  document.getElementById("camera-capture").addEventListener("click", async () => {
    const blob = await window.PainSiteAssess.captureFrame(video);
    if (!blob) {
      status.textContent = gettext("The camera has no picture yet; try again in a moment.");
      return;
    }
    send(blob, "camera.jpg");
  });

  selfReport.addEventListener("submit", async (event) => {
    event.preventDefault();
    const nrs = Number(selfReportInput.value);
    if (!Number.isInteger(nrs) || nrs < 0 || nrs > 10 || selfReportInput.value === "") {
      selfReportStatus.textContent = gettext("Enter a whole number from 0 to 10.");
      return;
    }
    const response = await fetch("/api/images/" + imageId + "/labels/", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": window.PainSiteAssess.csrfToken(root), "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ nrs: nrs, kind: "self_report" }),
    });
    const body = await response.json().catch(() => ({}));
    selfReportStatus.textContent = response.ok
      ? fill(gettext("Self-reported NRS %(nrs)s recorded for image %(id)s."), { nrs: nrs, id: imageId })
      : fill(gettext("Not recorded: %(error)s"), { error: body.error || response.status });
  });
})();
