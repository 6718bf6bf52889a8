/* Compare page: "Evaluate both on the current test set". A is evaluated on a snapshot of the
 * current locked test set, B on that very snapshot (so the data changing meanwhile cannot split
 * them), then both evaluations are followed through the API until they finish, and the page
 * reloads to show the paired comparison. Nothing here computes a number.
 */
(function () {
  "use strict";

  const POLL_MILLISECONDS = 1000;
  const STATUS_WORDS = { queued: gettext("Queued"), running: gettext("Running"), succeeded: gettext("Succeeded"), failed: gettext("Failed") };
  const fill = (text, values) => interpolate(text, values, true);

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
      if (!response.ok) throw new Error(body.error || fill(gettext("the server answered %(status)s"), { status: response.status }));
      return body;
    }

    function evaluate(url, snapshot) {
      return call(url, { method: "POST", body: JSON.stringify({ snapshot: snapshot }) });
    }

    async function current(url, id) {
      const page = await call(url, { method: "GET" });
      const found = page.results.find((evaluation) => evaluation.id === id);
      if (!found) throw new Error(fill(gettext("evaluation %(id)s is no longer listed"), { id: id }));
      return found;
    }

    // The API's progress message is recorded in English; the status word is the page's.
    function stateText(state) {
      return state.message || STATUS_WORDS[state.status] || state.status;
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
      if (failed) throw new Error(fill(gettext("an evaluation failed: %(reason)s"), { reason: failed.error.split("\n")[0] || failed.message }));
      const progress = states.reduce((sum, state) => sum + state.progress, 0) / states.length;
      if (states.every((state) => state.status === "succeeded")) {
        show(fill(gettext("Both evaluated on test snapshot #%(id)s: loading the paired comparison…"), { id: states[0].snapshot.id }), 1);
        window.location.reload();
        return;
      }
      show(fill(gettext("A: %(a)s. B: %(b)s."), { a: stateText(states[0]), b: stateText(states[1]) }), progress);
      window.setTimeout(() => follow(evaluations).catch(stop), POLL_MILLISECONDS);
    }

    function stop(error) {
      show(fill(gettext("Could not evaluate both: %(reason)s"), { reason: error.message }));
      button.disabled = false;
    }

    button.addEventListener("click", async () => {
      button.disabled = true;
      show(gettext("Freezing the current test set…"), 0);
      try {
        const first = await evaluate(urls[0], "current");
        const second = await evaluate(urls[1], first.snapshot.id);
        show(fill(gettext("Evaluating both on test snapshot #%(id)s (%(images)s images)…"), { id: first.snapshot.id, images: first.snapshot.n_images }), 0);
        await follow([first, second]);
      } catch (error) {
        stop(error);
      }
    });
  }

  for (const root of document.querySelectorAll("[data-evaluate-both]")) setUp(root);
})();
