"""Growing data through real workers: train v1, clinicians add images and labels (new test
patients among them), train v2; publishing v2 has the worker score v1 on v2's test snapshot, so
the comparison is paired without anyone asking."""

from __future__ import annotations

import pytest
from django.urls import reverse

from modeling.models import Evaluation, EvaluationStatus, ModelVersion, RunStatus, SplitAssignment, TrainingRun
from tests.conftest import api_client_for
from tests.modeling.training_data import SMALL_CONFIG, make_dataset, make_labelled_patient
from tests.workers import celery_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.system, pytest.mark.slow]


def train(researcher) -> ModelVersion:
    response = api_client_for(researcher).post(reverse("api-training-runs"), SMALL_CONFIG, format="json")
    assert response.status_code == 202, response.json()
    run_id = response.json()["id"]
    wait_for(lambda: not TrainingRun.objects.get(pk=run_id).is_active, timeout=300, message="the run to end")
    run = TrainingRun.objects.get(pk=run_id)
    assert run.status == RunStatus.SUCCEEDED, (run.status, run.error)
    return ModelVersion.objects.get(training_run_id=run_id)


def add_patient(code: str, cohort: str, split: str, *, rater, kind: str = "self_report") -> None:
    patient = make_labelled_patient(code, cohort, rater=rater, kind=kind)
    SplitAssignment.objects.create(patient=patient, split=split, seed=0)


def test_a_version_trained_on_more_data_is_paired_with_the_previous_one_on_its_snapshot(
    researcher, clinician, test_broker_url, worker_log_dir
):
    make_dataset(clinician)
    with celery_worker(broker_url=test_broker_url, queues=("default", "training"), log_dir=worker_log_dir) as worker:
        v1 = train(researcher)
        # Eight new test patients make ten: enough for an interval and a p-value (at least 10
        # patients, 5 with and 5 without each level; docs/metrics.md).
        for number in range(9, 13):
            add_patient(f"C-test-{number}", "clinical", "test", rater=clinician)
            add_patient(f"S-test-{number}", "simulated", "test", rater=clinician)
        # A patient whose targets come from an observer's estimate, not a self-report.
        add_patient("C-train-9", "clinical", "train", rater=clinician, kind="observer")
        v2 = train(researcher)
        trained = v2.evaluations.get(at_training=True)
        wait_for(
            lambda: Evaluation.objects.filter(
                model_version=v1,
                snapshot=trained.snapshot,
                status__in=[EvaluationStatus.SUCCEEDED, EvaluationStatus.FAILED],
            ).exists(),
            timeout=180,
            message="the worker to score v1 on v2's snapshot",
        )
        log = worker.log()

    rescored = Evaluation.objects.get(model_version=v1, snapshot=trained.snapshot)
    assert rescored.status == EvaluationStatus.SUCCEEDED, (rescored.error, log)
    assert "Task modeling.tasks.run_evaluation[" in log
    first = v1.evaluations.get(at_training=True)
    assert first.snapshot_id != trained.snapshot_id
    assert (first.snapshot.n_images, trained.snapshot.n_images) == (8, 40)
    assert len(rescored.predictions) == 40 and rescored.progress == 1.0

    body = (
        api_client_for(researcher)
        .get(reverse("api-model-versions-compare"), {"a": v1.pk, "b": v2.pk, "cohort": "combined"})
        .json()
    )
    assert body["paired"] is True and body["reason"] is None
    assert body["snapshot"]["id"] == trained.snapshot_id and body["snapshot"]["sha256"] == trained.snapshot.sha256
    assert (body["snapshot"]["n_images"], body["snapshot"]["n_patients"]) == (40, 10)
    assert body["n_images"] == 40
    levels = body["levels"].values()
    # The patient-clustered p-value and the paired interval, on the grown test set.
    assert any(level["p_value"] is not None and level["delta_ci"] is not None for level in levels)
    for level in levels:
        # The ML core may find an interval not estimable on so few patients: then it says why.
        assert level["delta_ci"] is None or len(level["delta_ci"]) == 2
        assert level["delta_auroc"] is None or level["delta_ci"] is not None or level["delta_ci_not_estimable"]

    sources = ModelVersion.objects.get(pk=v2.pk).data_manifest["target_sources"]
    assert sources["train"] == {"observer_median": 4, "self_report": 12}
