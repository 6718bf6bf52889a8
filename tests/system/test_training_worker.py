"""Training runs through real `celery worker` processes: the API to a model version, cancel,
a worker killed with SIGKILL mid-run, and queues kept apart. Data is tiny (64 px, few patients)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from modeling import artifacts
from modeling.models import ModelVersion, RunStatus, TrainingRun
from painsite.core.models import AuditEvent
from painsite.core.tasks import ping
from tests.conftest import api_client_for
from tests.measurements import record
from tests.modeling.training_data import SMALL_CONFIG, make_dataset
from tests.workers import celery_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.system, pytest.mark.slow]

# Fast heartbeats and a short staleness limit, so a lost worker is noticed in seconds.
RECOVERY_ENV = {
    "PAINSITE_TRAINING_HEARTBEAT_SECONDS": "0.5",
    "PAINSITE_TRAINING_STALE_SECONDS": "4",
    "PAINSITE_REAPER_INTERVAL_SECONDS": "1",
    "PAINSITE_TRAINING_MAX_ATTEMPTS": "3",
}
# Many short epochs leave time to act while the run is in its epochs. An epoch on this tiny data
# takes about 13 ms (checkpoint and row write included), so 120 epochs last over a second.
LONG_RUN = {**SMALL_CONFIG, "epochs": 120, "patience": 120, "batch_size": 4}
# The cancel test's run must still be in its epochs when the cancel arrives, on the fastest CPU too:
# 40 epochs once ended before it (the run was then cancelled while evaluating). The most epochs a
# run may have last several seconds; the cancel is seen within a quarter of a second.
LONGEST_RUN = {**LONG_RUN, "epochs": 500, "patience": 500}


def run_row(run_id: int) -> TrainingRun:
    return TrainingRun.objects.defer("data_manifest").get(pk=run_id)


def start_run(user, **config) -> dict:
    response = api_client_for(user).post(reverse("api-training-runs"), {**SMALL_CONFIG, **config}, format="json")
    assert response.status_code == 202, response.json()
    return response.json()


def leftover_files(run_id: int) -> list[str]:
    """Files of a run that should not exist once it ended: checkpoints, partial writes."""
    data = Path(settings.PAINSITE_DATA_DIR)
    found = [str(p) for p in artifacts.run_work_dir(run_id).rglob("*")]
    found += [str(p) for p in (data / "models").rglob("*") if p.is_file() and p.name != "weights.pt"]
    return found


def test_a_run_goes_through_the_training_worker_and_each_worker_takes_only_its_queue(
    researcher, clinician, test_broker_url, worker_log_dir
):
    make_dataset(clinician)
    with (
        celery_worker(broker_url=test_broker_url, queues=("default",), log_dir=worker_log_dir) as default_worker,
        celery_worker(broker_url=test_broker_url, queues=("training",), log_dir=worker_log_dir) as training_worker,
    ):
        assert ping.delay().get(timeout=60)["pong"] is True
        body = start_run(researcher)
        run_id = body["id"]
        seen: list[tuple[str, float]] = [(body["status"], body["progress"])]
        client = api_client_for(researcher)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            body = client.get(reverse("api-training-run", args=[run_id])).json()
            if not seen or seen[-1] != (body["status"], body["progress"]):
                seen.append((body["status"], body["progress"]))
            if body["status"] not in ("queued", "running"):
                break
            time.sleep(0.1)
    statuses = [status for status, _ in seen]
    assert statuses[0] == "queued" and "running" in statuses and statuses[-1] == "succeeded", (body, seen)
    assert statuses.index("running") < len(statuses) - 1
    progress = [value for status, value in seen if status == "running"] + [seen[-1][1]]
    assert progress == sorted(progress) and len(set(progress)) >= 3 and progress[-1] == 1.0

    # "Task <name>[<id>] received": the registered-task list of the start-up banner names both.
    training_log, default_log = training_worker.log(), default_worker.log()
    assert "Task modeling.tasks.run_training[" in training_log and "Task painsite.core.tasks.ping[" not in training_log
    assert "Task painsite.core.tasks.ping[" in default_log and "Task modeling.tasks.run_training[" not in default_log

    version = ModelVersion.objects.get(training_run_id=run_id)
    assert body["model_version"] == version.pk and version.name == "v1" and version.stage == "candidate"
    for cohort in ("clinical", "simulated", "combined"):
        levels = version.metrics[cohort]["levels"]
        # PostgreSQL's jsonb does not keep key order: level_names carries it.
        assert version.metrics[cohort]["level_names"] == ["none", "mild", "moderate", "severe"]
        assert set(levels) == {"none", "mild", "moderate", "severe"}
        for level in levels.values():
            assert level["auroc"] is not None and 0 <= level["f1"] <= 1
            # Two test patients support no interval: withheld with the reason, never shown.
            assert level["ci"] is None and level["ci_not_estimable"].startswith("too few patients for intervals")
    test_patients = {p["patient"] for p in version.test_predictions}
    trained_on = {i["patient"] for i in version.data_manifest["images"] if i["split"] == "train"}
    assert test_patients == {"C-test-4", "S-test-3"} and not test_patients & trained_on
    assert len(version.test_predictions) == 8 and len(version.data_manifest_sha256) == 64
    assert version.backbone == "random-init" and "random-init" in run_row(run_id).message
    assert Path(version.weights_path).is_file() and leftover_files(run_id) == []
    assert {"torch", "torchvision"} <= set(version.library_versions) and version.device
    assert AuditEvent.objects.filter(action="model_version.create", object_id=str(version.pk)).exists()
    call_command("evaluate", version.name)  # the stored metrics are what its predictions give


def test_a_run_succeeds_on_a_training_worker_with_the_threads_pool(
    researcher, clinician, test_broker_url, worker_log_dir
):
    """docs/deploy.md starts GPU training workers with --pool threads: a prefork pool's task runs in
    a daemonic process, which may not start fine-tuning's image loading processes."""
    make_dataset(clinician)
    with celery_worker(
        broker_url=test_broker_url, queues=("training",), log_dir=worker_log_dir, extra_args=("--pool", "threads")
    ) as worker:
        run_id = start_run(researcher)["id"]
        wait_for(lambda: not run_row(run_id).is_active, timeout=240, message="the run to end")
        log = worker.log()
    run = run_row(run_id)
    assert run.status == RunStatus.SUCCEEDED, (run.status, run.error, log)
    assert "concurrency: 1 (thread)" in log
    assert ModelVersion.objects.filter(training_run_id=run_id).exists()


def test_cancel_stops_a_running_run_on_the_worker(researcher, clinician, test_broker_url, worker_log_dir):
    make_dataset(clinician, splits={"clinical": ["train", "val", "test"]})
    with celery_worker(broker_url=test_broker_url, queues=("training",), log_dir=worker_log_dir, **RECOVERY_ENV):
        run_id = start_run(researcher, **LONGEST_RUN)["id"]
        wait_for(lambda: run_row(run_id).epoch >= 1, timeout=180, interval=0.05, message="the run's first epoch")
        asked = time.monotonic()
        response = api_client_for(researcher).post(reverse("api-training-run-cancel", args=[run_id]))
        assert response.status_code == 200 and response.json()["cancel_requested"] is True
        wait_for(lambda: not run_row(run_id).is_active, timeout=60, message="the run to stop", interval=0.05)
        stopped_after = time.monotonic() - asked
    run = run_row(run_id)
    # What a researcher waits from the click to "cancelled" while epochs run (docs/reliability.md).
    record(
        "training_cancel_during_epochs",
        {"seconds_from_cancel_to_cancelled": round(stopped_after, 2)},
        broker=test_broker_url.split(":", 1)[0],
    )
    assert run.status == RunStatus.CANCELLED and run.message == "cancelled during training", run.message
    assert run.epoch < LONGEST_RUN["epochs"]
    assert not ModelVersion.objects.exists()
    assert leftover_files(run_id) == [] and not artifacts.run_artifact_dir(run_id).exists()


def test_a_cancel_while_the_run_is_evaluating_stops_the_evaluation(
    researcher, clinician, test_broker_url, worker_log_dir
):
    """The evaluation after the last epoch (test predictions, bootstrap per cohort) stops at the
    next batch or cohort instead of running to its end first. Many resamples make it long; ten
    test patients make the intervals estimable, so the bootstrap runs at all."""
    make_dataset(clinician, splits={"clinical": ["train", "val"] + ["test"] * 10})
    env = {**RECOVERY_ENV, "PAINSITE_BOOTSTRAP_RESAMPLES": "400000"}
    with celery_worker(broker_url=test_broker_url, queues=("training",), log_dir=worker_log_dir, **env) as worker:
        run_id = start_run(researcher)["id"]
        wait_for(lambda: run_row(run_id).message.startswith("evaluating"), timeout=180, message="the evaluation")
        asked = time.monotonic()
        response = api_client_for(researcher).post(reverse("api-training-run-cancel", args=[run_id]))
        assert response.status_code == 200
        wait_for(lambda: not run_row(run_id).is_active, timeout=120, message="the run to stop", interval=0.05)
        stopped_after = time.monotonic() - asked
        log = worker.log()
    run = run_row(run_id)
    record(
        "training_cancel_during_evaluation",
        {"seconds_from_cancel_to_cancelled": round(stopped_after, 2)},
        broker=test_broker_url.split(":", 1)[0],
    )
    assert run.status == RunStatus.CANCELLED, (run.status, run.error, log)
    assert run.message == "cancelled while evaluating on the test patients"
    assert not ModelVersion.objects.exists() and leftover_files(run_id) == []


def test_a_worker_killed_mid_run_is_detected_and_the_run_resumes_from_its_checkpoint(
    researcher, clinician, test_broker_url, worker_log_dir
):
    make_dataset(clinician, splits={"clinical": ["train", "val", "test"]})
    with celery_worker(
        broker_url=test_broker_url, queues=("default",), log_dir=worker_log_dir, beat=True, **RECOVERY_ENV
    ):
        with celery_worker(
            broker_url=test_broker_url, queues=("training",), log_dir=worker_log_dir, **RECOVERY_ENV
        ) as doomed:
            run_id = start_run(researcher, **LONG_RUN)["id"]
            wait_for(lambda: run_row(run_id).epoch >= 3, timeout=180, interval=0.05, message="epoch 3")
            doomed.kill()
        killed_at, killed_at_epoch = time.monotonic(), run_row(run_id).epoch
        assert run_row(run_id).status == RunStatus.RUNNING  # the row cannot know yet
        # Beat on the default worker notices the silent heartbeat and sends the run again.
        wait_for(lambda: run_row(run_id).status == RunStatus.QUEUED, timeout=60, message="the reaper")
        sent_again_after = time.monotonic() - killed_at
        with celery_worker(broker_url=test_broker_url, queues=("training",), log_dir=worker_log_dir, **RECOVERY_ENV):
            wait_for(lambda: not run_row(run_id).is_active, timeout=240, message="the resumed run to end")
            # The run removes its checkpoints just after its commit: stopping the worker in
            # between would leave them (the reaper's sweep would then remove them).
            wait_for(lambda: leftover_files(run_id) == [], timeout=60, message="the run's checkpoints to go")
    run = run_row(run_id)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.attempts == 2
    resumed_from = int(run.message.split("resumed from epoch ")[1].rstrip(")"))
    assert 1 <= resumed_from <= killed_at_epoch
    assert ModelVersion.objects.filter(training_run=run).count() == 1 == ModelVersion.objects.count()
    assert leftover_files(run_id) == []
    assert AuditEvent.objects.filter(action="training.resumed_after_worker_lost", object_id=str(run_id)).exists()
    record("worker_killed_beat", {
        "killed_at_epoch": killed_at_epoch, "resumed_from_epoch": resumed_from,
        "stale_seconds": float(RECOVERY_ENV["PAINSITE_TRAINING_STALE_SECONDS"]),
        "reaper_interval_seconds": float(RECOVERY_ENV["PAINSITE_REAPER_INTERVAL_SECONDS"]),
        "seconds_from_kill_to_run_sent_again_by_beat": round(sent_again_after, 2),
        "attempts": run.attempts, "status": run.status, "model_versions": ModelVersion.objects.count(),
    }, broker=test_broker_url.split(":", 1)[0])  # fmt: skip
