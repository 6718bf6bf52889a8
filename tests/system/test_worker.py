from __future__ import annotations

import pytest

from painsite.core.tasks import ping
from tests.workers import celery_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.system]


def test_a_real_worker_process_executes_a_task_from_the_broker(test_broker_url, worker_log_dir):
    with celery_worker(broker_url=test_broker_url, queues=("default",), log_dir=worker_log_dir) as worker:
        answer = ping.delay().get(timeout=60)
    assert answer["pong"] is True
    assert answer["pid"] != __import__("os").getpid()
    assert "painsite.core.tasks.ping" in worker.log()
