/* /monitor/: assess a camera frame every few seconds, chart the level probabilities over time,
   and raise an alert when severe pain persists. Needs assess.js (window.PainSiteAssess).
   No face, no score: a frame with no face in view is counted and shown, never charted or alerted;
   it neither adds to nor breaks the run of severe assessments, but a gap of GAP_INTERVALS
   intervals without an assessed face (face out of view, pause, server unreachable) starts the run
   again, since "in a row" must mean minutes apart, not an hour. */
(function () {
  "use strict";

  const root = document.getElementById("monitor");
  if (!root || !window.PainSiteAssess) return;
  const helpers = window.PainSiteAssess;
  const fill = (text, values) => interpolate(text, values, true);

  const MAX_POINTS = 60;
  const GAP_INTERVALS = 3;
  const CHART = { width: 640, height: 200, left: 40, right: 12, top: 10, bottom: 24 };
  const SVG_NS = "http://www.w3.org/2000/svg";

  const video = document.getElementById("monitor-video");
  const patientInput = document.getElementById("monitor-patient");
  const intervalInput = document.getElementById("monitor-interval");
  const consecutiveInput = document.getElementById("monitor-consecutive");
  const recordInput = document.getElementById("monitor-record");
  const startButton = document.getElementById("monitor-start");
  const pauseButton = document.getElementById("monitor-pause");
  const stopButton = document.getElementById("monitor-stop");
  const status = document.getElementById("monitor-status");
  const alertBox = document.getElementById("monitor-alert");
  const chart = document.getElementById("monitor-timeline");
  const chartTitle = document.getElementById("timeline-title");
  const legend = document.getElementById("monitor-legend");
  const faceNotice = document.getElementById("monitor-face-notice");

  const points = [];
  let stream = null;
  let timer = null;
  let running = false;
  let paused = false;
  let streak = 0;
  let streakStart = null;
  let count = 0;
  let noFaceCount = 0;
  let lastFaceTime = null;
  let outOfViewSince = null;
  // Bumped on start, pause and stop: a reply to a request sent before is dropped, so it cannot
  // overwrite "Paused" or raise an alert after Stop.
  let session = 0;

  function seconds(input, fallback) {
    const value = Number(input.value);
    return Number.isFinite(value) && value >= 1 ? value : fallback;
  }

  function clock(date) {
    // In the page's language, not the browser's (a Chinese page on an English browser).
    return date.toLocaleTimeString(document.documentElement.lang || [], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function setStatus(text) {
    status.textContent = text;
  }

  function svg(name, attributes) {
    const element = document.createElementNS(SVG_NS, name);
    Object.entries(attributes).forEach(([key, value]) => element.setAttribute(key, value));
    return element;
  }

  function drawTimeline() {
    chart.replaceChildren(chartTitle);
    const plotWidth = CHART.width - CHART.left - CHART.right;
    const plotHeight = CHART.height - CHART.top - CHART.bottom;
    const y = (p) => CHART.top + (1 - p) * plotHeight;
    [0, 0.5, 1].forEach((tick) => {
      chart.appendChild(svg("line", { class: "grid", x1: CHART.left, x2: CHART.width - CHART.right, y1: y(tick), y2: y(tick) }));
      const label = svg("text", { class: "tick", x: CHART.left - 6, y: y(tick) + 4, "text-anchor": "end" });
      label.textContent = tick * 100 + "%";
      chart.appendChild(label);
    });
    if (!points.length) return;
    const first = points[0].time.getTime();
    const span = Math.max(1, points[points.length - 1].time.getTime() - first);
    const x = (point) => (points.length === 1 ? CHART.left + plotWidth : CHART.left + ((point.time.getTime() - first) / span) * plotWidth);
    Object.keys(points[points.length - 1].probabilities).forEach((level) => {
      const group = svg("g", { class: "series " + helpers.levelClass(level), "data-level": level });
      const coordinates = points.map((point) => x(point).toFixed(1) + "," + y(point.probabilities[level] || 0).toFixed(1));
      group.appendChild(svg("polyline", { points: coordinates.join(" "), fill: "none" }));
      points.forEach((point) => {
        const dot = svg("circle", { class: "point", cx: x(point).toFixed(1), cy: y(point.probabilities[level] || 0).toFixed(1), r: 3 });
        const tip = svg("title", {});
        tip.textContent = clock(point.time) + " " + helpers.levelWord(level) + " " + helpers.percent(point.probabilities[level] || 0);
        dot.appendChild(tip);
        group.appendChild(dot);
      });
      chart.appendChild(group);
    });
    [points[0], points[points.length - 1]].forEach((point, index) => {
      const label = svg("text", { class: "tick", x: index ? CHART.width - CHART.right : CHART.left, y: CHART.height - 6, "text-anchor": index ? "end" : "start" });
      label.textContent = clock(point.time);
      chart.appendChild(label);
    });
    const latest = points[points.length - 1];
    chartTitle.textContent = fill(
      ngettext(
        "Predicted probability of each pain level over the last %(count)s assessment; latest at %(time)s: %(levels)s",
        "Predicted probability of each pain level over the last %(count)s assessments; latest at %(time)s: %(levels)s",
        points.length
      ),
      {
        count: points.length,
        time: clock(latest.time),
        levels: Object.entries(latest.probabilities).map(([level, p]) => helpers.levelWord(level) + " " + helpers.percent(p)).join(", "),
      }
    );
  }

  function drawLegend(levels) {
    legend.replaceChildren();
    levels.forEach((level) => {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch " + helpers.levelClass(level);
      item.append(swatch, document.createTextNode(" " + helpers.levelWord(level)));
      legend.appendChild(item);
    });
  }

  function gapMilliseconds() {
    return GAP_INTERVALS * seconds(intervalInput, 5) * 1000;
  }

  function showStreak() {
    document.getElementById("monitor-streak").textContent = String(streak);
    const raise = streak >= seconds(consecutiveInput, 3);
    alertBox.hidden = !raise;
    alertBox.textContent = raise
      ? fill(
        ngettext(
          "Severe pain persists: %(count)s severe assessment in a row since %(time)s. Check on the patient.",
          "Severe pain persists: %(count)s severe assessments in a row since %(time)s. Check on the patient.",
          streak
        ),
        { count: streak, time: clock(streakStart) }
      )
      : "";
  }

  function resetStreak() {
    streak = 0;
    streakStart = null;
    showStreak();
  }

  function recordNoFace(body) {
    const now = new Date();
    noFaceCount += 1;
    if (!outOfViewSince) outOfViewSince = now;
    document.getElementById("monitor-no-face").textContent = String(noFaceCount);
    document.getElementById("monitor-level").textContent = helpers.NO_FACE;
    document.getElementById("monitor-updated").textContent = fill(gettext("at %(time)s"), { time: clock(now) }) + " · " + helpers.faceText(body);
    helpers.renderBars(document.getElementById("monitor-bars"), {}, null);
    // No alert for a frame without a face; the run itself is kept until the gap is long.
    alertBox.hidden = true;
    alertBox.textContent = "";
    if (now - (lastFaceTime || outOfViewSince) >= gapMilliseconds()) {
      streak = 0;
      streakStart = null;
      document.getElementById("monitor-streak").textContent = "0";
      faceNotice.hidden = false;
      faceNotice.textContent = fill(gettext("No face in view since %(time)s (%(duration)s). Check the camera and the patient."), {
        time: clock(outOfViewSince),
        duration: noFaceRun(now),
      });
    }
  }

  function noFaceRun(now) {
    const secondsAway = Math.round((now - outOfViewSince) / 1000);
    return secondsAway < 120
      ? fill(gettext("%(seconds)s s"), { seconds: secondsAway })
      : fill(gettext("%(minutes)s min"), { minutes: Math.round(secondsAway / 60) });
  }

  function record(body) {
    const now = new Date();
    if (lastFaceTime && now - lastFaceTime > gapMilliseconds()) {
      streak = 0;
      streakStart = null;
    }
    lastFaceTime = now;
    outOfViewSince = null;
    faceNotice.hidden = true;
    faceNotice.textContent = "";
    count += 1;
    points.push({ time: now, probabilities: body.probabilities, level: body.level });
    if (points.length > MAX_POINTS) points.shift();
    if (count === 1) drawLegend(Object.keys(body.probabilities));
    document.getElementById("monitor-level").textContent = helpers.levelWord(body.level);
    document.getElementById("monitor-updated").textContent =
      fill(gettext("at %(time)s by %(version)s"), { time: clock(now), version: body.model_version_name }) + " · " + helpers.faceText(body);
    document.getElementById("monitor-count").textContent = String(count);
    helpers.renderBars(document.getElementById("monitor-bars"), body.probabilities, body.level);
    if (body.alert) {
      streak += 1;
      if (streak === 1) streakStart = now;
    } else {
      streak = 0;
      streakStart = null;
    }
    showStreak();
    drawTimeline();
  }

  async function tick() {
    timer = null;
    if (!running || paused) return;
    const mine = session;
    const current = () => mine === session && running && !paused;
    const started = performance.now();
    try {
      const blob = await helpers.captureFrame(video);
      if (!current()) return;
      if (!blob) {
        setStatus(gettext("Waiting for the camera picture…"));
      } else {
        const answer = await helpers.assess(root.dataset.apiUrl, root, blob, "frame.jpg", {
          patient: patientInput.value.trim(),
          record: recordInput.checked ? "true" : "false",
        });
        if (!current()) return;
        if (answer.ok && !answer.body.face_found) {
          recordNoFace(answer.body);
          setStatus(fill(gettext("No face in view: frame not assessed, nothing stored. Checking every %(seconds)s s."), { seconds: seconds(intervalInput, 5) }));
        } else if (answer.ok) {
          record(answer.body);
          const every = { seconds: seconds(intervalInput, 5) };
          setStatus(answer.body.assessment_id
            ? fill(gettext("Recording (each frame stored): assessing every %(seconds)s s."), every)
            : fill(gettext("Monitoring (nothing stored): assessing every %(seconds)s s."), every));
        } else if (answer.status === 409 && answer.body.details && answer.body.details.promote) {
          // No production model (any more): the answer says where to get one.
          pause(fill(gettext("Paused: %(reason)s"), { reason: answer.body.error }));
          return;
        } else {
          setStatus(fill(gettext("Last frame not assessed: %(reason)s"), { reason: answer.body.error }));
        }
      }
    } catch (error) {
      if (!current()) return;
      setStatus(fill(gettext("Last frame not assessed: the server could not be reached (%(error)s). Retrying."), { error: error.message }));
    }
    if (!current()) return;
    const wait = Math.max(0, seconds(intervalInput, 5) * 1000 - (performance.now() - started));
    timer = window.setTimeout(tick, wait);
  }

  function pause(message) {
    paused = true;
    session += 1;
    if (timer) window.clearTimeout(timer);
    timer = null;
    pauseButton.textContent = gettext("Resume");
    pauseButton.setAttribute("aria-pressed", "true");
    setStatus(message || gettext("Paused. The camera stays on; nothing is assessed."));
  }

  function resume() {
    paused = false;
    pauseButton.textContent = gettext("Pause");
    pauseButton.setAttribute("aria-pressed", "false");
    setStatus(gettext("Resumed."));
    tick();
  }

  startButton.addEventListener("click", async () => {
    if (recordInput.checked && !patientInput.value.trim()) {
      setStatus(gettext("Recording needs a patient code: enter one, or turn Record off."));
      patientInput.focus();
      return;
    }
    try {
      stream = await helpers.openCamera(video);
    } catch (error) {
      setStatus(fill(gettext("Camera unavailable: %(error)s."), { error: error.message }));
      return;
    }
    running = true;
    paused = false;
    session += 1;
    resetStreak();
    noFaceCount = 0;
    lastFaceTime = null;
    outOfViewSince = null;
    document.getElementById("monitor-no-face").textContent = "0";
    faceNotice.hidden = true;
    startButton.disabled = true;
    pauseButton.disabled = false;
    stopButton.disabled = false;
    setStatus(gettext("Starting…"));
    tick();
  });

  pauseButton.addEventListener("click", () => (paused ? resume() : pause()));

  stopButton.addEventListener("click", () => {
    running = false;
    session += 1;
    // The alert was about this watch; once it ends nobody is watching the patient through it.
    resetStreak();
    faceNotice.hidden = true;
    if (timer) window.clearTimeout(timer);
    timer = null;
    helpers.closeCamera(video, stream);
    stream = null;
    paused = false;
    pauseButton.textContent = gettext("Pause");
    pauseButton.setAttribute("aria-pressed", "false");
    startButton.disabled = root.dataset.hasModel !== "true";
    pauseButton.disabled = true;
    stopButton.disabled = true;
    setStatus(gettext("Stopped. The camera is off."));
  });

  recordInput.addEventListener("change", () => {
    if (recordInput.checked && !patientInput.value.trim()) {
      setStatus(gettext("Recording needs a patient code."));
    }
  });

  drawTimeline();
})();
