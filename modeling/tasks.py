"""Celery tasks of the modeling app: thin, they take an id and call the runner or a service."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from modeling import (
    drift,
    evaluations,
    feature_backlog,
    gate,
    queue_predictions,
    retrain_policy,
    services,
    training_runner,
    ward_rounds,
)
from modeling.models import Evaluation, EvaluationStatus, RunStatus, TrainingRun

logger = logging.getLogger(__name__)


@shared_task(bind=True, name=services.RUN_TRAINING_TASK)
def run_training(self, run_id: int) -> dict[str, object]:
    """One attempt at training run `run_id` (routed to the `training` queue by painsite/celery.py)."""

    def report_state(meta: dict[str, object]) -> None:
        self.update_state(state="PROGRESS", meta={"run": run_id, **meta})

    status = training_runner.execute(run_id, report_state=report_state if self.request.id else None)
    if status == RunStatus.SUCCEEDED:
        version = TrainingRun.objects.get(pk=run_id).model_version
        gate.judge_published(version)
    return {"run": run_id, "status": status}


@shared_task(name="modeling.tasks.reap_stale_runs")
def reap_stale_runs() -> list[dict[str, object]]:
    """Resume or fail runs whose worker died; Celery beat sends this every
    PAINSITE_REAPER_INTERVAL_SECONDS (see docs/deploy.md)."""
    return [
        {"run": reaped.run_id, "action": reaped.action, "attempts": reaped.attempts}
        for reaped in services.reap_stale_runs()
    ]


@shared_task(name=evaluations.RUN_EVALUATION_TASK)
def run_evaluation(evaluation_id: int) -> dict[str, object]:
    """Score a model version on a test snapshot (the `default` queue: a head-mode version's
    features are cached, so this takes seconds)."""
    status = evaluations.run_evaluation(evaluation_id)
    if status == EvaluationStatus.SUCCEEDED:
        gate.judge_after_evaluation(Evaluation.objects.only("snapshot_id").get(pk=evaluation_id))
    return {"evaluation": evaluation_id, "status": status}


@shared_task(name="modeling.tasks.run_learning_loop")
def run_learning_loop() -> dict[str, object]:
    """Beat's round of the learning loop (every PAINSITE_LEARNING_LOOP_SECONDS): verdicts a
    stopped worker missed, the retrain policy, the drift watch. A part that fails is logged and
    tried again next round; it does not keep the others from running."""
    decisions = _logged(gate.judge_waiting) or []
    run = _logged(retrain_policy.check_policy)
    report = _logged(drift.warn_on_drift)
    return {
        "verdicts": [decision.pk for decision in decisions],
        "started_run": run.pk if run else None,
        "drift": report.verdict if report else "failed",
    }


def _logged(part):
    try:
        return part()
    except Exception:
        logger.exception("learning loop: %s failed", part.__qualname__)
        return None


@shared_task(name=feature_backlog.COMPUTE_PENDING_FEATURES_TASK)
def compute_pending_features() -> dict[str, object]:
    """Compute the frozen features of images stored since the last time (the `default` queue;
    sent when images arrive, when a worker starts and by Celery beat; see feature_backlog.py).

    One task does at most PAINSITE_FEATURES_BATCHES_PER_TASK batches and then sends itself again,
    behind whatever else waits on the queue: an import or an evaluation never waits for a whole
    backlog."""
    report = feature_backlog.work_through_backlog(max_batches=settings.PAINSITE_FEATURES_BATCHES_PER_TASK)
    more = not report.yielded and report.batches > 0 and feature_backlog.pending_count() > 0
    if more:
        feature_backlog.kick(force=True)
    return {**report.as_dict(), "more_pending": more}


@shared_task(name=queue_predictions.PREDICT_QUEUE_TASK)
def predict_queue_images(version_id: int) -> dict[str, object]:
    """Predict the never-labeled images with newly promoted version `version_id`, for the labeling
    queue's order (the `default` queue; see queue_predictions.py)."""
    return queue_predictions.predict_unlabeled(version_id=version_id).as_dict()


@worker_ready.connect
def _work_through_backlog_after_a_restart(sender=None, **kwargs) -> None:
    """A worker that starts picks up what a stopped one left on the backlog."""
    if feature_backlog.enabled() and feature_backlog.pending_count():
        feature_backlog.kick(force=True)


@shared_task(name="modeling.tasks.run_ward_round")
def run_ward_round() -> dict[str, object]:
    """Beat's ward round (every PAINSITE_WARD_TICK_SECONDS, on the `monitoring` queue): assess the
    cameras whose next slot is due."""
    return ward_rounds.run_ward_round().as_dict()
