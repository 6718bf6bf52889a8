// The patient chart: drawn by plots.js from the spec the page carries (annotation/timeline_plot.py).
(function () {
  "use strict";
  if (window.PainPlots) window.PainPlots.drawAll(document);
})();
