// The words people read for the codes the API answers with (pain levels), in the page's
// language: the same words as modeling/vocabulary.py. Needs the JavaScript catalog (base.html).
(function () {
  "use strict";
  const LEVELS = {
    none: pgettext("pain level", "none"),
    mild: pgettext("pain level", "mild"),
    moderate: pgettext("pain level", "moderate"),
    severe: pgettext("pain level", "severe"),
  };
  // A level configured under another name is shown as configured.
  window.PainSiteWords = {
    level: (name) => (Object.prototype.hasOwnProperty.call(LEVELS, name) ? LEVELS[name] : name),
  };
})();
