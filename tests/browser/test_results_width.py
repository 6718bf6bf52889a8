"""The versions table fits a 1440 px screen: every F1 column readable without scrolling."""

from __future__ import annotations

import pytest

from tests.modeling.factories import make_model_version, make_predictions, make_test_set

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_versions_table_fits_a_1440_px_screen_without_sideways_scrolling(page_for, researcher, artifacts_dir):
    test_set = make_test_set(patients_per_cohort=8, images_per_patient=5)
    make_model_version(
        name="v1",
        predictions=make_predictions(test_set, skill=1.0, seed=1),
        created_by=researcher,
        backbone="random-init",
    )
    make_model_version(
        name="v2", predictions=make_predictions(test_set, skill=1.8, seed=2), cohorts=["clinical", "simulated"]
    )
    page = page_for(researcher, viewport={"width": 1440, "height": 900})
    page.goto("/results/", wait_until="domcontentloaded", timeout=60_000)
    panel = page.locator('[data-cohort-panel="combined"]')
    scroller = panel.locator(".table-scroll")
    widths = scroller.evaluate("box => [box.scrollWidth, box.clientWidth, document.documentElement.scrollWidth]")
    page.screenshot(path=str(artifacts_dir / "results-1440.png"), full_page=True)
    assert widths[0] <= widths[1], f"table {widths[0]} px wide in a {widths[1]} px box"
    assert widths[2] <= 1440
    # Every metric column stays on screen and readable (its heading and values not squeezed).
    for cell in panel.locator("thead tr:last-child th, tbody td").all():
        box = cell.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 1440
    f1_macro = panel.locator('thead button[data-column="macro_f1"]')
    assert f1_macro.is_visible() and f1_macro.bounding_box()["x"] + f1_macro.bounding_box()["width"] <= 1440
