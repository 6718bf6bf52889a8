"""Celery tasks of the modeling app: thin, they take an id and call the runner or a service."""

from __future__ import annotations

from celery import shared_task

from modeling import evaluations, services, training_runner


@shared_task(bind=True, name=services.RUN_TRAINING_TASK)
def run_training(self, run_id: int) -> dict[str, object]:
    """One attempt at training run `run_id` (routed to the `training` queue by painsite/celery.py)."""

    def report_state(meta: dict[str, object]) -> None:
        self.update_state(state="PROGRESS", meta={"run": run_id, **meta})

    status = training_runner.execute(run_id, report_state=report_state if self.request.id else None)
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
    return {"evaluation": evaluation_id, "status": evaluations.run_evaluation(evaluation_id)}
