"""A researcher reads /results/, switches cohort, and opens a comparison with its plots."""

from __future__ import annotations

import pytest

from tests.modeling.factories import make_model_version, make_predictions, make_test_set

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_researcher_switches_cohort_and_opens_a_comparison_with_roc_plots(page_for, researcher, artifacts_dir):
    test_set = make_test_set(patients_per_cohort=8, images_per_patient=5)
    older = make_model_version(
        name="v1",
        predictions=make_predictions(test_set, skill=1.0, seed=1),
        created_by=researcher,
        backbone="random-init",
    )
    newer = make_model_version(
        name="v2", predictions=make_predictions(test_set, skill=1.8, seed=2), cohorts=["clinical", "simulated"]
    )
    page = page_for(researcher, viewport={"width": 1280, "height": 900})

    page.goto("/results/")
    combined = page.locator('[data-cohort-panel="combined"]')
    clinical = page.locator('[data-cohort-panel="clinical"]')
    assert combined.is_visible() and not clinical.is_visible()
    url_before = page.url
    page.get_by_role("radio", name="Clinical (CPD)").check()
    assert clinical.is_visible() and not combined.is_visible()
    assert "cohort=clinical" in page.url and page.url.split("?")[0] == url_before.split("?")[0]

    # Sorting by macro AUROC puts the stronger version first, then the weaker one.
    clinical.locator('button.sort[data-column="macro_auroc"]').click()
    order = clinical.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.version)")
    assert order == [str(newer.pk), str(older.pk)]
    page.screenshot(path=str(artifacts_dir / "results-list.png"), full_page=True)

    page.get_by_role("button", name="Compare", exact=True).click()
    page.wait_for_url("**/results/compare/**")
    assert f"a={older.pk}" in page.url and f"b={newer.pk}" in page.url and "cohort=clinical" in page.url
    roc = page.locator('[data-plot-spec="plot-clinical-roc-severe"] svg')
    roc.wait_for()
    curves = roc.locator("path.curve")
    assert curves.count() == 2
    assert all(len(curves.nth(i).get_attribute("d")) > 20 for i in range(2))
    assert page.locator('[data-plot-spec="plot-clinical-confusion-a"] svg rect.cell').count() == 16
    page.locator("#compare-clinical").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / "results-compare.png"), full_page=True)

    page.get_by_role("link", name="v2", exact=True).first.click()
    page.wait_for_url(f"**/results/{newer.pk}/**")
    assert page.locator('[data-plot-spec="plot-training-1"] svg path.curve').get_attribute("d").count("L") == 2
    assert page.locator('[data-cohort-panel="clinical"]').is_visible()
    page.screenshot(path=str(artifacts_dir / "results-version.png"), full_page=True)
    # (The browser's own favicon request 404s; script errors and blocked content are what matter.)
    problems = [m for m in page.console_messages if m.startswith("pageerror") or "Content Security Policy" in m]
    assert problems == []
