from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from annotation.models import Image, Patient

# modeling.ml.backbone.RANDOM_INIT, repeated so the models do not import torch.
RANDOM_INIT_BACKBONE = "random-init"


class Split(models.TextChoices):
    TRAIN = "train", _("Train")
    VAL = "val", _("Validation")
    TEST = "test", _("Test (locked)")


class SplitAssignment(models.Model):
    """Which split a patient belongs to. Assigned once, never reshuffled."""

    patient = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="split_assignment")
    split = models.CharField(max_length=8, choices=Split.choices)
    seed = models.IntegerField()
    assigned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(split__in=Split.values), name="split_valid")]

    def __str__(self) -> str:
        return f"{self.patient_id} -> {self.split}"


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class TrainingRunQuerySet(models.QuerySet):
    def active(self) -> TrainingRunQuerySet:
        return self.filter(status__in=ACTIVE_STATUSES)


class TrainingRun(models.Model):
    """One request to train a model. This row, not the broker, is the source of truth."""

    config = models.JSONField(default=dict)
    # The Celery queue the run is sent to; at most one run is queued or running per queue.
    queue = models.CharField(max_length=32, default="training")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0)
    epoch = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    history = models.JSONField(default=list, blank=True)
    # What the snapshot holds (label rule, cohorts, pain levels, image counts per split); its
    # images are in `snapshot`.
    data_manifest = models.JSONField(default=dict, blank=True)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    celery_task_id = models.CharField(max_length=64, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    # Seconds spent inside the ML core (training, prediction, metrics), to measure orchestration
    # overhead: the run's wall time minus this.
    ml_seconds = models.FloatField(null=True, blank=True)
    # Frozen features the run computed, and found cached (by an earlier run or as images arrived,
    # modeling/feature_backlog.py); head mode only.
    features_computed = models.PositiveIntegerField(null=True, blank=True)
    features_cached = models.PositiveIntegerField(null=True, blank=True)
    # "user" (someone pressed Start) or "policy" (the retrain policy started it; `trigger` then
    # holds the trigger's numbers: modeling/retrain_policy.py).
    triggered_by = models.CharField(max_length=16, default="user")
    trigger = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    objects = TrainingRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("cancel_trainingrun", "Can cancel training runs")]
        constraints = [
            models.CheckConstraint(condition=Q(progress__gte=0) & Q(progress__lte=1), name="run_progress_0_1"),
            models.CheckConstraint(condition=Q(status__in=RunStatus.values), name="run_status_valid"),
            # A second request while a run is queued or running is refused, not silently stacked.
            models.UniqueConstraint(
                fields=["queue"], condition=Q(status__in=ACTIVE_STATUSES), name="one_active_run_per_queue"
            ),
        ]

    def __str__(self) -> str:
        return f"training run {self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class TrainingSnapshot(models.Model):
    """The images and training targets of a run, fixed when it was requested; written once.

    A row of its own because the worker updates the run's row at every epoch, and SQLite rewrites
    a whole row on every update: with the few thousand images of a real data set inside (over a
    megabyte of JSON), each progress write cost ten times more and filled the write-ahead log."""

    run = models.OneToOneField(TrainingRun, on_delete=models.CASCADE, related_name="snapshot")
    # One dict per image: image_id, sha256, file, face_box, patient, cohort, nrs, level, split.
    images = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"snapshot of training run {self.run_id}"


class Stage(models.TextChoices):
    CANDIDATE = "candidate", _("Candidate")
    PRODUCTION = "production", _("Production")
    ARCHIVED = "archived", _("Archived")


class ModelVersion(models.Model):
    """A trained model with everything needed to reproduce and audit it. Immutable once written,
    except for `stage`, which changes only through a promotion (see PromotionEvent)."""

    name = models.CharField(max_length=32, unique=True)
    training_run = models.OneToOneField(TrainingRun, on_delete=models.PROTECT, related_name="model_version")
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.CANDIDATE, db_index=True)
    cohorts = models.JSONField(default=list)
    mode = models.CharField(max_length=16)
    data_manifest = models.JSONField(default=dict)
    data_manifest_sha256 = models.CharField(max_length=64)
    split_sha256 = models.CharField(max_length=64)
    label_rule = models.CharField(max_length=32)
    pain_levels = models.JSONField(default=list)
    hyperparameters = models.JSONField(default=dict)
    seed = models.IntegerField()
    code_version = models.CharField(max_length=64, blank=True)
    library_versions = models.JSONField(default=dict)
    device = models.CharField(max_length=64)
    backbone = models.CharField(max_length=128)
    backbone_sha256 = models.CharField(max_length=64, blank=True)
    weights_path = models.CharField(max_length=500)
    weights_sha256 = models.CharField(max_length=64)
    n_train_images = models.PositiveIntegerField(default=0)
    n_train_patients = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict)
    test_predictions = models.JSONField(default=list)
    training_history = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("promote_modelversion", "Can promote model versions")]
        constraints = [
            models.CheckConstraint(condition=Q(stage__in=Stage.values), name="modelversion_stage_valid"),
            # At most one production model at any time.
            models.UniqueConstraint(
                fields=["stage"], condition=Q(stage="production"), name="one_production_model_version"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_random_init(self) -> bool:
        return self.backbone == RANDOM_INIT_BACKBONE


class TestSnapshot(models.Model):
    """The locked test patients' images with their reference levels under one label rule, frozen
    at one moment. Written once; identical content is one snapshot (`sha256` is unique), so two
    versions scored on the same images and references are always scored on the same row."""

    sha256 = models.CharField(max_length=64, unique=True)
    label_rule = models.CharField(max_length=32)
    # {"names": [...], "ranges": [[low, high], ...]}: what `level` in `images` means.
    pain_levels = models.JSONField(default=dict)
    # One dict per image: image_id, sha256, file, face_box, patient, cohort, nrs, level.
    images = models.JSONField(default=list)
    n_images = models.PositiveIntegerField(default=0)
    n_patients = models.PositiveIntegerField(default=0)
    # Why it was taken: "publish" (a run published a version), "requested" (on demand), or
    # "migrated" (rebuilt from a version's stored test predictions).
    reason = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"test snapshot {self.pk} ({self.n_images} images, {self.sha256[:12]})"


class EvaluationStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class Evaluation(models.Model):
    """One model version scored on one test snapshot: per-image probabilities and the metrics
    per cohort. A version's weights never change, so one evaluation per (version, snapshot)."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="evaluations")
    snapshot = models.ForeignKey(TestSnapshot, on_delete=models.PROTECT, related_name="evaluations")
    status = models.CharField(
        max_length=16, choices=EvaluationStatus.choices, default=EvaluationStatus.QUEUED, db_index=True
    )
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    # True for the evaluation the training run computed before publishing the version.
    at_training = models.BooleanField(default=False)
    # One dict per image: image_id, patient, cohort, nrs, level, probabilities.
    predictions = models.JSONField(default=list)
    metrics = models.JSONField(default=dict)
    seed = models.IntegerField(default=0)
    resamples = models.PositiveIntegerField(default=0)
    celery_task_id = models.CharField(max_length=64, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["model_version", "snapshot"], name="one_evaluation_per_version_snapshot"),
            models.CheckConstraint(condition=Q(progress__gte=0) & Q(progress__lte=1), name="evaluation_progress_0_1"),
            models.CheckConstraint(condition=Q(status__in=EvaluationStatus.values), name="evaluation_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.model_version_id} on snapshot {self.snapshot_id} ({self.status})"


class PromotionEvent(models.Model):
    """One stage change of a model version. Append-only."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="promotions")
    from_stage = models.CharField(max_length=16, choices=Stage.choices)
    to_stage = models.CharField(max_length=16, choices=Stage.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.model_version} {self.from_stage} -> {self.to_stage}"


class Assessment(models.Model):
    """One assessment of an image by a model version."""

    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="assessments")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="assessments")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="assessments")
    level = models.CharField(max_length=32)
    probabilities = models.JSONField(default=dict)
    face_found = models.BooleanField(default=False)
    assessed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["patient", "created_at"], name="assessment_patient_time_idx")]

    def __str__(self) -> str:
        return f"{self.level} by {self.model_version} on image {self.image_id}"


class PendingFeatures(models.Model):
    """An image whose frozen features a `default` worker has still to compute (modeling/feature_backlog.py).

    A row is claimed by one worker for a while (`claimed_until`) and deleted once the features are
    cached, so the backlog is worked through in order, never twice, and what a killed worker had
    claimed comes back when its claim runs out."""

    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="+")
    queued_at = models.DateTimeField(auto_now_add=True)
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    claimed_until = models.DateTimeField(null=True, blank=True, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "pending features"

    def __str__(self) -> str:
        return f"features of image {self.image_id}"


class RetrainPolicy(models.Model):
    """When the platform retrains by itself (modeling/retrain_policy.py). Append-only: the newest
    row is the policy in force, earlier rows are its history."""

    enabled = models.BooleanField(default=False)
    # Retrain when at least this many labels were added or changed since the last version...
    min_new_labels = models.PositiveIntegerField(null=True, blank=True)
    # ...and/or once a day at this local time (when at least one label changed).
    daily_at = models.TimeField(null=True, blank=True)
    # The run's settings: cohorts, mode, epochs, lr, batch_size, label_rule, seed.
    config = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "retrain policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(enabled=False) | Q(min_new_labels__gte=1) | Q(daily_at__isnull=False),
                name="retrain_policy_enabled_has_a_trigger",
            )
        ]

    def __str__(self) -> str:
        return f"retrain policy {self.pk} ({'on' if self.enabled else 'off'})"


class RetrainTrigger(models.Model):
    """One firing of the retrain policy. `key` names the trigger (the newest label counted, or the
    day), and is unique: two beat processes, or one restarted, never start two runs for it."""

    key = models.CharField(max_length=64, unique=True)
    policy = models.ForeignKey(RetrainPolicy, on_delete=models.PROTECT, related_name="triggers")
    run = models.OneToOneField(TrainingRun, on_delete=models.PROTECT, related_name="retrain_trigger")
    numbers = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"retrain trigger {self.key}"


class GateRule(models.Model):
    """The champion/challenger rule (modeling/gate.py). Append-only: the newest row is in force
    and its id is the rule's version, recorded on every verdict."""

    margin = models.FloatField(default=0.02)
    alpha = models.FloatField(default=0.05)
    auto_promote = models.BooleanField(default=False)
    # Versions with a smaller id were made before the gate existed: they are never judged (on an
    # upgrade, judging old candidates against today's production model would only send noise, or
    # auto-promote one). Set on the first rule by the migration; later rules copy it.
    first_version_id = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(margin__gte=0) & Q(margin__lte=0.5), name="gate_margin_0_05"),
            models.CheckConstraint(condition=Q(alpha__gt=0) & Q(alpha__lt=1), name="gate_alpha_0_1"),
        ]

    def __str__(self) -> str:
        return f"gate rule {self.pk} (margin {self.margin}, alpha {self.alpha})"


class GateVerdict(models.TextChoices):
    BETTER = "better", _("Better: promotion recommended")
    NON_INFERIOR = "non_inferior", _("Non-inferior: promotion recommended")
    INFERIOR = "inferior", _("Not shown non-inferior: keep the production model")
    SEVERE_WORSE = "severe_worse", _("Severe pain detected significantly worse: keep the production model")
    NOT_ESTIMABLE = "not_estimable", _("Not estimable: no recommendation")
    NO_PRODUCTION = "no_production", _("No production model to compare with: promotion recommended")


RECOMMENDING_VERDICTS = (GateVerdict.BETTER, GateVerdict.NON_INFERIOR, GateVerdict.NO_PRODUCTION)


class GateDecision(models.Model):
    """The gate's verdict on a new version against the production version, on one test snapshot.
    Written once per challenger."""

    challenger = models.OneToOneField(ModelVersion, on_delete=models.PROTECT, related_name="gate_decision")
    champion = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="gate_decisions_as_champion"
    )
    snapshot = models.ForeignKey(TestSnapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    rule = models.ForeignKey(GateRule, on_delete=models.PROTECT, related_name="decisions")
    verdict = models.CharField(max_length=16, choices=GateVerdict.choices)
    # The numbers behind it: macro ΔAUROC and its interval, severe ΔAUROC and p-value, the reason.
    numbers = models.JSONField(default=dict)
    auto_promoted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(verdict__in=GateVerdict.values), name="gate_verdict_valid")]

    def __str__(self) -> str:
        return f"{self.challenger_id}: {self.verdict}"

    @property
    def recommends_promotion(self) -> bool:
        return self.verdict in RECOMMENDING_VERDICTS


# Ward monitoring lives in its own module; imported here so Django finds its models.
from modeling.ward_models import CameraSource, ReadingKind, SourceStatus, StreamAssessment, WardAlert  # noqa: E402, F401
