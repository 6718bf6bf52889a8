"""The ward board in headless Chromium: it follows the worker's records without a reload, and a
clinician acknowledges an alert with one click."""

from __future__ import annotations

import time

import numpy as np
import pytest
from django.utils import timezone

from modeling.assessment import Prediction
from modeling.ward import register_source
from modeling.ward_frames import Frame
from modeling.ward_models import WardAlert
from modeling.ward_rounds import RoundReport, claim_due_slots, record_claim
from painsite.core.models import AuditEvent
from tests.annotation.factories import make_patient
from tests.modeling.registry_data import make_model_version

pytestmark = pytest.mark.django_db(transaction=True)

LEVELS = ("none", "mild", "moderate", "severe")


def record_round(version, outcomes: dict[str, str | None], *, slot_offset: int = 0) -> None:
    """Record one round as a worker does (claim, then record), with the model's answer given per
    bed: a level name, "no_face" or None (no frame)."""
    now = timezone.now() + timezone.timedelta(seconds=10 * slot_offset)
    for claim in claim_due_slots(worker="browser-test", report=RoundReport(), now=now):
        outcome = outcomes[claim.source.bed]
        if outcome is not None:
            claim.frame = Frame(pixels=np.zeros((8, 8, 3), np.uint8), grabbed_at=time.time())
        if outcome not in (None, "no_face"):
            claim.face_box = (1, 1, 4, 4)
            probabilities = {name: (0.85 if name == outcome else 0.05) for name in LEVELS}
            claim.prediction = Prediction(
                version.pk, version.name, outcome, probabilities, probabilities["severe"], outcome == "severe"
            )
        record_claim(claim, version_id=version.pk, report=RoundReport())


def test_the_board_follows_the_beds_without_reloading_and_an_alert_is_acknowledged_with_one_click(
    page_for, clinician, admin_user, artifacts_dir, settings
):
    settings.PAINSITE_MONITOR_ALERT_CONSECUTIVE = 2
    version = make_model_version("v1", stage="production")
    for bed, code in (("1", "P-W1"), ("2", "P-W2"), ("3", "P-W3")):
        register_source(
            actor=admin_user, name=f"camera {bed}", url=f"rtsp://camera-{bed}/", bed=bed, patient=make_patient(code)
        )
    record_round(version, {"1": "severe", "2": "no_face", "3": None})

    page = page_for(clinician, viewport={"width": 1600, "height": 900})
    page.goto("/ward/", wait_until="domcontentloaded", timeout=60_000)
    bed1, bed2 = page.locator("article[data-bed='1']"), page.locator("article[data-bed='2']")
    bed1.locator(".bed-level:has-text('severe')").wait_for()
    assert "85 %" in bed1.inner_text() and "P-W1" in bed1.inner_text()
    assert "No face in view" in bed2.locator(".bed-level").inner_text()
    assert page.locator("#ward-no-model").is_hidden()  # a model is in production
    page.evaluate("window.notReloaded = true")

    record_round(version, {"1": "severe", "2": "mild", "3": None}, slot_offset=1)
    alert = WardAlert.objects.get()
    bed1.locator(".bed-alert button.acknowledge").wait_for(timeout=20_000)
    bed2.locator(".bed-level:has-text('mild')").wait_for()
    page.locator("article[data-bed='3'][data-state='offline']").wait_for()
    assert page.evaluate("window.notReloaded") is True
    assert bed1.locator(".sparkline circle").count() == 1  # P(severe) now, on the trend
    page.screenshot(path=str(artifacts_dir / "ward_board.png"), full_page=True)

    bed1.locator("button.acknowledge").click()
    page.wait_for_function("() => !document.querySelector(\"article[data-bed='1'] .bed-alert\")")
    alert.refresh_from_db()
    assert alert.acknowledged_by == clinician
    assert AuditEvent.objects.filter(action="ward.alert.acknowledge", actor=clinician).count() == 1
    assert not [message for message in page.console_messages if message.startswith(("error", "pageerror"))]

    page.set_viewport_size({"width": 800, "height": 1100})  # a tablet: the grid folds, nothing overflows
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    bed1.locator("a.bed-link").click()
    page.wait_for_url("**/patients/P-W1/")
