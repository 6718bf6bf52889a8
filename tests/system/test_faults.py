"""Faults a hospital deployment will meet, each caused for real and survived:

(a) the broker is down when a researcher starts a training run;
(b) the training worker is killed mid-run (PostgreSQL + Redis);
(c) PostgreSQL restarts while clinicians label;
(d) the media disk is full or read-only while images are uploaded.
"""

from __future__ import annotations

import errno
import io
import os
import subprocess
import threading
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
from tests.modeling.training_data import SMALL_CONFIG, make_dataset
from tests.system.faults import RedisServer, celery_publishing_to, redis_available, spare_port

needs_redis = pytest.mark.skipif(not redis_available(), reason="needs redis-server and redis-cli on PATH")


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
        finally:
            broker.stop()
    assert AuditEvent.objects.filter(action="training.sent_after_broker_outage", object_id=str(run.pk)).exists()


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
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)], capture_output=True).returncode == 0


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
    Patient.objects.create(code="P-disk", cohort="clinical")
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
