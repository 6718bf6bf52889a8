"""Faults a hospital deployment will meet, each caused for real and survived:

(a) the broker is down when a researcher starts a training run;
(b) the training worker is killed mid-run (PostgreSQL + Redis);
(c) PostgreSQL restarts while clinicians label;
(d) the media disk is full or read-only while images are uploaded.
"""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
import time

import pytest
from django.core.files.storage import FileSystemStorage
from django.db import connection
from django.urls import reverse

from annotation.models import Image, Patient
from modeling import services
from modeling.models import RunStatus, TrainingRun
from painsite.core.models import AuditEvent
from tests.annotation.image_factories import make_jpeg
from tests.conftest import api_client_for
from tests.measurements import record
from tests.modeling.training_data import SMALL_CONFIG, make_dataset
from tests.system.faults import (
    PostgresServer,
    RedisServer,
    celery_publishing_to,
    postgres_unavailable_reason,
    redis_available,
    spare_port,
)
from tests.workers import REPO_ROOT

needs_redis = pytest.mark.skipif(not redis_available(), reason="needs redis-server and redis-cli on PATH")
# Fast heartbeats and a short staleness limit, so a lost worker is noticed in seconds; many short
# epochs leave time to act while the run is in them.
RECOVERY_ENV = {"PAINSITE_TRAINING_HEARTBEAT_SECONDS": "0.5", "PAINSITE_TRAINING_STALE_SECONDS": "4"}
LONG_RUN = {**SMALL_CONFIG, "epochs": 120, "patience": 120, "batch_size": 4}  # over a second of epochs


def run_row(run_id: int) -> TrainingRun:
    return TrainingRun.objects.defer("data_manifest").get(pk=run_id)


def start_run(user, **config) -> int:
    response = api_client_for(user).post(reverse("api-training-runs"), {**SMALL_CONFIG, **config}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


# ---------------------------------------------------------------------------------------------
# (a) The broker is down when a run is started


@needs_redis
@pytest.mark.system
@pytest.mark.django_db(transaction=True)
def test_a_run_started_while_the_broker_is_down_is_answered_and_sent_when_it_returns(researcher, clinician):
    make_dataset(clinician, splits={"clinical": ["train", "val", "test"]})
    broker = RedisServer(spare_port())  # nothing listens on the port yet: the broker is down
    with celery_publishing_to(broker.url):
        response = api_client_for(researcher).post(reverse("api-training-runs"), SMALL_CONFIG, format="json")
        assert response.status_code == 202, response.content
        body = response.json()
        assert body["status"] == "queued" and "broker is unreachable" in body["message"]
        run = TrainingRun.objects.get(pk=body["id"])
        assert run.status == RunStatus.QUEUED and run.celery_task_id == "" and "broker is unreachable" in run.message

        # A reaper pass while the broker is still down changes nothing and raises nothing.
        assert services.reap_stale_runs() == []
        assert TrainingRun.objects.get(pk=run.pk).celery_task_id == ""

        broker.start()
        try:
            reaped = services.reap_stale_runs()
            assert [(item.run_id, item.action) for item in reaped] == [(run.pk, "sent")]
            assert broker.queue_length("training") == 1
            run.refresh_from_db()
            assert run.status == RunStatus.QUEUED and run.celery_task_id and "broker came back" in run.message
            # Sent once: the next pass finds nothing left to send.
            assert services.reap_stale_runs() == [] and broker.queue_length("training") == 1
            messages_after_second_pass = broker.queue_length("training")
        finally:
            broker.stop()
    assert AuditEvent.objects.filter(action="training.sent_after_broker_outage", object_id=str(run.pk)).exists()
    record("broker_down", {
        "status_while_down": response.status_code, "message_while_down": body["message"],
        "reaped_when_back": [item.action for item in reaped],
        "training_queue_messages_after_two_passes": messages_after_second_pass,
    }, broker="redis (own server)")  # fmt: skip


# ---------------------------------------------------------------------------------------------
# (b) The training worker is killed mid-run, on PostgreSQL with a Redis broker


@needs_redis
@pytest.mark.system
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="re-checks worker loss on PostgreSQL: set DATABASE_URL=postgres://..."
)
def test_a_worker_killed_mid_run_on_postgres_and_redis_is_resumed_once_and_a_late_duplicate_changes_nothing(
    researcher, clinician, worker_log_dir, settings
):
    from modeling.models import ModelVersion
    from modeling.tasks import run_training
    from tests.workers import celery_worker, wait_for

    make_dataset(clinician, splits={"clinical": ["train", "val", "test"]})
    settings.PAINSITE_TRAINING_STALE_SECONDS = float(RECOVERY_ENV["PAINSITE_TRAINING_STALE_SECONDS"])
    # A Redis of the test's own: killing workers must not disturb anyone else's queues.
    broker = RedisServer(spare_port())
    broker.start()
    try:
        with celery_publishing_to(broker.url):
            with celery_worker(
                broker_url=broker.url, queues=("training",), log_dir=worker_log_dir, **RECOVERY_ENV
            ) as doomed:
                run_id = start_run(researcher, **LONG_RUN)
                first_task_id = run_row(run_id).celery_task_id
                wait_for(lambda: run_row(run_id).epoch >= 2, timeout=180, interval=0.05, message="epoch 2")
                doomed.kill()
                killed_at, killed_at_epoch = time.monotonic(), run_row(run_id).epoch
            assert run_row(run_id).status == RunStatus.RUNNING  # the row cannot know yet
            wait_for(lambda: services.reap_stale_runs() != [], timeout=30, message="the reaper to see the lost worker")
            seen_lost_after = time.monotonic() - killed_at
            assert run_row(run_id).status == RunStatus.QUEUED and run_row(run_id).celery_task_id != first_task_id
            with celery_worker(
                broker_url=broker.url, queues=("training",), log_dir=worker_log_dir, **RECOVERY_ENV
            ) as worker:
                wait_for(lambda: not run_row(run_id).is_active, timeout=240, message="the resumed run to end")
                # The killed worker's delivery, arriving late (Redis redelivers unacknowledged tasks).
                run_training.apply_async(args=[run_id], task_id=first_task_id, queue="training")
                wait_for(
                    lambda: worker.log().count("succeeded in") >= 2, timeout=60, message="the duplicate to be handled"
                )
    finally:
        broker.stop()
    run = run_row(run_id)
    assert run.status == RunStatus.SUCCEEDED and run.attempts == 2, (run.status, run.error)
    assert "resumed from epoch" in run.message
    assert ModelVersion.objects.filter(training_run=run).count() == 1 == ModelVersion.objects.count()
    record("worker_killed", {
        "killed_at_epoch": killed_at_epoch, "stale_seconds": settings.PAINSITE_TRAINING_STALE_SECONDS,
        "heartbeat_seconds": float(RECOVERY_ENV["PAINSITE_TRAINING_HEARTBEAT_SECONDS"]),
        "seconds_from_kill_to_reaper_seeing_it": round(seen_lost_after, 2),
        "resumed_from_epoch": int(run.message.split("resumed from epoch ")[1].split(")")[0]),
        "attempts": run.attempts, "status": run.status, "model_versions": ModelVersion.objects.count(),
    }, broker="redis (own server)")  # fmt: skip


# ---------------------------------------------------------------------------------------------
# (c) PostgreSQL restarts while clinicians label


@pytest.mark.system
@pytest.mark.skipif(postgres_unavailable_reason() is not None, reason=postgres_unavailable_reason() or "")
def test_postgres_restarting_while_clinicians_label_answers_503_then_labeling_resumes_and_nothing_is_lost(tmp_path):
    """bench/load.py against gunicorn on a PostgreSQL server of the test's own, stopped for two
    seconds four seconds into the load."""
    server = PostgresServer(spare_port())
    try:
        server.init()
        output = tmp_path / "load.json"
        command = [
            sys.executable, "bench/load.py", "--database-url", server.url, "--seconds", "12", "--clients", "8",
            "--workers", "2", "--threads", "4", "--images", "16", "--output", str(output),
            "--fault-at", "4", "--fault-command", server.restart_shell_command(down_seconds=2),
        ]  # fmt: skip
        finished = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    finally:
        server.destroy()
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    report = json.loads(output.read_text())
    check = report["check"]
    # Nothing acknowledged is lost, nothing is stored twice, nothing unacknowledged slipped in.
    assert check["lost"] == 0 and check["stored_but_not_acknowledged"] == 0 and check["acknowledged_twice"] == 0, report
    assert check["chains_with_two_starts"] == 0 and check["image_counter_mismatches"] == 0, report
    # During the outage the answer is 503 (retry later), never a 500 or a dropped connection.
    assert set(report["statuses"]) <= {"201", "503"} and report["connection_errors"] == 0, report
    assert int(report["fault"]["during"].get("503", 0)) >= 1, report
    # Before it and after it, clinicians label.
    assert int(report["fault"]["before"].get("201", 0)) >= 1 and int(report["fault"]["after"].get("201", 0)) >= 1, (
        report
    )
    record("postgres_restart", {"load": report, "down_seconds": 2, "stopped_at_second": 4})


# ---------------------------------------------------------------------------------------------
# (d) The media disk is full or read-only


class FullDisk(FileSystemStorage):
    """The OS answer of a full disk (ENOSPC) from the point where the file is written."""

    def _save(self, name, content):
        raise OSError(errno.ENOSPC, "No space left on device", name)


class ReadOnlyDisk(FileSystemStorage):
    def _save(self, name, content):
        raise OSError(errno.EROFS, "Read-only file system", name)


def mount_small_disk(path) -> bool:
    """A 64 KiB tmpfs at `path`; False where this machine does not let the test mount one."""
    path.mkdir(parents=True, exist_ok=True)
    return (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)], capture_output=True).returncode
        == 0
    )


def break_disk(path, *, read_only: bool) -> None:
    if read_only:
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True, capture_output=True)
        return
    descriptor = os.open(path / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(descriptor, b"\0" * 4096):
            pass
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(descriptor)


@pytest.fixture(params=["full", "read-only"])
def broken_media(request, settings, tmp_path):
    """MEDIA_ROOT on a disk that is full or read-only: a real tiny filesystem where the machine
    allows mounting one, else a storage whose writes fail with the same OS error."""
    media = tmp_path / "broken-media"
    read_only = request.param == "read-only"
    real = mount_small_disk(media)
    try:
        if real:
            break_disk(media, read_only=read_only)
            backend = "django.core.files.storage.FileSystemStorage"
        else:
            backend = f"{__name__}.{'ReadOnlyDisk' if read_only else 'FullDisk'}"
        settings.MEDIA_ROOT = media
        settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": backend, "OPTIONS": {"location": str(media)}}}
        yield {"kind": request.param, "real": real, "path": media, "before": sorted(p.name for p in media.rglob("*"))}
    finally:
        if real:
            subprocess.run(["umount", str(media)], check=True, capture_output=True)


@pytest.mark.django_db
def test_an_upload_to_a_full_or_read_only_disk_fails_clearly_and_writes_no_row(clinician, broken_media):
    Patient.objects.create(code="P-disk", cohort="clinical", consent="granted")
    client = api_client_for(clinician)
    upload = io.BytesIO(make_jpeg(seed=5))
    upload.name = "face.jpg"
    response = client.post(reverse("api-images"), {"file": upload, "patient": "P-disk"}, format="multipart")

    assert response.status_code == 507, (broken_media, response.status_code, response.content[:300])
    body = response.json()
    assert "nothing was saved" in body["error"] and body["details"]["reason"] in ("disk full", "read-only")
    assert not Image.objects.exists()
    assert not AuditEvent.objects.filter(action="image.upload").exists()
    assert sorted(p.name for p in broken_media["path"].rglob("*") if p.is_file()) == [
        name for name in broken_media["before"] if name == "filler"
    ]
