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


def test_the_chart_draws_its_legend_and_keeps_marks_at_one_time_apart(page_for, clinician, clinician2, artifacts_dir):
    from annotation.services import record_label
    from modeling.models import Assessment
    from tests.annotation.factories import make_image
    from tests.modeling.registry_data import make_model_version

    patient = make_patient("P-chart")
    first, second = make_image(patient), make_image(patient)
    for image, self_report, observer, _observer2 in ((first, 7, 7, 6), (second, 3, 2, 2)):
        record_label(image=image, rater=clinician, nrs=self_report, kind="self_report")
        record_label(image=image, rater=clinician2, nrs=observer, kind="observer")
    from tests.conftest import make_user

    record_label(image=first, rater=make_user("third", "clinician"), nrs=7, kind="observer")
    version = make_model_version("v1")
    Assessment.objects.create(
        image=first,
        patient=patient,
        model_version=version,
        level="severe",
        face_found=True,
        probabilities={"none": 0.1, "mild": 0.1, "moderate": 0.1, "severe": 0.7},
    )
    page = page_for(clinician)
    page.goto(f"/patients/{patient.code}/", wait_until="domcontentloaded", timeout=60_000)
    chart = page.locator(".timeline-plot svg.plot-svg")
    chart.wait_for()
    legend = chart.locator("g.legend text").evaluate_all("nodes => nodes.map(node => node.textContent)")
    assert legend == ["Self-report (NRS)", "Observer (NRS)", "Model assessment (NRS range of its level)"]
    # Each legend entry has a drawn glyph of its own colour, not an empty box.
    assert chart.locator("g.legend circle, g.legend rect, g.legend line").count() == 3
    # The first image's self-report 7, both observer 7s and the severe bar: all at one time, none hidden.
    marks = chart.locator("g.series .point, g.series .range").all()
    assert len(marks) == 6
    notes = [mark.locator("title").text_content() for mark in marks]
    first_time = [mark for mark, note in zip(marks, notes) if note.endswith("NRS 7") or "severe" in note]
    centres = {round(mark.bounding_box()["x"] + mark.bounding_box()["width"] / 2) for mark in first_time}
    assert len(first_time) == 4 and len(centres) == 4
    page.screenshot(path=str(artifacts_dir / "patient-chart.png"), full_page=True)
    assert not [message for message in page.console_messages if message.startswith("pageerror")]
