/* Results pages: switch the evaluation cohort without reloading, sort the versions table, apply
 * the stage filter on change, and draw the plots (static/js/plots.js). Without JavaScript the
 * forms still work by reloading with ?cohort= and ?stage=.
 */
(function () {
  "use strict";

  function showCohort(cohort) {
    for (const panel of document.querySelectorAll("[data-cohort-panel]")) {
      panel.hidden = panel.dataset.cohortPanel !== cohort;
    }
    for (const input of document.querySelectorAll("[data-cohort-input]")) input.value = cohort;
    for (const link of document.querySelectorAll("a[data-keep-cohort]")) {
      const target = new URL(link.href);
      target.searchParams.set("cohort", cohort);
      link.href = target.toString();
    }
    for (const radio of document.querySelectorAll("[data-cohort-switch] input[name=cohort]")) {
      radio.checked = radio.value === cohort;
    }
    const url = new URL(window.location.href);
    url.searchParams.set("cohort", cohort);
    window.history.replaceState(null, "", url);
  }

  function setUpCohortSwitch() {
    for (const fieldset of document.querySelectorAll("[data-cohort-switch]")) {
      fieldset.addEventListener("change", (event) => {
        if (event.target.name === "cohort") showCohort(event.target.value);
      });
      // Choices apply at once with JavaScript, so the form's submit button is only clutter.
      const form = fieldset.closest("form");
      if (form) for (const button of form.querySelectorAll("button[type=submit]")) button.hidden = true;
    }
  }

  function cellValue(row, index, type) {
    const cell = row.children[index];
    const raw = cell ? cell.dataset.value : undefined;
    if (raw === undefined || raw === "") return null;
    return type === "number" ? Number(raw) : raw;
  }

  /* Missing values (n/a) always sort last, in either direction. */
  function sortTable(table, header, button) {
    const index = Array.prototype.indexOf.call(header.parentElement.children, header);
    const type = button.dataset.sortType;
    const current = header.getAttribute("aria-sort");
    // Scores read best-first, so a first click on a number sorts descending.
    const direction = current === "descending" ? "ascending" : current === "ascending" ? "descending" : type === "number" ? "descending" : "ascending";
    const body = table.tBodies[0];
    const rows = Array.from(body.rows).filter((row) => row.dataset.version);
    rows.sort((a, b) => {
      const x = cellValue(a, index, type);
      const y = cellValue(b, index, type);
      if (x === null || y === null) return x === null ? (y === null ? 0 : 1) : -1;
      const order = type === "number" ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
      return direction === "ascending" ? order : -order;
    });
    for (const row of rows) body.appendChild(row);
    for (const other of header.parentElement.children) other.setAttribute("aria-sort", "none");
    header.setAttribute("aria-sort", direction);
  }

  function setUpSorting() {
    for (const table of document.querySelectorAll("table[data-sortable]")) {
      table.addEventListener("click", (event) => {
        const button = event.target.closest("button.sort");
        if (button) sortTable(table, button.closest("th"), button);
      });
    }
  }

  function setUpAutosubmit() {
    for (const select of document.querySelectorAll("[data-autosubmit]")) {
      select.addEventListener("change", () => select.form.submit());
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    setUpCohortSwitch();
    setUpSorting();
    setUpAutosubmit();
    if (window.PainPlots) window.PainPlots.drawAll(document);
  });
})();
