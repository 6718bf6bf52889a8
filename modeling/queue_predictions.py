"""The labeling queue's predictions: what the production model says about never-labeled images.

The queue can order never-labeled images by the production model's uncertainty or spread them
over its predicted levels (annotation/queue_order.py). The predictions it orders by are computed
here, on a `default` worker, in batches, and stored in annotation's ImagePrediction table:

- after each promotion (`after_promotion`, one call in services.promote_model_version): a task
  predicts every never-labeled image with a face with the new production version, then removes
  the predictions the previous version made;
- as images arrive: the feature backlog (feature_backlog.py) predicts each batch right after
  caching its features, so the head runs on cached vectors (milliseconds per batch).

No face, no score: an image without a face box gets no prediction, and the queue hands it out
after the predicted ones. The numbers never reach a clinician through the queue: see
annotation/queue_order.py.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from celery import current_app
from django.conf import settings
from django.db import transaction

from annotation.models import Image
from annotation.queue_order import (
    PredictionRow,
    images_to_predict,
    next_level_ranks,
    remove_predictions_not_by,
    store_predictions,
)
from modeling.artifacts import feature_cache_dir, local_image_path, weights_file
from modeling.models import ModelVersion, Stage

logger = logging.getLogger(__name__)

PREDICT_QUEUE_TASK = "modeling.tasks.predict_queue_images"
BATCH_SIZE = 256

_loaded_lock = threading.Lock()
_loaded: dict[tuple[int, str], Any] = {}


@dataclass
class PredictionReport:
    version: str = ""
    predicted: int = 0
    unreadable: int = 0
    removed: int = 0
    skipped: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "predicted": self.predicted,
            "unreadable": self.unreadable,
            "removed": self.removed,
            "skipped": self.skipped,
        }


def after_promotion(version: ModelVersion) -> None:
    """Once the promotion commits, ask a worker to predict the queue with `version`."""
    version_id = version.pk
    transaction.on_commit(lambda: send_prediction_task(version_id))


def send_prediction_task(version_id: int) -> bool:
    """Sent by name (the task module imports this one). A broker that is down costs the caller
    nothing: the queue keeps its older order until the next promotion or a manual resend."""
    try:
        current_app.send_task(PREDICT_QUEUE_TASK, args=[version_id], queue="default", retry=False)
    except Exception as error:
        logger.warning("could not ask a worker to predict the labeling queue with version %s: %s", version_id, error)
        return False
    return True


def production_version() -> ModelVersion | None:
    return ModelVersion.objects.filter(stage=Stage.PRODUCTION).first()


def _model_for(version: ModelVersion):
    """The version's model, loaded once per worker process (head mode needs only the head to
    predict images whose features are cached)."""
    from modeling.ml.predict import load_model

    key = (version.pk, version.weights_sha256)
    with _loaded_lock:
        if key not in _loaded:
            _loaded.clear()
            _loaded[key] = load_model(
                weights_file(version),
                device=settings.PAINSITE_INFERENCE_DEVICE,
                expected_sha256=version.weights_sha256 or None,
                cache_dir=feature_cache_dir(),
            )
        return _loaded[key]


def _probabilities(model, images: list[Image], report: PredictionReport) -> tuple[list[Image], np.ndarray]:
    from modeling.ml.data import Record, UnreadableImage

    folders: dict[str, str] = {}

    def record(image: Image) -> Record:
        return Record(
            path=local_image_path(image.file.name, image.sha256, folders=folders),
            sha256=image.sha256,
            face_box=tuple(image.face_box),
            nrs=None,
            level=0,
            patient=image.patient.code,
            cohort=image.patient.cohort,
            image_id=image.pk,
        )

    records = [record(image) for image in images]
    try:
        return images, model.predict_records(records, cache_dir=feature_cache_dir())
    except UnreadableImage:
        pass
    # One unreadable file must not keep the others from the queue's order: one at a time.
    kept, rows = [], []
    for image, one in zip(images, records):
        try:
            rows.append(model.predict_records([one], cache_dir=feature_cache_dir())[0])
        except UnreadableImage:
            report.unreadable += 1
            continue
        kept.append(image)
    return kept, np.array(rows).reshape(len(rows), len(model.level_names))


def _predict_and_store(
    version: ModelVersion, images: list[Image], next_rank: dict[int, int], report: PredictionReport
) -> None:
    from modeling.ml.uncertainty import entropy, level_ranks, margin

    model = _model_for(version)
    images, probabilities = _probabilities(model, images, report)
    if not images:
        return
    levels = probabilities.argmax(axis=1)
    ranks = level_ranks(levels, start=next_rank)
    for level, rank in zip(levels, ranks):
        next_rank[int(level)] = rank + 1
    names = model.level_names
    rows = [
        PredictionRow(
            image_id=image.pk,
            predicted_level=int(level),
            predicted_level_name=names[int(level)],
            entropy=float(spread),
            margin=float(gap),
            level_rank=rank,
        )
        for image, level, spread, gap, rank in zip(images, levels, entropy(probabilities), margin(probabilities), ranks)
    ]
    report.predicted += store_predictions(model_version_id=version.pk, rows=rows)


def predict_unlabeled(*, version_id: int | None = None) -> PredictionReport:
    """Predict every never-labeled image with a face with the production version, batch by batch,
    oldest first, then remove the predictions of any other version. A task for a version that is
    no longer in production does nothing (the newer promotion sent its own)."""
    report = PredictionReport()
    version = production_version()
    if version is None:
        report.skipped = "no production model"
        return report
    report.version = version.name
    if version_id is not None and version.pk != version_id:
        report.skipped = f"version {version_id} is no longer the production model"
        return report
    next_rank: dict[int, int] = {}
    after = 0
    while batch := images_to_predict(after_id=after, limit=BATCH_SIZE):
        after = batch[-1].pk
        _predict_and_store(version, batch, next_rank, report)
    report.removed = remove_predictions_not_by(model_version_id=version.pk)
    logger.info("labeling queue predictions: %s", report.as_dict())
    return report


def predict_new_images(image_ids: Iterable[int]) -> PredictionReport:
    """Predict newly stored images (those still never labeled, with a face, and not predicted by
    the production version yet) with the production version; each joins the end of its predicted
    level's turn in the level-balanced order."""
    report = PredictionReport()
    image_ids = list(image_ids)
    version = production_version()
    if version is None or not image_ids:
        report.skipped = "no production model" if version is None else "no images"
        return report
    report.version = version.name
    images = images_to_predict(image_ids=image_ids, limit=len(image_ids), not_predicted_by=version.pk)
    if images:
        _predict_and_store(version, images, next_level_ranks(model_version_id=version.pk), report)
    return report
