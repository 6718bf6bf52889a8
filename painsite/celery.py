"""The Celery app: three queues, `default` (imports, face crops, features), `training` and
`monitoring` (ward rounds reading the bedside cameras)."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "painsite.settings")

app = Celery("painsite")
app.config_from_object("django.conf:settings", namespace="CELERY")

# Tasks that train or evaluate a network go to GPU-capable `training` workers; everything
# else runs on `default` workers.
TRAINING_TASKS = frozenset({"modeling.tasks.run_training"})
# Ward rounds read the bedside cameras: `monitoring` workers, placed where the cameras are reachable.
MONITORING_TASKS = frozenset({"modeling.tasks.run_ward_round"})


def route_task(name: str, args, kwargs, options, task=None, **kw) -> dict[str, str]:
    if name in MONITORING_TASKS:
        return {"queue": "monitoring"}
    return {"queue": "training" if name in TRAINING_TASKS else "default"}


# Each queue has its own exchange and routing key: a bare Queue("training") would be bound to the
# default exchange with the default key, and a training task would reach `default` workers too.
app.conf.task_queues = (
    Queue("default", Exchange("default", type="direct"), routing_key="default"),
    Queue("training", Exchange("training", type="direct"), routing_key="training"),
    Queue("monitoring", Exchange("monitoring", type="direct"), routing_key="monitoring"),
)
app.conf.task_routes = (route_task,)
app.autodiscover_tasks()
