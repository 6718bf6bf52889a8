"""The retrain policy: the platform retrains by itself when enough labels changed, or at a daily
time, with the cohorts and settings an admin chose.

Celery beat sends `modeling.tasks.run_learning_loop` every PAINSITE_LEARNING_LOOP_SECONDS; it calls
`check_policy`. A check never starts a run while one is active (the one-active-run rule of
`start_training`), and never starts two runs for one trigger: each firing is a RetrainTrigger row
with a unique key (the newest label it counted, or the day), created in the same transaction as
the run, so two beat processes, or one restarted mid-check, meet the database's unique rule.

Labels "added or changed" are PainLabel rows created since the cut-off: labels are append-only,
so a correction or an undo is a new row. The cut-off is the later of the newest model version's
run request and the policy's last firing: a failed policy run does not fire again until new
labels arrive. The daily trigger fires once a day, at or after its local time, when at least
one label changed since the cut-off (a retrain on unchanged data would only repeat a version).
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext

from annotation.models import PainLabel
from modeling.models import ModelVersion, RetrainPolicy, RetrainTrigger, TrainingRun
from modeling.serializers_training import clean_training_config
from modeling.services import TrainingAlreadyActive, start_training
from painsite.core.services import record_event

logger = logging.getLogger(__name__)

# What the policy form shows before an admin sets one: off, head mode on both cohorts.
DEFAULT_CONFIG: dict[str, Any] = {"cohorts": ["clinical", "simulated"], "mode": "head"}


def policy_in_force() -> RetrainPolicy:
    policy = RetrainPolicy.objects.order_by("-created_at", "-id").first()
    return policy if policy is not None else RetrainPolicy(enabled=False, config=clean_training_config(DEFAULT_CONFIG))


def set_policy(
    *,
    enabled: bool,
    min_new_labels: int | None,
    daily_at: datetime.time | None,
    config: dict[str, Any],
    set_by: User,
) -> RetrainPolicy:
    """Store a new policy (the old one stays as history), audited. ValidationError names what is wrong."""
    if enabled and not min_new_labels and daily_at is None:
        raise ValidationError(
            {"min_new_labels": [gettext("an enabled policy needs a label count, a daily time or both")]}
        )
    if min_new_labels is not None and min_new_labels < 1:
        raise ValidationError({"min_new_labels": [gettext("must be at least 1")]})
    config = clean_training_config(config)
    with transaction.atomic():
        policy = RetrainPolicy.objects.create(
            enabled=enabled, min_new_labels=min_new_labels or None, daily_at=daily_at, config=config, created_by=set_by
        )
        record_event(
            actor=set_by,
            action="retrain_policy.set",
            target=policy,
            details={
                "enabled": enabled,
                "min_new_labels": policy.min_new_labels,
                "daily_at": daily_at.isoformat() if daily_at else None,
                "config": config,
            },
        )
    return policy


@dataclass(frozen=True)
class PolicyState:
    """What the policy sees now: shown on /training/ and used by `check_policy`."""

    policy: RetrainPolicy
    cutoff: datetime.datetime | None
    new_labels: int
    newest_label_id: int | None
    due_daily: bool

    @property
    def due_by_count(self) -> bool:
        return bool(self.policy.min_new_labels) and self.new_labels >= self.policy.min_new_labels


def policy_state(*, now: datetime.datetime | None = None) -> PolicyState:
    now = now or timezone.now()
    policy = policy_in_force()
    newest_version_run = (
        ModelVersion.objects.order_by("-created_at", "-id").values_list("training_run__created_at", flat=True).first()
    )
    last_firing = RetrainTrigger.objects.aggregate(last=Max("created_at"))["last"]
    cutoff = max((moment for moment in (newest_version_run, last_firing) if moment is not None), default=None)
    labels = PainLabel.objects.filter(image__patient__cohort__in=policy.config.get("cohorts", []))
    if cutoff is not None:
        labels = labels.filter(created_at__gt=cutoff)
    counted = labels.aggregate(n=Max("id"))["n"], labels.count()
    due_daily = False
    if policy.daily_at is not None and counted[1] > 0:
        local = timezone.localtime(now)
        today_at = local.replace(hour=policy.daily_at.hour, minute=policy.daily_at.minute, second=0, microsecond=0)
        due_daily = local >= today_at and not RetrainTrigger.objects.filter(key=_daily_key(local.date())).exists()
    return PolicyState(
        policy=policy, cutoff=cutoff, new_labels=counted[1], newest_label_id=counted[0], due_daily=due_daily
    )


def _daily_key(day: datetime.date) -> str:
    return f"daily:{day.isoformat()}"


def check_policy(*, now: datetime.datetime | None = None) -> TrainingRun | None:
    """Start the run the policy asks for, if any; None when it asks for nothing or cannot now."""
    now = now or timezone.now()
    state = policy_state(now=now)
    policy = state.policy
    if not policy.enabled or policy.pk is None:
        return None
    if state.due_by_count:
        key, reason = f"labels:{state.newest_label_id}", "label count"
    elif state.due_daily:
        key, reason = _daily_key(timezone.localtime(now).date()), "daily time"
    else:
        return None
    if TrainingRun.objects.active().exists():
        return None
    numbers = {
        "policy": policy.pk,
        "reason": reason,
        "key": key,
        "new_labels": state.new_labels,
        "min_new_labels": policy.min_new_labels,
        "daily_at": policy.daily_at.isoformat() if policy.daily_at else None,
        "since": state.cutoff.isoformat() if state.cutoff else None,
        "newest_label_id": state.newest_label_id,
    }
    try:
        with transaction.atomic():
            run = start_training(requested_by=None, config=dict(policy.config), trigger=numbers)
            RetrainTrigger.objects.create(key=key, policy=policy, run=run, numbers=numbers)
    except (TrainingAlreadyActive, IntegrityError):
        return None  # another check fired this trigger, or a run started meanwhile
    except ValidationError as refusal:
        logger.info("retrain policy %s: not started: %s", policy.pk, refusal.messages)
        return None
    logger.info("retrain policy %s started training run %s (%s)", policy.pk, run.pk, reason)
    return run
