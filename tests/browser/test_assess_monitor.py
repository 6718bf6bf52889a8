"""Assess an uploaded photo and monitor a patient through Chromium's fake camera."""

from __future__ import annotations

import pytest
from django.urls import get_resolver

from annotation.models import Image, PainLabel, Patient
from modeling.inference import models
from modeling.ml.levels import PainLevels
from modeling.models import Assessment, Stage
from tests.modeling.tiny_model import make_face_jpeg, make_model_version, tiny_model

pytestmark = pytest.mark.django_db(transaction=True)

LEVEL_NAMES = PainLevels.parse().names


@pytest.fixture
def production(transactional_db):
    version = make_model_version(tiny_model(), name="v1", stage=Stage.PRODUCTION)
    # Load the model and import every URL module before the browser's first request, so a busy
    # machine does not spend the page's time budget on them in the live server thread.
    models.get(version)
    get_resolver().url_patterns
    return version


def test_the_monitor_assesses_camera_frames_and_charts_them_without_storing(page_for, clinician, production):
    page = page_for(clinician)
    page.goto("/monitor/", wait_until="domcontentloaded", timeout=60_000)
    page.fill("#monitor-interval", "1")
    page.click("#monitor-start")
    # Two assessments: a point per level each (the page's CSP forbids wait_for_function's eval).
    page.locator("#monitor-timeline circle.point").nth(2 * len(LEVEL_NAMES) - 1).wait_for(state="attached", timeout=60_000)
    assert page.inner_text("#monitor-level") in LEVEL_NAMES
    assert page.locator("#monitor-timeline g.series").count() == len(LEVEL_NAMES)
    assert page.locator("#monitor-timeline circle.point").count() >= 2 * len(LEVEL_NAMES)
    assert page.locator("#monitor-bars .bar-row").count() == len(LEVEL_NAMES)
    assert "nothing stored" in page.inner_text("#monitor-status")

    page.click("#monitor-pause")
    assert page.get_attribute("#monitor-pause", "aria-pressed") == "true"
    page.click("#monitor-stop")
    page.wait_for_selector("#monitor-status:has-text('Stopped')")
    assert Image.objects.count() == 0 and Assessment.objects.count() == 0
    assert not [message for message in page.console_messages if message.startswith("pageerror")]


def test_the_monitor_stores_frames_for_the_patient_when_record_is_on(page_for, clinician, production):
    patient = Patient.objects.create(code="P-MON", cohort="clinical", consent="granted")
    page = page_for(clinician)
    page.goto("/monitor/", wait_until="domcontentloaded", timeout=60_000)
    page.fill("#monitor-patient", "P-MON")
    page.check("#monitor-record")
    page.click("#monitor-start")
    page.wait_for_selector("#monitor-status:has-text('each frame stored')", timeout=60_000)
    page.click("#monitor-stop")
    assessment = Assessment.objects.filter(patient=patient).first()
    assert assessment is not None and assessment.model_version == production
    assert assessment.image.patient == patient


def test_an_uploaded_photo_shows_its_level_heatmap_and_takes_the_self_report(page_for, clinician, production):
    Patient.objects.create(code="P-001", cohort="clinical", consent="granted")
    page = page_for(clinician)
    page.goto("/assess/", wait_until="domcontentloaded", timeout=60_000)
    page.fill("#assess-patient", "P-001")
    page.set_input_files(
        "#assess-file", files=[{"name": "face.jpg", "mimeType": "image/jpeg", "buffer": make_face_jpeg(seed=1)}]
    )
    page.click("#assess-button")
    page.wait_for_selector("#assess-result:visible", timeout=60_000)
    assert page.inner_text("#result-level") in LEVEL_NAMES
    assert page.inner_text("#result-version") == "v1"
    assert page.locator("#result-bars .bar-row").count() == len(LEVEL_NAMES)
    assert page.get_attribute("#result-image", "src").startswith("data:image/png;base64,")
    page.uncheck("#heatmap-toggle")
    assert page.get_attribute("#result-image", "src").startswith("blob:")

    page.fill("#self-report-nrs", "6")
    page.click("#self-report button[type=submit]")
    page.wait_for_selector("#self-report-status:has-text('recorded')")
    label = PainLabel.objects.get(rater=clinician)
    assert (label.nrs, label.kind) == (6, "self_report")
    assert label.image == Assessment.objects.get().image
    assert not [message for message in page.console_messages if message.startswith("pageerror")]
