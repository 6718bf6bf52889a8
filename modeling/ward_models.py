"""Ward monitoring records: bedside cameras, what each interval of each camera gave, and alerts.

A camera's time is cut into slots of `interval_seconds` (slot = floor(unix time / interval)).
Every slot a monitoring worker handled has exactly one `StreamAssessment` row (the database
refuses a second), so a restarted worker neither repeats nor skips one: slots that no worker
handled are recorded as one `missed` row spanning them. Frames themselves are not kept
(docs/deploy.md, "Ward monitoring").
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from annotation.models import Image, Patient


class SourceStatus(models.TextChoices):
    UNKNOWN = "unknown", _("Not seen yet")
    ONLINE = "online", _("Online")
    OFFLINE = "offline", _("Offline")


class CameraSource(models.Model):
    """One bedside camera: a URL OpenCV reads (RTSP, HTTP MJPEG or a video file) and its state."""

    name = models.CharField(max_length=100, unique=True)
    url = models.CharField(max_length=1000, help_text=_("what cv2.VideoCapture opens: rtsp://, http:// or a file path"))
    bed = models.CharField(max_length=64, unique=True)
    patient = models.ForeignKey(Patient, null=True, blank=True, on_delete=models.PROTECT, related_name="camera_sources")
    interval_seconds = models.PositiveIntegerField(default=10)
    active = models.BooleanField(default=True)
    # State written by the monitoring workers.
    status = models.CharField(max_length=16, choices=SourceStatus.choices, default=SourceStatus.UNKNOWN)
    last_frame_at = models.DateTimeField(null=True, blank=True)
    failed_grabs = models.PositiveIntegerField(default=0)
    # The newest slot a worker has taken; None: start at the current slot (new, off, new patient).
    last_slot = models.BigIntegerField(null=True, blank=True)
    last_reading = models.ForeignKey(
        "StreamAssessment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_assessment = models.ForeignKey(
        "StreamAssessment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The run of severe assessments in a row, and the slot of the last frame with a face in it.
    severe_run = models.PositiveIntegerField(default=0)
    last_face_slot = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["bed", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(interval_seconds__gte=1, interval_seconds__lte=3600), name="camera_interval_range"
            ),
            models.CheckConstraint(condition=~Q(url=""), name="camera_url_not_empty"),
            models.CheckConstraint(condition=Q(status__in=SourceStatus.values), name="camera_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (bed {self.bed})"

    def slot_at(self, unix_time: float) -> int:
        return int(unix_time // self.interval_seconds)


class ReadingKind(models.TextChoices):
    PENDING = "pending", _("Being assessed")
    ASSESSED = "assessed", _("Assessed")
    NO_FACE = "no_face", _("No face in view")
    NO_FRAME = "no_frame", _("No frame from the camera")
    MISSED = "missed", _("Not assessed (no worker)")


class StreamAssessment(models.Model):
    """What one slot of one camera gave. Only `assessed` rows carry a level: no face, no score."""

    source = models.ForeignKey(CameraSource, null=True, on_delete=models.SET_NULL, related_name="readings")
    # Kept on the row so the history still names the bed after its camera is removed.
    bed = models.CharField(max_length=64)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="stream_assessments")
    slot = models.BigIntegerField()
    # A `missed` row stands for slots slot..last_slot; every other row for its own slot alone.
    last_slot = models.BigIntegerField()
    interval_seconds = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=ReadingKind.choices, default=ReadingKind.PENDING)
    frame_at = models.DateTimeField(null=True, blank=True)
    model_version = models.ForeignKey(
        "modeling.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="stream_assessments"
    )
    level = models.CharField(max_length=32, blank=True, default="")
    probabilities = models.JSONField(null=True, blank=True)
    severe_probability = models.FloatField(null=True, blank=True)
    face_box = models.JSONField(null=True, blank=True)
    claimed_by = models.CharField(max_length=128, blank=True, default="")
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    assessed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-slot", "-id"]
        indexes = [
            models.Index(fields=["patient", "kind", "frame_at"], name="stream_patient_kind_time_idx"),
            models.Index(fields=["kind", "claimed_until"], name="stream_kind_claim_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["source", "slot"], name="stream_one_row_per_slot"),
            models.CheckConstraint(condition=Q(kind__in=ReadingKind.values), name="stream_kind_valid"),
            models.CheckConstraint(condition=Q(last_slot__gte=models.F("slot")), name="stream_slot_range"),
            # No face, no score: a level and probabilities exist exactly on assessed rows.
            models.CheckConstraint(
                condition=(
                    Q(kind=ReadingKind.ASSESSED, probabilities__isnull=False, model_version__isnull=False)
                    & ~Q(level="")
                )
                | (
                    ~Q(kind=ReadingKind.ASSESSED)
                    & Q(level="", probabilities__isnull=True, severe_probability__isnull=True)
                ),
                name="stream_level_only_when_assessed",
            ),
        ]

    def __str__(self) -> str:
        return f"bed {self.bed} slot {self.slot}: {self.kind} {self.level}".strip()


class WardAlert(models.Model):
    """Severe pain that persisted at one bed; open until a clinician acknowledges it."""

    source = models.ForeignKey(CameraSource, null=True, on_delete=models.SET_NULL, related_name="alerts")
    bed = models.CharField(max_length=64)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="ward_alerts")
    reading = models.ForeignKey(StreamAssessment, on_delete=models.PROTECT, related_name="+")
    severe_run = models.PositiveIntegerField()
    severe_probability = models.FloatField()
    raised_at = models.DateTimeField(auto_now_add=True, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    escalated_at = models.DateTimeField(null=True, blank=True)
    # The alert's frame, kept only with PAINSITE_WARD_KEEP_ALERT_FRAMES=1.
    image = models.ForeignKey(Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-raised_at", "-id"]
        permissions = [("acknowledge_wardalert", "Can acknowledge ward alerts")]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "patient"],
                condition=Q(acknowledged_at__isnull=True),
                name="ward_one_open_alert_per_bed_and_patient",
            ),
            models.CheckConstraint(
                condition=Q(acknowledged_at__isnull=True) | Q(acknowledged_by__isnull=False),
                name="ward_alert_acknowledged_by_someone",
            ),
        ]

    def __str__(self) -> str:
        return f"alert at bed {self.bed} ({self.patient_id})"

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None
