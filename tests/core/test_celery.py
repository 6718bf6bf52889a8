from __future__ import annotations

from painsite.celery import app


def test_training_tasks_are_routed_to_the_training_queue():
    queue = app.amqp.router.route({}, "modeling.tasks.run_training")["queue"]
    assert (queue.name, queue.exchange.name, queue.routing_key) == ("training", "training", "training")


def test_no_two_queues_share_an_exchange_binding():
    """A message for one queue must never be delivered to another as well."""
    bindings = [(queue.exchange.name, queue.routing_key) for queue in app.conf.task_queues]
    assert len(set(bindings)) == len(bindings) == 3


def test_ward_rounds_are_routed_to_the_monitoring_queue():
    queue = app.amqp.router.route({}, "modeling.tasks.run_ward_round")["queue"]
    assert (queue.name, queue.exchange.name, queue.routing_key) == ("monitoring", "monitoring", "monitoring")


def test_other_tasks_are_routed_to_the_default_queue():
    for name in ("painsite.core.tasks.ping", "annotation.tasks.import_archive", "modeling.tasks.reap_stale_runs"):
        assert app.amqp.router.route({}, name)["queue"].name == "default"


def test_tasks_are_acknowledged_late_one_at_a_time_with_time_limits():
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert 0 < conf.task_soft_time_limit < conf.task_time_limit
    assert conf.result_backend == "django-db"
    assert {queue.name for queue in conf.task_queues} == {"default", "training", "monitoring"}
