"""A ward round: read every camera whose next slot is due, assess the frames in one batch, record.

Beat sends a round to the `monitoring` queue every PAINSITE_WARD_TICK_SECONDS. A round

1. takes (claims) the current slot of each due camera: the camera row's `last_slot` moves
   forward only for the worker whose compare-and-set wins, and the slot's row is written at once
   (unique per camera and slot), so two workers never assess one slot and a restarted worker
   never repeats one. Slots between the previous one and the current one that no worker took
   (no worker ran, the worker was busy or dead) are written as one `missed` row: a gap is
   recorded, never silently skipped. A slot whose worker died after claiming it becomes `missed`
   when the next slot is claimed, or is taken again if it is still current once the claim ran out;
2. reads a frame from each (modeling/ward_frames.py), PAINSITE_WARD_READ_THREADS cameras at a
   time, finds the faces, and runs the production model over all frames with a face (batched
   VGG16 forward passes). Cameras shown offline are read too, but the other beds are assessed and
   recorded without waiting for them: a dead camera's timeout never delays a live bed's reading;
3. records each slot: `assessed` with level and probabilities; `no_face` (no level: no face, no
   score); `no_frame` (the camera gave nothing: after two in a row it is shown offline; the first
   frame back brings it online again);
4. counts severe assessments in a row per bed, as /monitor/ does, and raises an alert at
   PAINSITE_MONITOR_ALERT_CONSECUTIVE; escalates alerts nobody acknowledged.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image as PILImage

from annotation.faces import detect_face
from annotation.intake import DuplicateImage, ImageRejected, store_image
from annotation.models import Consent
from modeling import inference
from modeling.assessment import Prediction, describe
from modeling.inference import NoProductionModel, ServedModel
from modeling.ward import escalate_overdue_alerts
from modeling.ward_frames import CameraReader, Frame, cameras
from modeling.ward_models import CameraSource, ReadingKind, SourceStatus, StreamAssessment, WardAlert
from painsite.core.services import record_event

logger = logging.getLogger(__name__)

# As on /monitor/: frames without a face neither add to nor break a run of severe assessments,
# but this many slots without an assessed face start it again ("in a row" means minutes apart).
GAP_SLOTS = 3
# Failed reads in a row after which a camera is shown offline.
OFFLINE_AFTER_FAILED_READS = 2
# A claim older than this belongs to a worker presumed dead; its slot may be taken again while current.
CLAIM_SECONDS = 30


@dataclass
class Claim:
    source: CameraSource
    reading: StreamAssessment
    frame: Frame | None = None
    face_box: tuple[int, int, int, int] | None = None
    prediction: Prediction | None = None


@dataclass
class RoundReport:
    claimed: int = 0
    assessed: int = 0
    no_face: int = 0
    no_frame: int = 0
    missed_rows: int = 0
    alerts: list[int] = field(default_factory=list)
    seconds: float = 0.0
    # Seconds per phase: claim, read_and_detect, forward, record.
    phases: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    def timed(self, name: str, since: float) -> float:
        """Add the time since `since` to phase `name` (a round may go through a phase twice)."""
        now = time.monotonic()
        self.phases[name] = round(self.phases.get(name, 0.0) + now - since, 4)
        return now

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_ward_round(
    *, reader: CameraReader = cameras, worker: str | None = None, now: datetime | None = None
) -> RoundReport:
    """One round; `now` (default: the clock) decides which slots are due."""
    started = time.monotonic()
    report = RoundReport()
    escalate_overdue_alerts(now=now)
    try:
        version = inference.resolve_version(None)
    except NoProductionModel:
        report.reason = "no production model"
        _say_when_rounds_stop_or_resume(report.reason)
        return report
    _say_when_rounds_stop_or_resume("")
    # Loaded before any slot is taken, and the slots taken by the time after it: a first load takes
    # seconds, and each frame must be read inside its own slot.
    served = inference.models.get(version)
    phase = time.monotonic()
    claims = claim_due_slots(worker=worker or worker_name(), report=report, now=now or timezone.now())
    phase = report.timed("claim", phase)
    for group in read_frames(claims, reader=reader):
        phase = report.timed("read_and_detect", phase)
        predict_levels(group, served=served)
        phase = report.timed("forward", phase)
        for claim in group:
            record_claim(claim, version_id=served.version_id, report=report)
        phase = report.timed("record", phase)
    if report.missed_rows:
        logger.warning(
            "ward round: %s gap(s) of camera slots nobody assessed recorded as missed (no worker ran, or it was busy)",
            report.missed_rows,
        )
    report.seconds = round(time.monotonic() - started, 3)
    return report


# Why this process's rounds last assessed nothing ("" while they assess): the log says when that
# changes, once, since Celery's line for each round is not logged (painsite/core/log_filters.py).
_stopped_because = ""


def _say_when_rounds_stop_or_resume(reason: str) -> None:
    global _stopped_because
    if reason == _stopped_because:
        return
    if reason:
        logger.warning("ward rounds assess no camera: %s", reason)
    else:
        logger.info("ward rounds assess the cameras again")
    _stopped_because = reason


def claim_due_slots(*, worker: str, report: RoundReport, now: datetime | None = None) -> list[Claim]:
    now = now or timezone.now()
    claims = []
    sources = CameraSource.objects.filter(active=True, patient__isnull=False).select_related("patient")
    for source in sources:
        if source.patient.consent != Consent.GRANTED:
            # Nothing of theirs is assessed; the slots start afresh once consent is granted.
            if source.last_slot is not None:
                CameraSource.objects.filter(pk=source.pk).update(last_slot=None, severe_run=0, updated_at=now)
            continue
        claim = _claim(source, current=source.slot_at(now.timestamp()), worker=worker, now=now, report=report)
        if claim is not None:
            claims.append(claim)
    report.claimed = len(claims)
    return claims


def _claim(source: CameraSource, *, current: int, worker: str, now: datetime, report: RoundReport) -> Claim | None:
    previous = source.last_slot
    until = now + timedelta(seconds=CLAIM_SECONDS)
    with transaction.atomic():
        if previous is None or previous < current:
            taken = CameraSource.objects.filter(pk=source.pk, patient=source.patient, active=True)
            taken = taken.filter(last_slot__isnull=True) if previous is None else taken.filter(last_slot=previous)
            if not taken.update(last_slot=current):
                return None  # another worker took it, or the bed changed meanwhile
            common = {"source": source, "bed": source.bed, "patient": source.patient}
            common["interval_seconds"] = source.interval_seconds
            # A slot claimed by a worker that died before recording it.
            report.missed_rows += StreamAssessment.objects.filter(
                source=source, kind=ReadingKind.PENDING, slot__lt=current
            ).update(kind=ReadingKind.MISSED, claimed_until=None)
            if previous is not None and previous + 1 < current:
                StreamAssessment.objects.create(
                    **common, slot=previous + 1, last_slot=current - 1, kind=ReadingKind.MISSED
                )
                report.missed_rows += 1
            try:
                with transaction.atomic():
                    reading = StreamAssessment.objects.create(
                        **common, slot=current, last_slot=current, claimed_by=worker, claimed_until=until
                    )
            except IntegrityError:
                return None  # the slot has its row already: taken before the camera was changed
            source.last_slot = current
            return Claim(source=source, reading=reading)
        if previous == current:
            # Taken already: again only when the worker that took it is gone (its claim ran out).
            reading = StreamAssessment.objects.filter(
                source=source, slot=current, kind=ReadingKind.PENDING, claimed_until__lt=now
            ).first()
            if reading is not None:
                retaken = StreamAssessment.objects.filter(pk=reading.pk, claimed_until=reading.claimed_until)
                if retaken.update(claimed_by=worker, claimed_until=until):
                    return Claim(source=source, reading=reading)
    return None


def read_frames(claims: list[Claim], *, reader: CameraReader) -> Iterator[list[Claim]]:
    """Read the cameras PAINSITE_WARD_READ_THREADS at a time (waiting on a camera and decoding its
    frame release the GIL), so cameras that hang cost the round one timeout, not one each, and
    find the faces here, one frame after the other (OpenCV's detector already uses every core).

    Yields the claims in two groups, each once its frames are in and its faces found: first the
    cameras not shown offline, then those shown offline. A camera that stopped giving frames waits
    out its timeout on every round until it returns; the live beds are assessed meanwhile."""
    if not claims:
        return
    live = [claim for claim in claims if claim.source.status != SourceStatus.OFFLINE]
    waiting = [claim for claim in claims if claim.source.status == SourceStatus.OFFLINE]
    threads = max(1, min(settings.PAINSITE_WARD_READ_THREADS, len(claims)))
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ward-camera") as pool:
        # Submitted live cameras first: with one thread they are read first too.
        reads = [pool.submit(reader.read, claim.source.pk, claim.source.url) for claim in live + waiting]
        for group, group_reads in ((live, reads[: len(live)]), (waiting, reads[len(live) :])):
            if not group:
                continue
            for claim, read in zip(group, group_reads):
                claim.frame = read.result()
                if claim.frame is not None:
                    claim.face_box = detect_face(PILImage.fromarray(claim.frame.pixels))
            yield group


def predict_levels(claims: list[Claim], *, served: ServedModel) -> None:
    """One batched forward pass over every frame with a face; frames without one get nothing."""
    with_face = [claim for claim in claims if claim.face_box is not None]
    if not with_face:
        return
    pictures = [PILImage.fromarray(claim.frame.pixels) for claim in with_face]
    probabilities = served.predict_many(
        pictures, [claim.face_box for claim in with_face], batch_size=settings.PAINSITE_WARD_BATCH_SIZE
    )
    for claim, row in zip(with_face, probabilities):
        claim.prediction = describe(served, row)[0]


def record_claim(claim: Claim, *, version_id: int, report: RoundReport) -> None:
    now = timezone.now()
    reading = claim.reading
    frame_at = datetime.fromtimestamp(claim.frame.grabbed_at, tz=UTC) if claim.frame else None
    values: dict[str, object] = {"frame_at": frame_at, "assessed_at": now, "claimed_until": None}
    if claim.prediction is not None:
        values.update(
            kind=ReadingKind.ASSESSED,
            model_version_id=version_id,
            level=claim.prediction.level,
            probabilities=claim.prediction.probabilities,
            severe_probability=claim.prediction.severe_probability,
            face_box=list(claim.face_box),
        )
        report.assessed += 1
    elif claim.frame is not None:
        values["kind"] = ReadingKind.NO_FACE
        report.no_face += 1
    else:
        values["kind"] = ReadingKind.NO_FRAME
        report.no_frame += 1
    alert = None
    with transaction.atomic():
        # A late result replaces the `missed` a newer claim may have written meanwhile.
        StreamAssessment.objects.filter(pk=reading.pk).update(**values)
        for name, value in values.items():
            setattr(reading, name, value)
        source = CameraSource.objects.select_for_update().filter(pk=claim.source.pk, patient=reading.patient).first()
        if source is None:
            return  # the camera was removed or given another patient meanwhile: the row stays the patient's
        severe = claim.prediction is not None and claim.prediction.alert
        _update_state(source, reading, frame_at, severe=severe)
        source.save()
        if severe:
            alert = _raise_alert(source, reading)
    if alert is not None:
        report.alerts.append(alert.pk)
        if settings.PAINSITE_WARD_KEEP_ALERT_FRAMES and claim.frame is not None:
            _keep_alert_frame(alert, claim.frame)


def _update_state(source: CameraSource, reading: StreamAssessment, frame_at: datetime | None, *, severe: bool) -> None:
    source.last_reading = reading
    was = source.status
    if frame_at is not None:
        source.status = SourceStatus.ONLINE
        source.failed_grabs = 0
        source.last_frame_at = frame_at
    else:
        source.failed_grabs += 1
        if source.failed_grabs >= OFFLINE_AFTER_FAILED_READS:
            source.status = SourceStatus.OFFLINE
    # The worker's log says what changed, not that a round ran (painsite/core/log_filters.py), once
    # the change is committed.
    camera, bed, failed = source.pk, source.bed, source.failed_grabs
    if source.status != was and source.status == SourceStatus.OFFLINE:
        transaction.on_commit(
            lambda: logger.warning("camera %s (bed %s) is offline: no frame in %s slots in a row", camera, bed, failed)
        )
    elif source.status != was and was == SourceStatus.OFFLINE:
        transaction.on_commit(lambda: logger.info("camera %s (bed %s) is online again", camera, bed))
    face_gap = source.last_face_slot is None or reading.slot - source.last_face_slot >= GAP_SLOTS
    if reading.kind == ReadingKind.ASSESSED:
        if source.last_face_slot is not None and reading.slot - source.last_face_slot > GAP_SLOTS:
            source.severe_run = 0
        source.severe_run = source.severe_run + 1 if severe else 0
        source.last_face_slot = reading.slot
        source.last_assessment = reading
    elif face_gap:
        source.severe_run = 0


def _raise_alert(source: CameraSource, reading: StreamAssessment) -> WardAlert | None:
    if source.severe_run < settings.PAINSITE_MONITOR_ALERT_CONSECUTIVE:
        return None
    if WardAlert.objects.filter(source=source, patient=reading.patient, acknowledged_at__isnull=True).exists():
        return None
    try:
        with transaction.atomic():
            alert = WardAlert.objects.create(
                source=source,
                bed=source.bed,
                patient=reading.patient,
                reading=reading,
                severe_run=source.severe_run,
                severe_probability=reading.severe_probability,
            )
    except IntegrityError:
        return None  # raised by another worker a moment ago
    alert_id, bed, run = alert.pk, source.bed, source.severe_run
    transaction.on_commit(
        lambda: logger.warning("ward alert %s raised: bed %s, %s severe assessments in a row", alert_id, bed, run)
    )
    record_event(
        actor=None,
        action="ward.alert.raise",
        target=alert,
        details={
            "bed": source.bed,
            "patient": reading.patient.code,
            "severe_run": source.severe_run,
            "severe_probability": round(reading.severe_probability, 4),
            "model_version": reading.model_version_id,
        },
    )
    return alert


def _keep_alert_frame(alert: WardAlert, frame: Frame) -> None:
    """PAINSITE_WARD_KEEP_ALERT_FRAMES=1: the alert's frame becomes a stored image of the patient,
    through the same intake (and audit event) as any upload."""
    buffer = io.BytesIO()
    PILImage.fromarray(frame.pixels).save(buffer, "JPEG", quality=92)
    captured = datetime.fromtimestamp(frame.grabbed_at, tz=UTC)
    try:
        image = store_image(
            data=buffer.getvalue(),
            filename=f"ward-{alert.bed}-{alert.reading.slot}.jpg",
            patient=alert.patient,
            uploaded_by=None,
            captured_at=captured,
        ).image
    except DuplicateImage as duplicate:
        image = duplicate.existing_image
    except ImageRejected as refused:
        logger.warning("the frame of ward alert %s was not kept: %s", alert.pk, refused)
        return
    WardAlert.objects.filter(pk=alert.pk).update(image=image)
