"""Evaluations: one model version scored on one test snapshot.

A version's first evaluation is the one its training run computed before publishing it. Any
version can later be scored on any snapshot of the same pain levels: a worker on the `default`
queue re-reads the snapshot's images (a head-mode version reuses the feature cache, so this costs
seconds), writes per-image probabilities and the metrics per cohort, and reports its progress in
the row. When a run publishes a version, the production version and the latest other candidate
are scored on the new version's snapshot too, so the challenger and production are always
compared on the same images.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from modeling import selectors
from modeling.artifacts import feature_cache_dir, local_image_path, weights_file
from modeling.ml.data import Record
from modeling.ml.levels import PainLevels
from modeling.models import Evaluation, EvaluationStatus, ModelVersion, Split, Stage, TestSnapshot
from modeling.snapshots import snapshot_of, version_levels_spec
from painsite.core.services import record_event

logger = logging.getLogger(__name__)

EVALUATION_COHORTS = ("clinical", "simulated", "combined")
# The Celery task that scores a version on a snapshot (modeling/tasks.py), on the `default` queue.
RUN_EVALUATION_TASK = "modeling.tasks.run_evaluation"
# Images scored between two progress writes: a few writes for a study-sized test set.
PROGRESS_CHUNK = 32
# Share of the progress bar for scoring the images; the metrics (bootstrap) fill the rest.
SCORING_SHARE = 0.8
BROKER_DOWN_MESSAGE = "the task broker is unreachable: request the evaluation again once it is back"


# ---------------------------------------------------------------------------------------------
# Scoring (no database writes: the training runner and the evaluation worker both use these)


def predict(
    model,
    records: list[Record],
    *,
    progress: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[dict[str, Any]]:
    """Per-image level probabilities of a loaded model (`modeling.ml.predict.LoadedModel`), in
    record order; `progress` hears how many images are done after each chunk, and a cancel
    (`should_stop`) is honoured between chunks."""
    rows: list[list[float]] = []
    for start in range(0, len(records), PROGRESS_CHUNK):
        stop_if_asked(should_stop)
        chunk = records[start : start + PROGRESS_CHUNK]
        rows += [[float(p) for p in row] for row in model.predict_records(chunk, cache_dir=feature_cache_dir())]
        if progress is not None:
            progress(len(rows))
    return [
        {
            "image_id": record.image_id,
            "patient": record.patient,
            "cohort": record.cohort,
            "nrs": record.nrs,
            "level": record.level,
            "probabilities": row,
        }
        for record, row in zip(records, rows, strict=True)
    ]


def evaluate(
    weights_path: str, test_records: list[Record], *, seed: int, should_stop: Callable[[], bool] | None = None
) -> tuple[list[dict], dict[str, Any]]:
    """Per-image predictions on the locked test patients and the metrics of each cohort. A cancel
    (`should_stop`) is honoured between chunks of test images and between cohorts."""
    from modeling.ml.predict import load_model

    model = load_model(weights_path, cache_dir=feature_cache_dir())
    predictions = predict(model, test_records, should_stop=should_stop)
    return predictions, metrics_by_cohort(predictions, model.levels, seed=seed, should_stop=should_stop)


def stop_if_asked(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        from modeling.ml.training import TrainingCancelled

        raise TrainingCancelled("cancelled while evaluating on the test patients")


def metrics_by_cohort(
    predictions: list[dict[str, Any]],
    levels: PainLevels,
    *,
    seed: int,
    n_bootstrap: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """The metrics of each cohort from per-image predictions (`manage.py evaluate` recomputes them)."""
    import numpy as np

    from modeling.ml.metrics import evaluate_predictions

    n_bootstrap = settings.PAINSITE_BOOTSTRAP_RESAMPLES if n_bootstrap is None else n_bootstrap
    metrics = {}
    for cohort in EVALUATION_COHORTS:
        stop_if_asked(should_stop)
        rows = [p for p in predictions if cohort == "combined" or p["cohort"] == cohort]
        if not rows:
            metrics[cohort] = {"n_images": 0, "n_patients": 0, "unavailable": f"no {cohort} test images"}
            continue
        metrics[cohort] = evaluate_predictions(
            np.array([row["level"] for row in rows]),
            np.array([row["nrs"] for row in rows], dtype=float),
            np.array([row["probabilities"] for row in rows], dtype=float),
            [row["patient"] for row in rows],
            levels.names,
            n_bootstrap=n_bootstrap,
            seed=seed,
            level_ranges=list(levels.ranges),
        )
    return metrics


def records_of(snapshot: TestSnapshot) -> list[Record]:
    return image_records(snapshot.images)


def image_records(items: list[dict[str, Any]]) -> list[Record]:
    """ML core records of snapshotted images (a run's or a test snapshot's dicts)."""
    folders: dict[str, str] = {}
    return [
        Record(
            path=local_image_path(item["file"], item["sha256"], folders=folders),
            sha256=item["sha256"],
            face_box=tuple(item["face_box"]) if item["face_box"] else None,
            nrs=item["nrs"],
            level=item["level"],
            patient=item["patient"],
            cohort=item["cohort"],
            image_id=item["image_id"],
        )
        for item in items
    ]


# ---------------------------------------------------------------------------------------------
# Records


def record_training_evaluation(
    *,
    version: ModelVersion,
    images: list[dict[str, Any]],
    predictions: list[dict[str, Any]],
    metrics: dict[str, Any],
    seed: int,
) -> Evaluation:
    """The evaluation a training run computed, on the snapshot of the run's test images. Called
    inside the transaction that writes the version."""
    snapshot = snapshot_of(
        images=[item for item in images if item["split"] == Split.TEST],
        label_rule=version.label_rule,
        pain_levels=version_levels_spec(version.pain_levels),
        reason="publish",
    )
    now = timezone.now()
    return Evaluation.objects.create(
        model_version=version,
        snapshot=snapshot,
        status=EvaluationStatus.SUCCEEDED,
        progress=1.0,
        message=f"scored {len(predictions)} test images during training",
        at_training=True,
        predictions=predictions,
        metrics=metrics,
        seed=seed,
        resamples=settings.PAINSITE_BOOTSTRAP_RESAMPLES,
        requested_by_id=version.created_by_id,
        started_at=now,
        finished_at=now,
    )


def check_can_evaluate(*, version: ModelVersion, snapshot: TestSnapshot) -> None:
    """A clear refusal, before anything is written, for a pair that cannot be scored."""
    if version_levels_spec(version.pain_levels) != snapshot.pain_levels:
        raise ValidationError(
            {
                "snapshot": [
                    gettext(
                        "test snapshot %(id)s uses other pain levels than %(name)s: its references cannot be scored "
                        "by this model"
                    )
                    % {"id": snapshot.pk, "name": version.name}
                ]
            }
        )
    images = TestSnapshot.objects.values_list("images", flat=True).get(pk=snapshot.pk)
    withdrawn = selectors.withdrawn_patient_codes({item["patient"] for item in images})
    if withdrawn:
        raise ValidationError(
            {
                "snapshot": [
                    gettext(
                        "test snapshot %(id)s holds images of %(n)s patient(s) who withdrew consent since it was "
                        "taken; evaluate on the current test set instead"
                    )
                    % {"id": snapshot.pk, "n": len(withdrawn)}
                ]
            }
        )


def request_evaluation(
    *, version: ModelVersion, snapshot: TestSnapshot, requested_by: User | None, enqueue: bool = True
) -> tuple[Evaluation, bool]:
    """(the evaluation of `version` on `snapshot`, whether it was queued now). An existing one is
    returned as it is; a failed one, or one the broker never received, is queued again."""
    existing = Evaluation.objects.defer("predictions").filter(model_version=version, snapshot=snapshot).first()
    if existing is not None and not _needs_resending(existing):
        return existing, False
    check_can_evaluate(version=version, snapshot=snapshot)
    with transaction.atomic():
        fields = {
            "status": EvaluationStatus.QUEUED, "progress": 0.0, "error": "", "message": "waiting for a worker",
            "celery_task_id": str(uuid.uuid4()), "seed": version.seed,
            "resamples": settings.PAINSITE_BOOTSTRAP_RESAMPLES,
        }  # fmt: skip
        if existing is None:
            try:
                with transaction.atomic():
                    evaluation = Evaluation.objects.create(
                        model_version=version, snapshot=snapshot, requested_by=requested_by, **fields
                    )
            except IntegrityError:  # a concurrent request created it first: that one stands
                return Evaluation.objects.defer("predictions").get(model_version=version, snapshot=snapshot), False
        else:
            Evaluation.objects.filter(pk=existing.pk).update(**fields)
            evaluation = Evaluation.objects.defer("predictions").get(pk=existing.pk)
        record_event(
            actor=requested_by,
            action="evaluation.request",
            target=evaluation,
            details={"model_version": version.name, "snapshot": snapshot.pk, "snapshot_sha256": snapshot.sha256},
        )
        if enqueue:
            transaction.on_commit(lambda: send_to_worker(evaluation))
    return evaluation, True


def _needs_resending(evaluation: Evaluation) -> bool:
    return evaluation.status == EvaluationStatus.FAILED or (
        evaluation.status == EvaluationStatus.QUEUED and not evaluation.celery_task_id
    )


def send_to_worker(evaluation: Evaluation) -> bool:
    try:
        # Sent by name: the task module imports this one.
        current_app.send_task(
            RUN_EVALUATION_TASK, args=[evaluation.pk], task_id=evaluation.celery_task_id, queue="default"
        )
    except Exception:
        logger.exception("evaluation %s could not be sent to the broker", evaluation.pk)
        Evaluation.objects.filter(pk=evaluation.pk, status=EvaluationStatus.QUEUED).update(
            celery_task_id="", message=BROKER_DOWN_MESSAGE
        )
        return False
    return True


def evaluate_rivals(*, version: ModelVersion) -> list[Evaluation]:
    """Queue the production version and the latest other candidate on the snapshot `version` was
    evaluated on at training, so the new version is paired with both without anyone asking."""
    try:
        return _evaluate_rivals(version)
    except Exception:  # the version is published: a missed comparison must not fail its run
        logger.exception("the rivals of %s could not be queued for evaluation", version.name)
        return []


def _evaluate_rivals(version: ModelVersion) -> list[Evaluation]:
    trained = (
        Evaluation.objects.filter(model_version=version, at_training=True)
        .select_related("snapshot")
        .defer("predictions", "snapshot__images")
        .first()
    )
    if trained is None or not trained.snapshot.n_images:
        return []
    others = ModelVersion.objects.exclude(pk=version.pk).defer(*selectors.HEAVY_VERSION_FIELDS)
    rivals = [
        others.filter(stage=Stage.PRODUCTION).first(),
        others.filter(stage=Stage.CANDIDATE).order_by("-created_at", "-id").first(),
    ]
    queued = []
    for rival in rivals:
        if rival is None:
            continue
        try:
            evaluation, _ = request_evaluation(version=rival, snapshot=trained.snapshot, requested_by=None)
        except ValidationError as refusal:
            logger.info("%s not evaluated on snapshot %s: %s", rival.name, trained.snapshot_id, refusal.messages)
            continue
        queued.append(evaluation)
    return queued


# ---------------------------------------------------------------------------------------------
# The worker's side


def run_evaluation(evaluation_id: int) -> str:
    """Score a queued evaluation; returns its status afterwards. Of two deliveries, one runs."""
    claimed = Evaluation.objects.filter(pk=evaluation_id, status=EvaluationStatus.QUEUED).update(
        status=EvaluationStatus.RUNNING, started_at=timezone.now(), message="loading the model"
    )
    if not claimed:
        return Evaluation.objects.filter(pk=evaluation_id).values_list("status", flat=True).first() or "missing"
    evaluation = (
        Evaluation.objects.select_related("model_version", "snapshot").defer("predictions").get(pk=evaluation_id)
    )
    version, snapshot = evaluation.model_version, evaluation.snapshot
    from modeling.ml.predict import load_model

    try:
        records = records_of(snapshot)

        def progress(done: int) -> None:
            _update(
                evaluation_id,
                progress=SCORING_SHARE * done / len(records),
                message=f"scored {done} of {len(records)} test images",
            )

        model = load_model(
            weights_file(version), expected_sha256=version.weights_sha256 or None, cache_dir=feature_cache_dir()
        )
        predictions = predict(model, records, progress=progress)
        _update(evaluation_id, progress=SCORING_SHARE, message="computing metrics and confidence intervals")
        levels = model.levels
        metrics = metrics_by_cohort(predictions, levels, seed=evaluation.seed, n_bootstrap=evaluation.resamples)
    except Exception as error:
        logger.exception("evaluation %s failed", evaluation_id)
        _update(
            evaluation_id,
            status=EvaluationStatus.FAILED,
            message="failed",
            finished_at=timezone.now(),
            error=f"{type(error).__name__}: {error}\n\n" + "".join(traceback.format_exception(error)[-8:]),
        )
        return EvaluationStatus.FAILED
    _update(
        evaluation_id,
        status=EvaluationStatus.SUCCEEDED,
        progress=1.0,
        predictions=predictions,
        metrics=metrics,
        message=f"scored {len(predictions)} test images",
        finished_at=timezone.now(),
    )
    return EvaluationStatus.SUCCEEDED


def _update(evaluation_id: int, **fields: Any) -> None:
    Evaluation.objects.filter(pk=evaluation_id, status=EvaluationStatus.RUNNING).update(**fields)
