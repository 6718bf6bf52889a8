/* /ward/: every bed on one screen, kept current by polling GET /api/ward/beds/ with If-None-Match
   (a 304 costs the server two aggregate queries and the network a few bytes), so it works behind
   any proxy that passes plain HTTP. A clinician acknowledges an alert with one click.
   No face, no score: a bed whose newest frame had no face shows "no face in view", never a level. */
(function () {
  "use strict";

  const root = document.getElementById("ward");
  if (!root) return;
  const fill = (text, values) => interpolate(text, values, true);
  const levelWord = (name) => window.PainSiteWords.level(name);
  const SVG_NS = "http://www.w3.org/2000/svg";
  const apiUrl = root.dataset.apiUrl;
  const pollMilliseconds = Math.max(1, parseFloat(root.dataset.pollSeconds || "3")) * 1000;
  const canAcknowledge = root.dataset.canAcknowledge === "true";
  const updated = document.getElementById("ward-updated");
  const errorBox = document.getElementById("ward-error");
  const STATES = {
    off: gettext("Camera off"),
    no_patient: gettext("No patient in bed"),
    no_consent: gettext("Consent not granted: not assessed"),
    not_monitored: gettext("Not monitored: no recent round"),
    offline: gettext("Camera offline"),
    no_face: gettext("No face in view"),
    assessed: gettext("Assessed"),
    waiting: gettext("Waiting for the first frame"),
  };
  let etag = null;
  let timer = null;

  function csrfToken() {
    const input = root.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function clock(ms) {
    if (!ms) return "—";
    return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function sparkline(points, now, hours) {
    const width = 200, height = 40;
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("class", "sparkline");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", fill(gettext("P(severe pain) over the last %(hours)s hours"), { hours: hours }));
    const start = now - hours * 3600 * 1000;
    const x = function (t) { return ((t - start) / (now - start)) * width; };
    const y = function (p) { return height - 2 - p * (height - 4); };
    const line = document.createElementNS(SVG_NS, "line");
    line.setAttribute("class", "threshold");
    line.setAttribute("x1", "0"); line.setAttribute("x2", String(width));
    line.setAttribute("y1", String(y(0.5))); line.setAttribute("y2", String(y(0.5)));
    svg.appendChild(line);
    if (points.length > 1) {
      const polyline = document.createElementNS(SVG_NS, "polyline");
      polyline.setAttribute("points", points.map(function (p) { return x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1); }).join(" "));
      svg.appendChild(polyline);
    }
    if (points.length) {
      const last = points[points.length - 1];
      const dot = document.createElementNS(SVG_NS, "circle");
      dot.setAttribute("cx", Math.min(width - 3, x(last[0])).toFixed(1));
      dot.setAttribute("cy", y(last[1]).toFixed(1));
      dot.setAttribute("r", "3");
      svg.appendChild(dot);
    }
    return svg;
  }

  function alertBlock(bed, alert) {
    const box = element("div", "bed-alert");
    box.setAttribute("role", "alert");
    const text = fill(gettext("Severe pain persists: %(run)s severe assessments in a row since %(time)s."), {
      run: alert.severe_run, time: clock(alert.raised_at),
    });
    box.appendChild(element("span", null, text));
    if (alert.escalated) {
      box.appendChild(element("strong", null, fill(gettext("Escalated to the admins at %(time)s."), { time: clock(alert.escalated_at) })));
    }
    if (canAcknowledge) {
      const button = element("button", "acknowledge", gettext("Acknowledge"));
      button.type = "button";
      button.dataset.alert = String(alert.id);
      button.addEventListener("click", function (event) {
        event.preventDefault();
        event.stopPropagation();
        acknowledge(alert.id, button);
      });
      box.appendChild(button);
    }
    return box;
  }

  function card(bed, board) {
    const article = element("article", "bed");
    article.dataset.bed = bed.bed;
    article.dataset.state = bed.state;
    if (bed.state === "offline" || bed.state === "not_monitored") article.classList.add("is-offline");
    if (bed.alerts.length) article.classList.add("has-alert");
    if (bed.alerts.some(function (a) { return a.escalated; })) article.classList.add("is-escalated");
    const link = element(bed.patient ? "a" : "div", "bed-link");
    if (bed.patient) {
      link.href = "/patients/" + encodeURIComponent(bed.patient) + "/";
      link.title = gettext("Open this patient's timeline");
    }
    const top = element("div", "bed-top");
    top.appendChild(element("span", "bed-name", bed.bed));
    top.appendChild(element("span", "bed-state " + bed.state, STATES[bed.state] || bed.state));
    link.appendChild(top);
    link.appendChild(element("span", "bed-patient", bed.patient ? fill(gettext("Patient %(code)s"), { code: bed.patient }) : gettext("No patient")));
    const level = element("div", "bed-level");
    const shown = bed.state === "assessed" ? bed.last_reading : null;
    if (shown && shown.level) {
      level.appendChild(element("span", "level-name level-text-" + shown.level, levelWord(shown.level)));
      if (shown.probability !== null) {
        level.appendChild(element("span", "probability", Math.round(shown.probability * 100) + " %"));
      }
      if (shown.level === "severe") article.classList.add("level-severe-card");
    } else if (bed.state === "no_face") {
      level.appendChild(element("span", null, gettext("No face in view")));
    } else {
      level.appendChild(element("span", "muted", "—"));
    }
    link.appendChild(level);
    link.appendChild(sparkline(bed.trend, board.now, board.trend_hours));
    const last = bed.last_assessment;
    link.appendChild(element("span", "bed-meta", last
      ? fill(gettext("Last assessment %(time)s (%(level)s)"), { time: clock(last.time), level: levelWord(last.level) })
      : gettext("No assessment yet")));
    link.appendChild(element("span", "bed-meta", fill(gettext("Last frame %(time)s · every %(seconds)s s"), {
      time: clock(bed.last_frame_at), seconds: bed.interval_seconds,
    })));
    article.appendChild(link);
    bed.alerts.forEach(function (alert) { article.appendChild(alertBlock(bed, alert)); });
    return article;
  }

  function render(board) {
    const cards = board.beds.map(function (bed) { return card(bed, board); });
    root.querySelectorAll("article.bed").forEach(function (node) { node.remove(); });
    cards.forEach(function (node) { root.appendChild(node); });
    document.getElementById("ward-empty").hidden = board.beds.length > 0;
    document.getElementById("ward-no-model").hidden = board.production_model !== null;
    const alerts = board.beds.reduce(function (sum, bed) { return sum + bed.alerts.length; }, 0);
    document.title = (alerts ? "(" + alerts + ") " : "") + gettext("Ward") + " · PainSite";
  }

  async function poll() {
    timer = null;
    try {
      const headers = { Accept: "application/json" };
      if (etag) headers["If-None-Match"] = etag;
      const response = await fetch(apiUrl, { headers: headers, credentials: "same-origin", cache: "no-cache" });
      if (response.status === 200) {
        etag = response.headers.get("ETag");
        render(await response.json());
      } else if (response.status !== 304) {
        throw new Error(fill(gettext("the server answered %(status)s"), { status: response.status }));
      }
      errorBox.hidden = true;
      updated.textContent = fill(gettext("Updated %(time)s"), { time: clock(Date.now()) });
      root.dataset.polls = String(parseInt(root.dataset.polls || "0", 10) + 1);
    } catch (error) {
      errorBox.hidden = false;
      errorBox.textContent = fill(gettext("The board could not be updated (%(reason)s); it keeps trying."), { reason: error.message });
    }
    schedule();
  }

  function schedule() {
    if (timer === null) timer = window.setTimeout(poll, pollMilliseconds);
  }

  async function acknowledge(alertId, button) {
    button.disabled = true;
    const response = await fetch("/api/ward/alerts/" + alertId + "/acknowledge/", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
    });
    if (!response.ok && response.status !== 409) {
      button.disabled = false;
      errorBox.hidden = false;
      errorBox.textContent = fill(gettext("The alert was not acknowledged (%(status)s)."), { status: response.status });
      return;
    }
    etag = null;
    if (timer !== null) { window.clearTimeout(timer); timer = null; }
    poll();
  }

  poll();
})();
