"""Network cameras: an HTTP motion-JPEG stream on a real socket (tests/modeling/live_camera.py),
read by the same OpenCV code a ward's IP cameras are. The newest frame is assessed, not one that
waited in a buffer; a camera that freezes costs a round its timeout and no more, and once it is
shown offline not even that to the other beds; a camera unplugged and plugged back is read again
without a worker restart."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from modeling.ward_frames import CameraReader
from modeling.ward_models import CameraSource, ReadingKind, SourceStatus, StreamAssessment
from modeling.ward_rounds import run_ward_round
from painsite.synthetic_faces.video import face_frames
from tests.annotation.factories import make_patient
from tests.modeling.live_camera import MJPEGCamera, frame_number
from tests.modeling.ward_data import FACE_SEED, face_video, make_camera, production_model

pytestmark = pytest.mark.django_db

TIMEOUT = 1.0  # PAINSITE_WARD_CAMERA_TIMEOUT_SECONDS in these tests
INTERVAL = 10


@pytest.fixture
def camera():
    with MJPEGCamera(face_frames(seed=FACE_SEED, nrs=8)[0], fps=10) as live:
        yield live


@pytest.fixture
def reader():
    cameras = CameraReader(timeout_seconds=TIMEOUT)
    yield cameras
    cameras.close_all()


def test_a_live_camera_gives_its_newest_frame_not_the_ones_buffered_while_nobody_read(camera, reader):
    first = reader.read(1, camera.url)
    assert first is not None and first.pixels.shape == (240, 320, 3)

    time.sleep(1.5)  # about fifteen frames arrive while the worker does other things
    sent_before = camera.sent
    second = reader.read(1, camera.url)
    assert second is not None
    # About the frame the camera sent last when the read began (a few frames of slack for a busy
    # machine), not the frame that followed the first read in the buffer.
    assert frame_number(second.pixels) >= sent_before - 5, (frame_number(second.pixels), sent_before)
    assert frame_number(second.pixels) > frame_number(first.pixels) + 3


def test_a_frozen_camera_gives_no_frame_after_its_timeout_and_an_unplugged_one_comes_back(camera, reader):
    assert reader.read(1, camera.url) is not None

    camera.stalled.set()  # the connection stays open, nothing arrives
    started = time.monotonic()
    assert reader.read(1, camera.url) is None
    waited = time.monotonic() - started
    # The configured timeout, not FFmpeg's default of 30 s (generous bounds: this checks which
    # timeout applied, not how fast the machine is).
    assert TIMEOUT * 0.8 <= waited < 15, waited
    assert reader.open_cameras() == []  # closed, so the next read reconnects

    camera.stalled.clear()
    camera.unplug()
    assert reader.read(1, camera.url) is None  # connection refused
    camera.plug_in()
    back = reader.read(1, camera.url)
    assert back is not None and frame_number(back.pixels) <= camera.sent


class TimedReader(CameraReader):
    """The worker's reader, noting when each read began and ended, by camera."""

    def __init__(self) -> None:
        super().__init__()  # the timeout from the settings, as in the worker
        self.reads: dict[int, list[tuple[float, float]]] = {}
        self.last_read_ended_at: dict[int, float] = {}  # wall clock, to compare with rows' times

    def read(self, camera_id: int, url: str, *, now: float | None = None):
        began = time.monotonic()
        try:
            return super().read(camera_id, url, now=now)
        finally:
            self.reads.setdefault(camera_id, []).append((began, time.monotonic()))
            self.last_read_ended_at[camera_id] = time.time()


def test_a_round_assesses_a_live_camera_and_frozen_ones_do_not_hold_up_the_other_beds(admin_user, camera, settings):
    settings.PAINSITE_WARD_CAMERA_TIMEOUT_SECONDS = TIMEOUT
    production_model()
    frozen = [MJPEGCamera(face_frames(seed=FACE_SEED, nrs=8)[0], fps=10).plug_in() for _ in range(2)]
    reader = TimedReader()
    try:
        live = make_camera(admin_user, bed="1", url=camera.url, patient=make_patient("P-201"), interval=INTERVAL)
        stuck = make_camera(admin_user, bed="2", url=frozen[0].url, patient=make_patient("P-202"), interval=INTERVAL)
        also_stuck = make_camera(
            admin_user, bed="4", url=frozen[1].url, patient=make_patient("P-204"), interval=INTERVAL
        )
        recorded = make_camera(admin_user, bed="3", url=face_video(), patient=make_patient("P-203"), interval=INTERVAL)
        slot = int(timezone.now().timestamp() // INTERVAL)

        first = run_ward_round(reader=reader, worker="test", now=at_slot(slot))
        assert (first.assessed, first.no_frame) == (4, 0), first.as_dict()

        for each in frozen:
            each.stalled.set()
        # The frames they sent while round one assessed and recorded wait in the open connections,
        # and a busy machine can take one of them for a fresh frame (modeling/ward_frames.py,
        # BUFFERED_GRAB_SECONDS): the round connects anew to cameras that now send nothing.
        reader.close(stuck.pk)
        reader.close(also_stuck.pk)
        reader.reads.clear()
        second = run_ward_round(reader=reader, worker="test", now=at_slot(slot + 1))
        assert (second.assessed, second.no_frame) == (2, 2), second.as_dict()
        # The two frozen cameras waited out their timeouts at the same time, not one after the other.
        [(began, ended)], [(also_began, also_ended)] = reader.reads[stuck.pk], reader.reads[also_stuck.pk]
        assert began < also_ended and also_began < ended, reader.reads

        kinds = {row.source_id: row.kind for row in StreamAssessment.objects.filter(slot=slot + 1)}
        assert kinds == {
            live.pk: ReadingKind.ASSESSED,
            stuck.pk: ReadingKind.NO_FRAME,
            also_stuck.pk: ReadingKind.NO_FRAME,
            recorded.pk: ReadingKind.ASSESSED,
        }
        newest = StreamAssessment.objects.get(source=live, slot=slot + 1)
        assert newest.level and newest.probabilities

        run_ward_round(reader=reader, worker="test", now=at_slot(slot + 2))
        stuck.refresh_from_db()
        assert stuck.status == SourceStatus.OFFLINE  # two slots in a row without a frame

        for each in frozen:
            each.stalled.clear()
        run_ward_round(reader=reader, worker="test", now=at_slot(slot + 3))
        stuck.refresh_from_db()
        assert stuck.status == SourceStatus.ONLINE
    finally:
        reader.close_all()
        for each in frozen:
            each.unplug()


def test_a_camera_shown_offline_is_still_tried_but_the_live_beds_are_recorded_before_its_timeout(
    admin_user, camera, settings
):
    settings.PAINSITE_WARD_CAMERA_TIMEOUT_SECONDS = TIMEOUT
    production_model()
    dead = MJPEGCamera(face_frames(seed=FACE_SEED, nrs=8)[0], fps=10).plug_in()
    dead.stalled.set()  # it accepts the connection and sends nothing
    reader = TimedReader()
    try:
        live = make_camera(admin_user, bed="1", url=camera.url, patient=make_patient("P-211"), interval=INTERVAL)
        stuck = make_camera(admin_user, bed="2", url=dead.url, patient=make_patient("P-212"), interval=INTERVAL)
        CameraSource.objects.filter(pk=stuck.pk).update(status=SourceStatus.OFFLINE, failed_grabs=2)
        slot = int(timezone.now().timestamp() // INTERVAL)

        report = run_ward_round(reader=reader, worker="test", now=at_slot(slot))
        assert (report.assessed, report.no_frame) == (1, 1), report.as_dict()
        assessed = StreamAssessment.objects.get(source=live, slot=slot)
        assert assessed.kind == ReadingKind.ASSESSED
        # Recorded while the dead camera was still being waited for, not after its timeout.
        assert assessed.assessed_at.timestamp() < reader.last_read_ended_at[stuck.pk], (
            assessed.assessed_at.timestamp(),
            reader.last_read_ended_at[stuck.pk],
        )
        assert StreamAssessment.objects.get(source=stuck, slot=slot).kind == ReadingKind.NO_FRAME

        dead.stalled.clear()
        run_ward_round(reader=reader, worker="test", now=at_slot(slot + 1))
        stuck.refresh_from_db()
        assert stuck.status == SourceStatus.ONLINE  # tried every round, so back by itself
    finally:
        reader.close_all()
        dead.unplug()


def at_slot(slot: int):
    return timezone.datetime.fromtimestamp(slot * INTERVAL + 1, tz=timezone.get_current_timezone())
