"""The retrain policy: count and daily triggers, never while a run is active, never twice for one
trigger, and the admin's page."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from annotation.models import Image
from annotation.services import record_label
from modeling import retrain_policy
from modeling.models import RetrainPolicy, RetrainTrigger, RunStatus, TrainingRun
from painsite.core.models import AuditEvent
from tests.modeling.training_data import LABELS_PER_DATASET as LABELS_IN_DATASET
from tests.modeling.training_data import SMALL_CONFIG, make_dataset

pytestmark = pytest.mark.django_db


def enable(admin, **triggers):
    return retrain_policy.set_policy(
        enabled=True,
        min_new_labels=triggers.get("min_new_labels"),
        daily_at=triggers.get("daily_at"),
        config={**SMALL_CONFIG, "cohorts": ["clinical", "simulated"]},
        set_by=admin,
    )


def end(run: TrainingRun, status: str = RunStatus.FAILED) -> None:
    TrainingRun.objects.filter(pk=run.pk).update(status=status)


def relabel(rater, count: int) -> None:
    for image in Image.objects.order_by("id")[:count]:
        record_label(image=image, rater=rater, nrs=6, kind="observer")


def today_at(hour: int, minute: int = 0, days: int = 0) -> datetime.datetime:
    local = timezone.localtime() + datetime.timedelta(days=days)
    return local.replace(hour=hour, minute=minute, second=0, microsecond=0)


def test_off_by_default_it_never_starts_a_run(clinician):
    make_dataset(clinician)
    assert not retrain_policy.policy_in_force().enabled
    assert retrain_policy.check_policy() is None
    assert not TrainingRun.objects.exists()


def test_enough_new_labels_start_one_run_recorded_as_the_policys(clinician, admin_user):
    make_dataset(clinician)
    policy = enable(admin_user, min_new_labels=LABELS_IN_DATASET)
    run = retrain_policy.check_policy()
    assert run is not None and run.triggered_by == "policy" and run.requested_by is None
    assert run.trigger["reason"] == "label count" and run.trigger["new_labels"] == LABELS_IN_DATASET
    assert run.trigger["policy"] == policy.pk and run.config["cohorts"] == ["clinical", "simulated"]
    assert RetrainTrigger.objects.get().run == run
    started = AuditEvent.objects.get(action="training.start")
    assert started.details["triggered_by"] == "policy" and started.details["trigger"]["new_labels"] == LABELS_IN_DATASET


def test_too_few_new_labels_start_nothing(clinician, admin_user):
    make_dataset(clinician)
    enable(admin_user, min_new_labels=LABELS_IN_DATASET + 1)
    assert retrain_policy.check_policy() is None


def test_it_never_starts_while_a_run_is_active_and_a_failed_run_waits_for_new_labels(clinician, admin_user):
    make_dataset(clinician)
    enable(admin_user, min_new_labels=5)
    first = retrain_policy.check_policy()
    assert retrain_policy.check_policy() is None  # the first is still queued
    end(first, RunStatus.FAILED)
    assert retrain_policy.check_policy() is None  # no label changed since it fired
    relabel(clinician, 4)
    assert retrain_policy.check_policy() is None  # 4 < 5
    relabel(clinician, 1)
    second = retrain_policy.check_policy()
    assert second is not None and second.trigger["new_labels"] == 5
    assert TrainingRun.objects.count() == 2


def test_the_daily_time_fires_once_a_day_and_only_when_labels_changed(clinician, admin_user):
    make_dataset(clinician)
    enable(admin_user, daily_at=datetime.time(8, 0))
    assert retrain_policy.check_policy(now=today_at(7, 59)) is None
    run = retrain_policy.check_policy(now=today_at(8, 1))
    assert run is not None and run.trigger["reason"] == "daily time"
    end(run, RunStatus.SUCCEEDED)
    relabel(clinician, 2)
    assert retrain_policy.check_policy(now=today_at(23, 0)) is None  # once a day
    tomorrow = retrain_policy.check_policy(now=today_at(8, 5, days=1))
    assert tomorrow is not None and tomorrow.trigger["new_labels"] == 2
    end(tomorrow, RunStatus.SUCCEEDED)
    assert retrain_policy.check_policy(now=today_at(8, 5, days=2)) is None  # nothing changed since


@pytest.mark.django_db(transaction=True)
def test_two_beat_processes_checking_at_once_start_one_run(clinician, admin_user):
    make_dataset(clinician)
    enable(admin_user, min_new_labels=5)
    barrier = threading.Barrier(2)
    started, errors = [], []

    def beat() -> None:
        try:
            barrier.wait(timeout=10)
            started.append(retrain_policy.check_policy())
        except Exception as error:  # a crash in a check is a failure of this test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len([run for run in started if run is not None]) == 1
    assert TrainingRun.objects.count() == 1 and RetrainTrigger.objects.count() == 1


def test_a_check_after_a_restart_does_not_fire_the_same_trigger_again(clinician, admin_user):
    make_dataset(clinician)
    enable(admin_user, min_new_labels=5)
    run = retrain_policy.check_policy()
    end(run, RunStatus.CANCELLED)  # the worker and beat restarted; the run did not finish
    assert retrain_policy.check_policy() is None
    assert RetrainTrigger.objects.filter(key=run.trigger["key"]).count() == 1


def test_an_enabled_policy_needs_a_trigger(admin_user):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="label count, a daily time or both"):
        retrain_policy.set_policy(enabled=True, min_new_labels=None, daily_at=None, config={}, set_by=admin_user)
    assert not RetrainPolicy.objects.exists()


def test_researchers_see_the_policy_and_admins_change_it_audited(client, researcher, admin_user):
    client.force_login(researcher)
    page = client.get(reverse("learning-loop"))
    assert page.status_code == 200 and "Off." in page.content.decode()
    assert client.post(reverse("learning-loop"), {"form": "policy"}).status_code == 403
    assert "Retrain policy" in client.get(reverse("training")).content.decode()

    client.force_login(admin_user)
    form = {"form": "policy", "enabled": "on", "min_new_labels": "", "daily_at": "", "cohorts": ["clinical"]}
    form |= {"mode": "head", "epochs": 5, "lr": 0.001, "batch_size": 16, "label_rule": "self_report_first"}
    form |= {"seed": 3, "image_size": 64, "patience": 3}
    refused = client.post(reverse("learning-loop"), form)
    assert refused.status_code == 422 and "label count, a daily time or both" in refused.content.decode()
    assert client.post(reverse("learning-loop"), form | {"min_new_labels": 50, "daily_at": "02:30"}).status_code == 302
    policy = retrain_policy.policy_in_force()
    assert policy.enabled and policy.min_new_labels == 50 and policy.daily_at == datetime.time(2, 30)
    assert policy.config["cohorts"] == ["clinical"] and policy.config["epochs"] == 5
    event = AuditEvent.objects.get(action="retrain_policy.set")
    assert event.actor == admin_user and event.details["min_new_labels"] == 50
    assert "at least 50 labels" in client.get(reverse("training")).content.decode()

    gate_form = {"form": "gate", "margin": "0.03", "alpha": "0.01", "auto_promote": "on"}
    assert client.post(reverse("learning-loop"), gate_form).status_code == 302
    assert AuditEvent.objects.filter(action="gate_rule.set", details__auto_promote=True).exists()
    assert client.post(reverse("learning-loop"), {"form": "gate", "margin": "2"}).status_code == 422


def test_beats_round_of_the_learning_loop_checks_the_policy(clinician, admin_user):
    from modeling.tasks import run_learning_loop

    make_dataset(clinician)
    enable(admin_user, min_new_labels=5)
    first = run_learning_loop()
    assert first["started_run"] == TrainingRun.objects.get().pk
    assert first["verdicts"] == [] and first["drift"] == "not_estimable"
    assert run_learning_loop()["started_run"] is None
