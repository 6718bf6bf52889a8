from __future__ import annotations

import os

import pytest

from modeling.tasks import reap_stale_runs
from painsite.celery import app as celery_app
from painsite.core.tasks import ping
from tests.workers import celery_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.system]


def test_a_real_worker_process_executes_a_task_from_the_broker(test_broker_url, worker_log_dir):
    with celery_worker(broker_url=test_broker_url, queues=("default",), log_dir=worker_log_dir) as worker:
        answer = ping.delay().get(timeout=60)
    assert answer["pong"] is True
    assert answer["pid"] != os.getpid()
    assert "painsite.core.tasks.ping" in worker.log()


def queued(queue: str) -> int:
    with celery_app.connection_for_write() as conn:
        # Declared as the workers declare it (a passive declare of a queue that is empty does not
        # find it on Redis, which keeps no empty lists).
        return conn.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False).message_count


# The next two tests are a pair, run in this order: what the first leaves in its broker, as a beat
# scheduler does when it sends faster than its worker takes tasks, must not reach the second's
# worker ahead of (or instead of) the second test's own task.


def test_an_earlier_test_leaves_beat_tasks_in_its_broker(test_broker_url):
    for _ in range(3):
        reap_stale_runs.delay()
    assert queued("default") == 3


def test_a_worker_takes_no_task_an_earlier_test_left_in_its_broker(test_broker_url, worker_log_dir):
    assert queued("default") == 0
    with celery_worker(broker_url=test_broker_url, queues=("default",), log_dir=worker_log_dir) as worker:
        assert ping.delay().get(timeout=60)["pong"] is True
    log = worker.log()
    assert "Task painsite.core.tasks.ping[" in log
    assert "Task modeling.tasks.reap_stale_runs[" not in log


def test_a_worker_with_beat_stops_entirely_and_removes_its_schedule_file(test_broker_url, worker_log_dir):
    with celery_worker(
        broker_url=test_broker_url, queues=("default",), log_dir=worker_log_dir, beat=True,
        PAINSITE_REAPER_INTERVAL_SECONDS="1",
    ) as worker:  # fmt: skip
        wait_for(lambda: "Sending due task reap-stale-training-runs" in worker.log(), timeout=120, message="beat")
        schedule = worker.schedule_path
        assert list(schedule.parent.glob(schedule.name + "*"))
    assert not worker.alive_in_group()  # no pool child, no beat left sending tasks
    assert not list(schedule.parent.glob(schedule.name + "*"))
