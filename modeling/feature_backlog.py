"""Features as images arrive: a `default` worker computes each new image's frozen features.

Every stored image gets a `PendingFeatures` row in the same transaction, and a worker is told
(a `compute_pending_features` task, sent at most once every KICK_INTERVAL_SECONDS per process).
The worker claims the oldest rows in batches, computes their features for the backbone,
preprocessing and feature path a default head-mode training run would use (the default training
settings), caches them where training looks (modeling/artifacts.py), and deletes the rows. So the
first retrain after an import finds a warm cache and trains in seconds.

- In order, never twice: rows are claimed oldest first by a conditional UPDATE, so two workers
  never claim one row; an image whose features are already cached costs a file read, not a
  computation.
- Survives restarts: the backlog is in the database. A claim lasts PAINSITE_FEATURES_CLAIM_SECONDS;
  a killed worker's rows come back when it runs out, and a starting worker (and Celery beat,
  every PAINSITE_FEATURES_KICK_SECONDS) sends the task again.
- Yields to training: before each batch the worker looks for a queued or running training run
  and, if there is one, stops and asks again after PAINSITE_FEATURES_YIELD_SECONDS. The run
  computes what is still missing itself.
- Bounded: a batch that fails is retried up to MAX_ATTEMPTS times, then dropped with its error
  logged (training computes those features itself if the image is still usable).
- Then predicted: each batch's never-labeled images get the production model's prediction for the
  labeling queue's order (queue_predictions.py), a head-only pass on the features just cached.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_save
from django.utils import timezone

from annotation.models import Image
from modeling import queue_predictions, selectors
from modeling.artifacts import feature_cache_dir, local_image_path
from modeling.models import ACTIVE_STATUSES, PendingFeatures, TrainingRun
from modeling.training_config import default_training_config

logger = logging.getLogger(__name__)

COMPUTE_PENDING_FEATURES_TASK = "modeling.tasks.compute_pending_features"
KICK_INTERVAL_SECONDS = 2.0
BATCH_SIZE = 32
MAX_ATTEMPTS = 3

_kick_lock = threading.Lock()
_last_kick = [float("-inf")]


def enabled() -> bool:
    return settings.PAINSITE_FEATURES_ON_ARRIVAL


def enqueue(image_ids: list[int]) -> None:
    """Put images on the backlog (inside the caller's transaction) and tell a worker once it commits."""
    if not enabled() or not image_ids:
        return
    PendingFeatures.objects.bulk_create(
        [PendingFeatures(image_id=image_id) for image_id in image_ids], ignore_conflicts=True
    )
    transaction.on_commit(kick)


def kick(*, countdown: float | None = None, force: bool = False) -> bool:
    """Send the task that works through the backlog, unless this process sent it a moment ago (a
    bulk import stores an image every few milliseconds; one running task takes all of them).
    A broker that is down costs the caller nothing: the rows wait for the next kick."""
    with _kick_lock:
        now = time.monotonic()
        if not force and now - _last_kick[0] < KICK_INTERVAL_SECONDS:
            return False
        _last_kick[0] = now
    try:
        current_app.send_task(COMPUTE_PENDING_FEATURES_TASK, queue="default", countdown=countdown, retry=False)
    except Exception as error:
        logger.warning("could not ask a worker to compute image features (they wait for the next try): %s", error)
        return False
    return True


def _image_stored(sender, instance: Image, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if created and not raw:
        enqueue([instance.pk])


def connect() -> None:
    """Called by ModelingConfig.ready(): every new Image row goes on the backlog."""
    post_save.connect(_image_stored, sender=Image, dispatch_uid="modeling.feature_backlog")


# ---------------------------------------------------------------------------------------------
# The worker's side


@dataclass
class BacklogReport:
    computed: int = 0
    cached: int = 0
    skipped: list[str] = field(default_factory=list)
    dropped: int = 0
    batches: int = 0
    yielded: bool = False
    feature_path: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "computed": self.computed,
            "cached": self.cached,
            "skipped": len(self.skipped),
            "dropped": self.dropped,
            "batches": self.batches,
            "yielded": self.yielded,
            "feature_path": self.feature_path,
        }


def pending_count() -> int:
    return PendingFeatures.objects.count()


def training_active() -> bool:
    return TrainingRun.objects.filter(status__in=ACTIVE_STATUSES).exists()


def claim(token: str, *, size: int = BATCH_SIZE) -> list[PendingFeatures]:
    """Claim up to `size` of the oldest unclaimed (or expired) rows for `token`. The UPDATE's
    condition is checked row by row by the database, so a row another worker claimed in between
    is not taken over."""
    now = timezone.now()
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    candidates = list(PendingFeatures.objects.filter(free).order_by("id").values_list("id", flat=True)[:size])
    if not candidates:
        return []
    until = now + timedelta(seconds=settings.PAINSITE_FEATURES_CLAIM_SECONDS)
    PendingFeatures.objects.filter(free, id__in=candidates).update(claimed_by=token, claimed_until=until)
    return list(PendingFeatures.objects.filter(claimed_by=token, id__in=candidates).select_related("image__patient"))


def _records(rows: list[PendingFeatures]) -> list[Any]:
    from modeling.ml.data import Record

    withdrawn = selectors.withdrawn_patient_codes({row.image.patient.code for row in rows})
    folders: dict[str, str] = {}
    return [
        Record(
            path=local_image_path(row.image.file.name, row.image.sha256, folders=folders),
            sha256=row.image.sha256,
            face_box=tuple(row.image.face_box) if row.image.face_box else None,
            nrs=None,
            level=0,
            patient=row.image.patient.code,
            cohort=row.image.patient.cohort,
            image_id=row.image_id,
        )
        for row in rows
        if row.image.patient.code not in withdrawn
    ]


def default_train_config():
    """The ML core's configuration of a training run started with the default settings."""
    from modeling.training_runner import train_config_for

    return train_config_for(default_training_config())


def work_through_backlog(*, max_batches: int | None = None) -> BacklogReport:
    """Compute the features of pending images, batch by batch, until the backlog is empty, a
    training run is waiting or running (then ask again later), or `max_batches` are done."""
    from modeling.ml.training import warm_feature_cache

    report = BacklogReport()
    if not enabled():
        return report
    token = uuid.uuid4().hex
    config = default_train_config()
    while max_batches is None or report.batches < max_batches:
        if training_active():
            report.yielded = True
            kick(countdown=settings.PAINSITE_FEATURES_YIELD_SECONDS, force=True)
            break
        rows = claim(token)
        if not rows:
            break
        report.batches += 1
        try:
            warmed = warm_feature_cache(config, _records(rows), cache_dir=feature_cache_dir())
        except Exception as error:
            report.dropped += _give_back(rows, error)
            continue
        report.computed += warmed.computed
        report.cached += warmed.cached
        report.skipped += warmed.skipped
        report.feature_path = warmed.feature_path
        PendingFeatures.objects.filter(claimed_by=token, id__in=[row.pk for row in rows]).delete()
        _predict_for_queue([row.image_id for row in rows])
    if report.batches:
        logger.info("image features: %s", report.as_dict())
    return report


def _predict_for_queue(image_ids: list[int]) -> None:
    """The production model's predictions for the labeling queue's order, on the features just
    cached; a failure leaves those images unpredicted (they come after the predicted ones) and
    never costs the features."""
    try:
        queue_predictions.predict_new_images(image_ids)
    except Exception:
        logger.exception("predicting %d new images for the labeling queue failed", len(image_ids))


def _give_back(rows: list[PendingFeatures], error: Exception) -> int:
    """Release a failed batch for another try, or drop rows that failed MAX_ATTEMPTS times."""
    logger.exception("computing the features of %d pending images failed", len(rows))
    dropped = [row.pk for row in rows if row.attempts + 1 >= MAX_ATTEMPTS]
    if dropped:
        logger.error("giving up on the features of images %s after %d tries: %s", dropped, MAX_ATTEMPTS, error)
        PendingFeatures.objects.filter(pk__in=dropped).delete()
    for row in rows:
        if row.pk not in dropped:
            PendingFeatures.objects.filter(pk=row.pk).update(
                attempts=row.attempts + 1, last_error=str(error)[:2000], claimed_by="", claimed_until=None
            )
    return len(dropped)
