"""Crash recovery: runs whose worker stopped sending heartbeats are resumed, then failed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from modeling import artifacts, services
from modeling.models import RunStatus, TrainingRun
from painsite.core.models import AuditEvent

pytestmark = pytest.mark.django_db


def make_running_run(*, seconds_since_heartbeat: float, attempts: int = 1, **fields) -> TrainingRun:
    heartbeat = timezone.now() - timedelta(seconds=seconds_since_heartbeat)
    return TrainingRun.objects.create(
        status=RunStatus.RUNNING, attempts=attempts, heartbeat_at=heartbeat, celery_task_id="first", **fields
    )


def test_a_run_with_a_stale_heartbeat_is_sent_again(settings, django_capture_on_commit_callbacks):
    settings.PAINSITE_TRAINING_STALE_SECONDS = 60
    run = make_running_run(seconds_since_heartbeat=61)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        reaped = services.reap_stale_runs()
    assert [(r.run_id, r.action) for r in reaped] == [(run.pk, "resumed")]
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.celery_task_id != "first"
    assert "resuming from the last checkpoint" in run.message
    assert len(callbacks) == 1
    assert AuditEvent.objects.filter(action="training.resumed_after_worker_lost").exists()


def test_a_run_with_a_fresh_heartbeat_is_left_alone(settings):
    settings.PAINSITE_TRAINING_STALE_SECONDS = 60
    run = make_running_run(seconds_since_heartbeat=5)
    assert services.reap_stale_runs() == []
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING


def test_a_run_that_lost_its_worker_too_often_fails_and_its_files_go(settings, django_capture_on_commit_callbacks):
    settings.PAINSITE_TRAINING_STALE_SECONDS = 60
    settings.PAINSITE_TRAINING_MAX_ATTEMPTS = 2
    run = make_running_run(seconds_since_heartbeat=600, attempts=2)
    checkpoint = artifacts.run_work_dir(run.pk) / "checkpoint.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"half an epoch")
    with django_capture_on_commit_callbacks(execute=True):
        reaped = services.reap_stale_runs()
    assert [r.action for r in reaped] == ["failed"]
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.finished_at is not None
    assert "attempt 2 of 2" in run.error
    assert not artifacts.run_work_dir(run.pk).exists()


def test_a_lost_run_that_was_being_cancelled_ends_cancelled(settings):
    settings.PAINSITE_TRAINING_STALE_SECONDS = 60
    run = make_running_run(seconds_since_heartbeat=120, cancel_requested=True)
    assert [r.action for r in services.reap_stale_runs()] == ["cancelled"]
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED


def test_the_reaper_runs_on_beat_and_its_task_reports_what_it_did(settings):
    from modeling.tasks import reap_stale_runs

    assert settings.CELERY_BEAT_SCHEDULE["reap-stale-training-runs"]["task"] == reap_stale_runs.name
    settings.PAINSITE_TRAINING_STALE_SECONDS = 60
    settings.PAINSITE_TRAINING_MAX_ATTEMPTS = 1
    run = make_running_run(seconds_since_heartbeat=61)
    assert reap_stale_runs.apply().get() == [{"run": run.pk, "action": "failed", "attempts": 1}]


def test_the_management_command_reaps(settings, capsys):
    from django.core.management import call_command

    settings.PAINSITE_TRAINING_STALE_SECONDS = 60
    settings.PAINSITE_TRAINING_MAX_ATTEMPTS = 1
    run = make_running_run(seconds_since_heartbeat=61)
    call_command("reap_stale_runs")
    assert f"run {run.pk}: failed" in capsys.readouterr().out


def test_the_reaper_removes_checkpoints_a_stopped_worker_left_after_its_run_ended(settings):
    """A worker stopped between a run's commit and the removal of its work folder leaves the
    checkpoints behind; the reaper removes them, and keeps those of queued and running runs."""
    ended = TrainingRun.objects.create(status=RunStatus.SUCCEEDED)
    waiting = TrainingRun.objects.create(status=RunStatus.QUEUED, queue="other", celery_task_id="sent")
    running = make_running_run(seconds_since_heartbeat=1, queue="third")
    for run in (ended, waiting, running):
        folder = artifacts.run_work_dir(run.pk)
        folder.mkdir(parents=True)
        (folder / "checkpoint.pt").write_bytes(b"an epoch")
    published = artifacts.run_artifact_dir(ended.pk) / "weights.pt"
    published.parent.mkdir(parents=True)
    published.write_bytes(b"weights")
    assert services.reap_stale_runs() == []
    assert not artifacts.run_work_dir(ended.pk).exists() and published.exists()
    assert artifacts.run_work_dir(waiting.pk).exists() and artifacts.run_work_dir(running.pk).exists()
