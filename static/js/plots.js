/* PainPlots: the small SVG plots of the results pages (ROC, reliability, training curves and
 * confusion-matrix heatmaps), drawn from the JSON specs that modeling/results_plots.py builds.
 * No dependencies. Every plot has labelled axes and a legend; colours are Okabe–Ito custom
 * properties from site.css/results.css and every series also differs by dash pattern or marker,
 * so no reading depends on colour alone. The numbers are always listed in a table beside the plot.
 */
(function (global) {
  "use strict";

  const SVG_NS = "http://www.w3.org/2000/svg";
  const WIDTH = 440;
  const PLOT_HEIGHT = 300;
  const MARGIN = { top: 14, right: 18, bottom: 52, left: 62 };
  const LEGEND_ROW = 20;
  const MARKERS = ["circle", "square", "triangle", "diamond"];
  let uniqueId = 0;

  function el(name, attributes, parent) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value !== undefined && value !== null && value !== "") node.setAttribute(key, String(value));
    }
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, content, attributes) {
    const node = el("text", attributes, parent);
    node.textContent = content;
    return node;
  }

  /* "--level-severe" -> "#D55E00", so the SVG keeps its colours when saved or printed. */
  function colour(value) {
    if (!value || !value.startsWith("--")) return value || "#000000";
    const found = getComputedStyle(document.documentElement).getPropertyValue(value).trim();
    return found || "#000000";
  }

  /* Tick values and the decimals that show every one of them exactly (0.25 steps keep two). */
  function ticks(low, high, integer) {
    if (integer) {
      const step = Math.max(1, Math.ceil((high - low) / 8));
      const values = [];
      for (let value = Math.ceil(low); value <= high; value += step) values.push(value);
      return { values, decimals: 0 };
    }
    const span = high - low || 1;
    const magnitude = Math.pow(10, Math.floor(Math.log10(span / 5)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => span / s <= 6);
    const values = [];
    for (let value = Math.ceil(low / step) * step; value <= high + step * 1e-9; value += step) {
      values.push(Math.round(value / step) * step);
    }
    let decimals = 0;
    while (decimals < 6 && Math.abs(step * Math.pow(10, decimals) - Math.round(step * Math.pow(10, decimals))) > 1e-9) decimals++;
    return { values, decimals };
  }

  function startSvg(container, spec, height) {
    container.replaceChildren();
    const id = "plot-title-" + ++uniqueId;
    const svg = el("svg", {
      viewBox: `0 0 ${WIDTH} ${height}`,
      width: "100%",
      role: "img",
      "aria-labelledby": id,
      class: "plot-svg",
      "font-family": "system-ui, sans-serif",
      "font-size": "13",
    });
    const title = el("title", { id }, svg);
    title.textContent = interpolate(gettext("%(title)s. The numbers are listed in the table with this plot."), { title: spec.title }, true);
    container.appendChild(svg);
    return svg;
  }

  function marker(parent, shape, x, y, fill) {
    const r = 3.6;
    if (shape === "square") return el("rect", { x: x - r, y: y - r, width: 2 * r, height: 2 * r, fill }, parent);
    if (shape === "triangle") {
      return el("path", { d: `M${x},${y - r - 1}L${x + r + 1},${y + r}L${x - r - 1},${y + r}Z`, fill }, parent);
    }
    if (shape === "diamond") {
      return el("path", { d: `M${x},${y - r - 1}L${x + r + 1},${y}L${x},${y + r + 1}L${x - r - 1},${y}Z`, fill }, parent);
    }
    return el("circle", { cx: x, cy: y, r, fill }, parent);
  }

  /* Horizontal pixel shifts: `offset` for the whole series, and marks of the series that share an
   * x value spread around it, so marks at one time do not hide each other. */
  function dodge(items, offset) {
    const counts = new Map();
    for (const [x] of items) counts.set(x, (counts.get(x) || 0) + 1);
    const seen = new Map();
    return items.map(([x]) => {
      const n = counts.get(x);
      const i = seen.get(x) || 0;
      seen.set(x, i + 1);
      return offset + (i - (n - 1) / 2) * 9;
    });
  }

  /* Five evenly spaced times from milliseconds since the epoch; labelled in UTC like the tables. */
  function timeTicks(low, high) {
    const values = [];
    for (let i = 0; i <= 4; i++) values.push(low + ((high - low) * i) / 4);
    return { values, decimals: 0 };
  }

  function timeLabel(value) {
    return new Date(value).toISOString().slice(5, 16).replace("T", " ");
  }

  /* Lines: ROC curves, reliability diagrams, training curves and the patient timeline. Series may
   * set line: false (markers only), shape, offset (pixels) and ranges ([x, low, high, note] bars). */
  function lines(container, spec) {
    const series = spec.series || [];
    const legendEntries = series.length + (spec.diagonal ? 1 : 0);
    const height = MARGIN.top + PLOT_HEIGHT + MARGIN.bottom + legendEntries * LEGEND_ROW + 6;
    const svg = startSvg(container, spec, height);
    const innerWidth = WIDTH - MARGIN.left - MARGIN.right;
    const [x0, x1] = spec.x_domain || [0, 1];
    const [y0, y1] = spec.y_domain || [0, 1];
    const sx = (x) => MARGIN.left + ((x - x0) / (x1 - x0 || 1)) * innerWidth;
    const sy = (y) => MARGIN.top + PLOT_HEIGHT - ((y - y0) / (y1 - y0 || 1)) * PLOT_HEIGHT;

    const axes = el("g", { class: "axes" }, svg);
    el("rect", { x: MARGIN.left, y: MARGIN.top, width: innerWidth, height: PLOT_HEIGHT, fill: "#ffffff", stroke: "#5b6475" }, axes);
    const xTicks = spec.x_time ? timeTicks(x0, x1) : ticks(x0, x1, spec.integer_x);
    const yTicks = ticks(y0, y1, false);
    for (const value of xTicks.values) {
      const x = sx(value);
      el("line", { x1: x, x2: x, y1: MARGIN.top, y2: MARGIN.top + PLOT_HEIGHT, stroke: "#e3e7ee" }, axes);
      el("line", { x1: x, x2: x, y1: MARGIN.top + PLOT_HEIGHT, y2: MARGIN.top + PLOT_HEIGHT + 5, stroke: "#5b6475" }, axes);
      const label = spec.x_time ? timeLabel(value) : value.toFixed(xTicks.decimals);
      // Dates are long: the outermost ones are anchored inwards so they stay inside the picture.
      const anchor = !spec.x_time ? "middle" : value === xTicks.values[0] ? "start" : value === xTicks.values[xTicks.values.length - 1] ? "end" : "middle";
      text(axes, label, { x, y: MARGIN.top + PLOT_HEIGHT + 18, "text-anchor": anchor, fill: "#1d2433", "font-size": spec.x_time ? "10" : undefined });
    }
    for (const value of yTicks.values) {
      const y = sy(value);
      el("line", { x1: MARGIN.left, x2: MARGIN.left + innerWidth, y1: y, y2: y, stroke: "#e3e7ee" }, axes);
      el("line", { x1: MARGIN.left - 5, x2: MARGIN.left, y1: y, y2: y, stroke: "#5b6475" }, axes);
      text(axes, value.toFixed(yTicks.decimals), { x: MARGIN.left - 8, y: y + 4, "text-anchor": "end", fill: "#1d2433" });
    }
    text(axes, spec.x_label, {
      x: MARGIN.left + innerWidth / 2, y: MARGIN.top + PLOT_HEIGHT + 40, "text-anchor": "middle", "font-weight": "600", fill: "#1d2433",
    });
    text(axes, spec.y_label, {
      x: 0, y: 0, transform: `translate(16 ${MARGIN.top + PLOT_HEIGHT / 2}) rotate(-90)`, "text-anchor": "middle", "font-weight": "600", fill: "#1d2433",
    });

    const plotArea = el("g", { class: "series" }, svg);
    if (spec.diagonal) {
      el("line", {
        x1: sx(Math.max(x0, y0)), y1: sy(Math.max(x0, y0)), x2: sx(Math.min(x1, y1)), y2: sy(Math.min(x1, y1)),
        stroke: "#8a8f99", "stroke-width": 1.4, "stroke-dasharray": "2 4", class: "diagonal",
      }, plotArea);
    }
    series.forEach((entry, index) => {
      const stroke = colour(entry.colour);
      const points = entry.points || [];
      const shape = entry.shape || MARKERS[index % MARKERS.length];
      if (points.length && entry.line !== false) {
        const d = points.map(([x, y], i) => `${i ? "L" : "M"}${sx(x).toFixed(2)},${sy(y).toFixed(2)}`).join("");
        el("path", { d, fill: "none", stroke, "stroke-width": 2.4, "stroke-dasharray": entry.dash, "stroke-linejoin": "round", class: "curve" }, plotArea);
      }
      if (entry.markers) {
        const place = dodge(points, entry.offset || 0);
        points.forEach(([x, y, note], i) => {
          const mark = marker(plotArea, shape, sx(x) + place[i], sy(y), stroke);
          mark.setAttribute("class", "point");
          if (note) el("title", {}, mark).textContent = note;
        });
      }
      const ranges = entry.ranges || [];
      const rangePlace = dodge(ranges, entry.offset || 0);
      ranges.forEach(([x, low, high, note], i) => {
        const bar = el("line", {
          x1: sx(x) + rangePlace[i], x2: sx(x) + rangePlace[i], y1: sy(high), y2: sy(low), stroke, "stroke-width": 6,
          "stroke-linecap": "round", opacity: 0.85, class: "range",
        }, plotArea);
        if (note) el("title", {}, bar).textContent = note;
      });
    });

    const legend = el("g", { class: "legend", transform: `translate(${MARGIN.left} ${MARGIN.top + PLOT_HEIGHT + MARGIN.bottom})` }, svg);
    series.forEach((entry, index) => {
      const y = index * LEGEND_ROW;
      const stroke = colour(entry.colour);
      if (entry.ranges && entry.ranges.length) {
        el("line", { x1: 17, x2: 17, y1: y - 7, y2: y + 7, stroke, "stroke-width": 6, "stroke-linecap": "round" }, legend);
      } else if (entry.line !== false) {
        el("line", { x1: 0, x2: 34, y1: y, y2: y, stroke, "stroke-width": 2.6, "stroke-dasharray": entry.dash }, legend);
      }
      if (entry.markers && (entry.points || []).length) marker(legend, entry.shape || MARKERS[index % MARKERS.length], 17, y, stroke);
      text(legend, entry.label, { x: 42, y: y + 4, fill: "#1d2433" });
    });
    if (spec.diagonal) {
      const y = series.length * LEGEND_ROW;
      el("line", { x1: 0, x2: 34, y1: y, y2: y, stroke: "#8a8f99", "stroke-width": 1.4, "stroke-dasharray": "2 4" }, legend);
      text(legend, spec.diagonal, { x: 42, y: y + 4, fill: "#1d2433" });
    }
    if (!series.some((entry) => (entry.points || []).length || (entry.ranges || []).length)) {
      text(svg, gettext("No points to plot"), { x: MARGIN.left + innerWidth / 2, y: MARGIN.top + PLOT_HEIGHT / 2, "text-anchor": "middle", fill: "#5b6475" });
    }
    return svg;
  }

  /* White to Okabe–Ito blue (#0072B2) by the share of the true level's images. */
  function shade(share) {
    const t = Math.max(0, Math.min(1, share || 0));
    const mix = (from, to) => Math.round(from + (to - from) * t);
    return `rgb(${mix(255, 0)}, ${mix(255, 114)}, ${mix(255, 178)})`;
  }

  /* Confusion matrix: counts with the row share, shaded by the row share. */
  function heatmap(container, spec) {
    const labels = spec.labels || [];
    const n = labels.length || 1;
    const left = 96;
    const top = 44;
    const cell = Math.min(80, (WIDTH - left - 16) / n);
    const gridBottom = top + cell * n;
    const height = gridBottom + 84;
    const svg = startSvg(container, spec, height);

    text(svg, spec.x_label, { x: left + (cell * n) / 2, y: 14, "text-anchor": "middle", "font-weight": "600", fill: "#1d2433" });
    labels.forEach((label, j) => {
      text(svg, label, { x: left + cell * (j + 0.5), y: top - 8, "text-anchor": "middle", fill: "#1d2433" });
    });
    text(svg, spec.y_label, {
      x: 0, y: 0, transform: `translate(14 ${top + (cell * n) / 2}) rotate(-90)`, "text-anchor": "middle", "font-weight": "600", fill: "#1d2433",
    });
    (spec.rows || []).forEach((row, i) => {
      const y = top + cell * i;
      text(svg, row.label, { x: left - 8, y: y + cell / 2 + 4, "text-anchor": "end", fill: "#1d2433" });
      row.cells.forEach((entry, j) => {
        const x = left + cell * j;
        el("rect", { x, y, width: cell, height: cell, fill: shade(entry.share), stroke: i === j ? "#1d2433" : "#ffffff", "stroke-width": i === j ? 2 : 1, class: "cell" }, svg);
        const ink = (entry.share || 0) > 0.55 ? "#ffffff" : "#1d2433";
        text(svg, String(entry.count), { x: x + cell / 2, y: y + cell / 2 - 1, "text-anchor": "middle", "font-size": "15", "font-weight": "700", fill: ink });
        const share = entry.share === null || entry.share === undefined ? "–" : `${Math.round(entry.share * 100)}%`;
        text(svg, share, { x: x + cell / 2, y: y + cell / 2 + 15, "text-anchor": "middle", "font-size": "11", fill: ink });
      });
    });

    const gradientId = "plot-gradient-" + ++uniqueId;
    const gradient = el("linearGradient", { id: gradientId }, el("defs", {}, svg));
    el("stop", { offset: "0", "stop-color": shade(0) }, gradient);
    el("stop", { offset: "1", "stop-color": shade(1) }, gradient);
    const keyY = gridBottom + 24;
    el("rect", { x: left, y: keyY, width: cell * n, height: 12, fill: `url(#${gradientId})`, stroke: "#5b6475" }, svg);
    text(svg, "0%", { x: left, y: keyY + 26, "text-anchor": "start", fill: "#1d2433" });
    text(svg, "100%", { x: left + cell * n, y: keyY + 26, "text-anchor": "end", fill: "#1d2433" });
    text(svg, gettext("shade: share of the true level's images; outlined diagonal: correct"), {
      x: left + (cell * n) / 2, y: keyY + 44, "text-anchor": "middle", "font-size": "11", fill: "#5b6475",
    });
    return svg;
  }

  function draw(container, spec) {
    if (spec.kind === "heatmap") return heatmap(container, spec);
    return lines(container, spec);
  }

  /* Draw every [data-plot-spec="<json_script id>"] under root. */
  function drawAll(root) {
    for (const container of (root || document).querySelectorAll("[data-plot-spec]")) {
      const source = document.getElementById(container.dataset.plotSpec);
      if (!source) continue;
      draw(container, JSON.parse(source.textContent));
    }
  }

  global.PainPlots = { lines, heatmap, draw, drawAll };
})(window);
