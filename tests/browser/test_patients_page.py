"""The patients list and a patient's chart, in headless Chromium."""

from __future__ import annotations

import pytest

from tests.annotation.factories import make_patient

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_clinician_searches_patients_by_code_and_the_pages_keep_the_search(page_for, clinician, artifacts_dir):
    for number in range(55):
        make_patient(f"WARD7-{number:03d}")
    for number in range(5):
        make_patient(f"ICU-{number:03d}")
    page = page_for(clinician)
    page.goto("/patients/", wait_until="domcontentloaded", timeout=60_000)
    page.fill("input[name=q]", "ward7")
    page.click("form.filters button[type=submit]")
    page.wait_for_selector("caption:has-text('55 patients')")
    assert "ICU-" not in page.inner_text("table.data")
    page.screenshot(path=str(artifacts_dir / "patients-search.png"), full_page=True)
    page.click("nav.pager >> text=Next")
    page.wait_for_selector("nav.pager:has-text('Page 2 of 2')")
    codes = page.locator("table.data tbody td:first-child").all_inner_texts()
    assert len(codes) == 5 and all(code.startswith("WARD7-") for code in codes)
    assert page.input_value("input[name=q]") == "ward7"
