/* Compare page: "Evaluate both on the current test set". A is evaluated on a snapshot of the
 * current locked test set, B on that very snapshot (so the data changing meanwhile cannot split
 * them), then both evaluations are followed through the API until they finish, and the page
 * reloads to show the paired comparison. Nothing here computes a number.
 */
(function () {
  "use strict";

  const POLL_MILLISECONDS = 1000;

  function setUp(root) {
    const button = root.querySelector("[data-evaluate-both-button]");
    if (!button) return;
    const bar = root.querySelector("[data-evaluate-progress]");
    const status = root.querySelector("[data-evaluate-status]");
    const token = root.querySelector("input[name=csrfmiddlewaretoken]").value;
    const urls = [root.dataset.evaluationsA, root.dataset.evaluationsB];

    async function call(url, options) {
      const response = await fetch(url, {
        credentials: "same-origin",
        headers: { "X-CSRFToken": token, "Content-Type": "application/json", Accept: "application/json" },
        ...options,
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
      return body;
    }

    function evaluate(url, snapshot) {
      return call(url, { method: "POST", body: JSON.stringify({ snapshot: snapshot }) });
    }

    async function current(url, id) {
      const page = await call(url, { method: "GET" });
      const found = page.results.find((evaluation) => evaluation.id === id);
      if (!found) throw new Error(`evaluation ${id} is no longer listed`);
      return found;
    }

    function show(text, progress) {
      status.textContent = text;
      if (progress !== undefined) {
        bar.hidden = false;
        bar.value = progress;
      }
    }

    async function follow(evaluations) {
      const states = await Promise.all(evaluations.map((evaluation, index) => current(urls[index], evaluation.id)));
      const failed = states.find((state) => state.status === "failed");
      if (failed) throw new Error(`an evaluation failed: ${failed.error.split("\n")[0] || failed.message}`);
      const progress = states.reduce((sum, state) => sum + state.progress, 0) / states.length;
      if (states.every((state) => state.status === "succeeded")) {
        show(`Both evaluated on test snapshot #${states[0].snapshot.id}: loading the paired comparison…`, 1);
        window.location.reload();
        return;
      }
      show(`A: ${states[0].message || states[0].status}. B: ${states[1].message || states[1].status}.`, progress);
      window.setTimeout(() => follow(evaluations).catch(stop), POLL_MILLISECONDS);
    }

    function stop(error) {
      show(`Could not evaluate both: ${error.message}`);
      button.disabled = false;
    }

    button.addEventListener("click", async () => {
      button.disabled = true;
      show("Freezing the current test set…", 0);
      try {
        const first = await evaluate(urls[0], "current");
        const second = await evaluate(urls[1], first.snapshot.id);
        show(`Evaluating both on test snapshot #${first.snapshot.id} (${first.snapshot.n_images} images)…`, 0);
        await follow([first, second]);
      } catch (error) {
        stop(error);
      }
    });
  }

  for (const root of document.querySelectorAll("[data-evaluate-both]")) setUp(root);
})();
