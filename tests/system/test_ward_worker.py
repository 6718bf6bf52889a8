"""A real `monitoring` worker (with its beat) reading real video files as bedside cameras, killed
with SIGKILL and replaced: every slot is accounted for exactly once."""

from __future__ import annotations

import shutil
import time

import pytest

from modeling.ward_models import CameraSource, ReadingKind, SourceStatus, StreamAssessment
from tests.annotation.factories import make_patient
from tests.modeling.ward_data import empty_bed_video, face_video, make_camera, production_model
from tests.workers import celery_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.system]

INTERVAL = 2
WORKER_SETTINGS = {"PAINSITE_WARD_TICK_SECONDS": "0.5", "PAINSITE_SEVERE_ALERT_THRESHOLD": "1.0"}


def rows(source: CameraSource) -> list[StreamAssessment]:
    return list(StreamAssessment.objects.filter(source=source).order_by("slot"))


def assessed(source: CameraSource) -> list[StreamAssessment]:
    return [row for row in rows(source) if row.kind == ReadingKind.ASSESSED]


def assert_every_slot_once(source: CameraSource) -> None:
    """The rows' slot ranges follow each other without a hole or an overlap."""
    found = rows(source)
    for before, after in zip(found, found[1:]):
        assert after.slot == before.last_slot + 1, [(row.slot, row.last_slot, row.kind) for row in found]


def test_a_worker_assesses_every_bed_at_its_interval_and_a_killed_worker_loses_and_repeats_no_slot(
    test_broker_url, worker_log_dir, admin_user, tmp_path
):
    production_model()
    face = make_camera(admin_user, bed="1", url=face_video(), patient=make_patient("P-1"), interval=INTERVAL)
    empty = make_camera(admin_user, bed="2", url=empty_bed_video(), patient=make_patient("P-2"), interval=INTERVAL)
    late_file = tmp_path / "bed-3.avi"
    late = make_camera(admin_user, bed="3", url=late_file, patient=make_patient("P-3"), interval=INTERVAL)

    with celery_worker(
        broker_url=test_broker_url, queues=("monitoring",), log_dir=worker_log_dir, beat=True, **WORKER_SETTINGS
    ) as worker:
        wait_for(lambda: len(assessed(face)) >= 3, timeout=120, message="three assessments of bed 1")
        found = assessed(face)
        for row in found:
            # Each frame was read inside its own slot (at the interval, not in a burst).
            assert row.slot * INTERVAL <= row.frame_at.timestamp() < (row.slot + 1) * INTERVAL + 1
            assert row.level and row.probabilities
        assert len({row.slot for row in found}) == len(found)
        # (A slot can pass while the worker loads the model: it is recorded as missed.)
        no_face = [row for row in rows(empty) if row.kind != ReadingKind.MISSED]
        assert no_face and all(row.kind == ReadingKind.NO_FACE and row.level == "" for row in no_face)
        assert all(row.probabilities is None and row.model_version is None for row in no_face)
        wait_for(
            lambda: CameraSource.objects.get(pk=late.pk).status == SourceStatus.OFFLINE, timeout=30, message="offline"
        )
        shutil.copy(face_video(), late_file)
        wait_for(
            lambda: CameraSource.objects.get(pk=late.pk).status == SourceStatus.ONLINE, timeout=30, message="online"
        )
        worker.kill()
    killed_at = time.time()
    # The worker's log says what changed, not that each of the many rounds ran.
    log = worker.log()
    assert f"camera {late.pk} (bed 3) is offline" in log and f"camera {late.pk} (bed 3) is online again" in log
    routine = [line for line in log.splitlines() if "run_ward_round[" in line or "due task ward" in line]
    assert routine == [], routine[:5]

    with celery_worker(
        broker_url=test_broker_url, queues=("monitoring",), log_dir=worker_log_dir, beat=True, **WORKER_SETTINGS
    ):
        after = int(time.time() // INTERVAL)
        wait_for(lambda: any(row.slot >= after + 1 for row in assessed(face)), timeout=120, message="assessed again")

    assert_every_slot_once(face)
    assert_every_slot_once(empty)
    gaps = [row for row in rows(face) if row.kind == ReadingKind.MISSED]
    # The slots while no worker ran are on record as not assessed, in one or two rows (the slot the
    # killed worker had claimed, if any, and the time until the new worker started).
    assert gaps and gaps[0].slot <= int(killed_at // INTERVAL) + 1
    assert all(row.level == "" for row in gaps)
    assert not StreamAssessment.objects.filter(kind=ReadingKind.PENDING, slot__lt=after).exists()
