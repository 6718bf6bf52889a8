// The language selector of every page: choosing a language applies it at once (the button is
// for browsers without JavaScript).
(function () {
  "use strict";
  const select = document.querySelector("[data-language-select]");
  if (!select) return;
  const button = select.form.querySelector("[data-language-submit]");
  if (button) button.hidden = true;
  select.addEventListener("change", () => select.form.submit());
})();
