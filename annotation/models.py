from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _


class Cohort(models.TextChoices):
    CLINICAL = "clinical", _("Clinical (postoperative patients)")
    SIMULATED = "simulated", _("Simulated (volunteers)")


class Consent(models.TextChoices):
    # A new patient's consent is not assumed: nothing of theirs is stored until it is recorded.
    NOT_RECORDED = "not_recorded", _("Not recorded")
    GRANTED = "granted", _("Granted")
    WITHDRAWN = "withdrawn", _("Withdrawn")


# What a clinician can record; "not recorded" is only where every patient starts.
RECORDABLE_CONSENT = (Consent.GRANTED, Consent.WITHDRAWN)


class PatientQuerySet(models.QuerySet):
    def consented(self) -> PatientQuerySet:
        return self.filter(consent=Consent.GRANTED)


class Patient(models.Model):
    """A pseudonymous patient or volunteer. `code` is the only identifier PainSite stores."""

    code = models.CharField(max_length=64, unique=True)
    cohort = models.CharField(max_length=16, choices=Cohort.choices)
    consent = models.CharField(max_length=16, choices=Consent.choices, default=Consent.NOT_RECORDED)
    # Who recorded the current consent state, and when (null while it is not recorded).
    consent_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    consent_recorded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PatientQuerySet.as_manager()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(cohort__in=Cohort.values), name="patient_cohort_valid"),
            models.CheckConstraint(condition=Q(consent__in=Consent.values), name="patient_consent_valid"),
            models.CheckConstraint(condition=~Q(code=""), name="patient_code_not_empty"),
            # "p001" and "P001" are one patient: two rows would split one person's images
            # across two codes (and across the train/test split).
            models.UniqueConstraint(Lower("code"), name="patient_code_unique_ignoring_case"),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def has_consent(self) -> bool:
        return self.consent == Consent.GRANTED


class ImageQuerySet(models.QuerySet):
    def consented(self) -> ImageQuerySet:
        return self.filter(patient__consent=Consent.GRANTED)


class Image(models.Model):
    """A stored face image: re-encoded, EXIF stripped, orientation applied."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="images")
    file = models.FileField(upload_to="images/%Y/%m/", max_length=255)
    thumbnail = models.FileField(upload_to="thumbnails/%Y/%m/", max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, unique=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    # Face box [x, y, w, h] in stored-image pixels, or null when no face was found.
    face_box = models.JSONField(null=True, blank=True)
    captured_at = models.DateTimeField(null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
    # Denormalised for the labeling queue: kept current by annotation.services when labels are
    # recorded, so "never labeled first" is an index scan, not a count over 150,000 labels.
    label_count = models.PositiveIntegerField(default=0)
    observer_rater_count = models.PositiveIntegerField(default=0)
    # The labeling queue hands an image to one clinician at a time: until `reserved_until` it is
    # left out of everyone else's queue (annotation.services.reserve_next_image).
    reserved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    reserved_until = models.DateTimeField(null=True, blank=True)

    objects = ImageQuerySet.as_manager()

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        permissions = [("view_withdrawn_images", "Can view images of patients who withdrew consent")]
        indexes = [
            # Partial indexes hold only the images each queue step wants, in queue order. A full
            # (counter, id) index left PostgreSQL free to walk the primary key instead, which with
            # statistics from before the backlog was labeled scanned every image once none was left.
            models.Index(fields=["id"], condition=Q(label_count=0), name="image_unlabeled_idx"),
            models.Index(fields=["id"], condition=Q(observer_rater_count=1), name="image_one_observer_idx"),
            models.Index(fields=["patient", "uploaded_at"], name="image_patient_time_idx"),
            models.Index(fields=["reserved_by"], condition=Q(reserved_by__isnull=False), name="image_reserved_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(width__gt=0) & Q(height__gt=0), name="image_size_positive"),
        ]

    def __str__(self) -> str:
        return f"image {self.pk} of {self.patient_id}"


class LabelKind(models.TextChoices):
    SELF_REPORT = "self_report", _("Self-report")
    OBSERVER = "observer", _("Observer")


class PainLabelQuerySet(models.QuerySet):
    def current(self) -> PainLabelQuerySet:
        """Each rater's standing score per image: the head of its chain, unless it was taken back."""
        return self.filter(superseded_by__isnull=True, is_retraction=False)


class PainLabel(models.Model):
    """One NRS score. Append-only: a correction is a new row superseding the rater's previous one.

    Each (image, rater) pair has one chain of rows linked by `supersedes`; its last row is the
    rater's standing score. Undo appends a row too (`is_undo`): it restores the value before the
    undone one, or, when there was none, is a retraction (`is_retraction`: the rater has no score
    on the image; nrs and kind repeat the score taken back, so the history reads plainly).
    """

    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="labels")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="pain_labels")
    nrs = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=16, choices=LabelKind.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    is_undo = models.BooleanField(default=False)
    is_retraction = models.BooleanField(default=False)

    objects = PainLabelQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("export_labels", "Can export labels")]
        indexes = [
            models.Index(fields=["image", "rater", "-created_at"], name="label_image_rater_idx"),
            models.Index(fields=["rater", "-created_at"], name="label_rater_time_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(nrs__gte=0) & Q(nrs__lte=10), name="painlabel_nrs_0_10"),
            models.CheckConstraint(condition=Q(kind__in=LabelKind.values), name="painlabel_kind_valid"),
            # One chain per (image, rater): only its first row supersedes nothing, and `supersedes`
            # being one-to-one means no row is superseded twice, even by concurrent requests.
            models.UniqueConstraint(
                fields=["image", "rater"], condition=Q(supersedes__isnull=True), name="painlabel_one_chain_per_rater"
            ),
            models.CheckConstraint(
                condition=Q(is_retraction=False) | Q(is_undo=True), name="painlabel_retraction_only_by_undo"
            ),
            models.CheckConstraint(
                condition=Q(is_undo=False) | Q(supersedes__isnull=False), name="painlabel_undo_supersedes_a_label"
            ),
        ]

    def __str__(self) -> str:
        return f"NRS {self.nrs} ({self.kind}) on image {self.image_id}"


class QueueOrder(models.TextChoices):
    ARRIVAL = "arrival", _("Arrival: oldest image first")
    UNCERTAINTY = "uncertainty", _("Uncertainty: the production model's least confident images first")
    LEVEL_BALANCED = "level-balanced", _("Level-balanced: images spread over the predicted pain levels")


class UncertaintyMeasure(models.TextChoices):
    # Same names as modeling.ml.uncertainty, which computes both.
    MARGIN = "margin", _("Margin: the two likeliest levels are nearly tied")
    ENTROPY = "entropy", _("Entropy: the probability is spread over the levels")


class QueueSettings(models.Model):
    """The order of the labeling queue's never-labeled images: one row (id 1), changed by
    researchers and admins (annotation.queue_order.set_queue_order, audit-logged). No row means
    the defaults: arrival order, and margin when uncertainty is chosen."""

    SINGLE_ROW_ID = 1

    order = models.CharField(max_length=16, choices=QueueOrder.choices, default=QueueOrder.ARRIVAL)
    uncertainty_measure = models.CharField(
        max_length=16, choices=UncertaintyMeasure.choices, default=UncertaintyMeasure.MARGIN
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("labeling queue settings")
        verbose_name_plural = _("labeling queue settings")
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="queuesettings_single_row"),
            models.CheckConstraint(condition=Q(order__in=QueueOrder.values), name="queuesettings_order_valid"),
            models.CheckConstraint(
                condition=Q(uncertainty_measure__in=UncertaintyMeasure.values), name="queuesettings_measure_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"queue order {self.order} ({self.uncertainty_measure})"


class ImagePrediction(models.Model):
    """The production model's prediction for a never-labeled image with a face, kept only to
    order the labeling queue; never shown to a clinician before their own score.

    Written by modeling (modeling/queue_predictions.py) after each promotion and as images arrive;
    removed when the image gets its first score (annotation.services), so every row is a
    candidate of the queue's first step and the ordered index scans stay short. Images without a
    face get no row (no face, no score) and come after the predicted ones.
    """

    image = models.OneToOneField(Image, on_delete=models.CASCADE, primary_key=True, related_name="queue_prediction")
    # A plain integer: annotation does not know modeling's ModelVersion table.
    model_version_id = models.PositiveIntegerField()
    predicted_level = models.PositiveSmallIntegerField()
    predicted_level_name = models.CharField(max_length=64)
    # Normalised entropy of the level probabilities (0 certain, 1 uniform) and p(top) - p(second).
    entropy = models.FloatField()
    margin = models.FloatField()
    # Place among the images predicted at the same level: ordering by (rank, level) visits the
    # levels in turn (the level-balanced order).
    level_rank = models.PositiveIntegerField()
    computed_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["-entropy", "image"], name="prediction_entropy_idx"),
            models.Index(fields=["margin", "image"], name="prediction_margin_idx"),
            models.Index(fields=["level_rank", "predicted_level", "image"], name="prediction_level_rank_idx"),
            models.Index(fields=["model_version_id"], name="prediction_version_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(entropy__gte=0) & Q(entropy__lte=1), name="prediction_entropy_0_1"),
            models.CheckConstraint(condition=Q(margin__gte=0) & Q(margin__lte=1), name="prediction_margin_0_1"),
        ]

    def __str__(self) -> str:
        return f"prediction for image {self.image_id} by model version {self.model_version_id}"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class ImportJob(models.Model):
    """One bulk import of an archive or folder: its progress and, when done, its report.

    Small archives run inside the request; large ones on a `default` worker. Either way the row
    is the record: `report` lists every created image, duplicate and rejected row with its reason.
    """

    source_name = models.CharField(max_length=255, blank=True)
    # Name of the uploaded archive in the default storage while it waits for a worker; cleared
    # (and the file deleted) once the import has finished.
    archive = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ImportStatus.values), name="importjob_status_valid"),
            models.CheckConstraint(
                condition=Q(processed_rows__lte=models.F("total_rows")), name="importjob_processed_within_total"
            ),
        ]

    def __str__(self) -> str:
        return f"import {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (ImportStatus.SUCCEEDED, ImportStatus.FAILED)

    @property
    def progress(self) -> float:
        return self.processed_rows / self.total_rows if self.total_rows else (1.0 if self.is_finished else 0.0)
