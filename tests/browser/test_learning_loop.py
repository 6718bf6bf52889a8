"""The learning loop end to end, in headless Chromium with a real worker and its embedded beat: an
admin sets the retrain policy, a clinician's labels reach its count, beat starts the run, the
gate's verdict reaches the dashboard, and the admin promotes the version."""

from __future__ import annotations

import pytest
from django.urls import get_resolver

from annotation.intake import store_image
from annotation.models import Patient
from modeling.models import GateDecision, GateVerdict, ModelVersion, RunStatus, Stage, TrainingRun
from painsite.synthetic_faces import draw_face, encode_jpeg, make_identity
from tests.modeling.training_data import LABELS_PER_DATASET, make_dataset
from tests.workers import celery_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.system, pytest.mark.slow]

NEW_IMAGES = 3


def add_unlabelled_faces(patient: Patient, uploaded_by) -> None:
    import numpy as np

    rng = np.random.default_rng(11)
    identity = make_identity(rng, patient.cohort)
    for index in range(NEW_IMAGES):
        data = encode_jpeg(draw_face(identity, 6, rng, size=64))
        store_image(data=data, filename=f"new-{index}.jpg", patient=patient, uploaded_by=uploaded_by)


def test_labels_reach_the_policy_beat_trains_the_gate_judges_and_the_admin_promotes(
    page_for, admin_user, clinician, test_broker_url, worker_log_dir, artifacts_dir
):
    patients = make_dataset(clinician)
    add_unlabelled_faces(next(p for p in patients if p.code == "C-train-1"), clinician)
    get_resolver().url_patterns  # noqa: B018 - import every view before the browser's first request

    admin = page_for(admin_user, viewport={"width": 1280, "height": 900})
    admin.goto("/training/loop/", wait_until="domcontentloaded", timeout=60_000)
    admin.check("#id_enabled")
    admin.fill("#id_min_new_labels", str(LABELS_PER_DATASET + NEW_IMAGES))
    for field, value in {"epochs": "3", "image_size": "64", "batch_size": "8", "patience": "3", "seed": "1"}.items():
        admin.fill(f"#retrain-policy #id_{field}", value)
    admin.get_by_role("button", name="Save the retrain policy").click()
    admin.wait_for_selector("#policy-summary:has-text('at least 31 labels')")

    env = {"PAINSITE_LEARNING_LOOP_SECONDS": "1", "PAINSITE_BOOTSTRAP_RESAMPLES": "200"}
    with celery_worker(
        broker_url=test_broker_url, queues=("default", "training"), log_dir=worker_log_dir, beat=True, **env
    ) as worker:
        wait_for(lambda: "run_learning_loop" in worker.log(), timeout=60, message="beat's first learning-loop round")
        assert not TrainingRun.objects.exists()  # 28 labels: below the policy's count

        nurse = page_for(clinician)
        nurse.goto("/label/", wait_until="domcontentloaded", timeout=60_000)
        for _ in range(NEW_IMAGES):
            nurse.wait_for_selector("#labeling[data-idle=true]", state="attached")
            shown = nurse.inner_text("#image-id")
            nurse.keyboard.press("6")
            nurse.wait_for_selector(f"#label-status:has-text('for image {shown}')")
        nurse.wait_for_selector("#queue-empty:visible")

        wait_for(lambda: TrainingRun.objects.filter(triggered_by="policy").exists(), timeout=60, message="the policy")
        run = TrainingRun.objects.get()
        wait_for(
            lambda: not TrainingRun.objects.get(pk=run.pk).is_active, timeout=240, message="the policy's run to end"
        )
        wait_for(lambda: GateDecision.objects.exists(), timeout=60, message="the gate's verdict")
        log = worker.log()

    run = TrainingRun.objects.get(pk=run.pk)
    assert run.status == RunStatus.SUCCEEDED, (run.error, log)
    assert run.trigger["new_labels"] == LABELS_PER_DATASET + NEW_IMAGES and run.requested_by is None
    decision = GateDecision.objects.get()
    assert decision.challenger.training_run_id == run.pk and decision.verdict == GateVerdict.NO_PRODUCTION

    admin.goto("/", wait_until="domcontentloaded")
    verdict = admin.locator("#latest-verdict")
    assert decision.challenger.name in verdict.inner_text() and "promotion recommended" in verdict.inner_text()
    assert "promotion recommended" in admin.locator("#admin-notices").inner_text()
    admin.screenshot(path=str(artifacts_dir / "learning-loop-dashboard.png"), full_page=True)

    verdict.get_by_role("link", name="see the version").click()
    admin.wait_for_selector("#gate-decision [data-verdict=no_production]")
    admin.fill(f"#promote-reason-{decision.challenger_id}", "first version, recommended by the gate")
    if decision.challenger.is_random_init:  # no ImageNet weights on this machine
        admin.check(f"#confirm-random-init-{decision.challenger_id}")
    admin.get_by_role("button", name=f"Promote {decision.challenger.name} to production").click()
    admin.wait_for_selector(".promote-note:has-text('In production now.')")
    assert ModelVersion.objects.get(pk=decision.challenger_id).stage == Stage.PRODUCTION
    problems = [m for m in admin.console_messages + nurse.console_messages if m.startswith("pageerror")]
    assert problems == []
