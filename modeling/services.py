"""Writes of the modeling app: starting, cancelling and recovering training runs; promotions.

Each public function is one transaction. The TrainingRun row is the source of truth: the broker
only carries "look at run N", so a lost or duplicated message never changes what happens.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from modeling import queue_predictions, selectors
from modeling.artifacts import remove_run_files, run_work_dir
from modeling.ml.levels import PainLevels
from modeling.ml.splits import assign_splits
from modeling.models import (
    ACTIVE_STATUSES,
    ModelVersion,
    PromotionEvent,
    RunStatus,
    Split,
    SplitAssignment,
    Stage,
    TrainingRun,
    TrainingSnapshot,
)
from modeling.serializers_training import clean_training_config
from modeling.vocabulary import cohort_word, status_word
from painsite.core.services import record_event

TRAINING_QUEUE = "training"
# The Celery task that runs one attempt at a training run (modeling/tasks.py); painsite/celery.py
# routes it to the `training` queue.
RUN_TRAINING_TASK = "modeling.tasks.run_training"

logger = logging.getLogger(__name__)


class TrainingAlreadyActive(Exception):
    """A run is already queued or running on this queue: runs are not silently stacked."""

    def __init__(self, active_run: TrainingRun) -> None:
        self.active_run = active_run
        super().__init__(
            gettext(
                "training run %(id)s is already %(status)s on the '%(queue)s' queue; wait for it to finish or cancel it"
            )
            % {"id": active_run.pk, "status": status_word(active_run.status), "queue": active_run.queue}
        )


class RunNotActive(Exception):
    """Cancel of a run that already finished."""

    def __init__(self, run: TrainingRun) -> None:
        self.run = run
        super().__init__(
            gettext("training run %(id)s already %(status)s: there is nothing to cancel")
            % {"id": run.pk, "status": status_word(run.status)}
        )


class AlreadyInProduction(Exception):
    def __init__(self, version: ModelVersion) -> None:
        self.version = version
        super().__init__(gettext("%(name)s is already the production model") % {"name": version.name})


# ---------------------------------------------------------------------------------------------
# Starting a run


def start_training(
    *,
    requested_by: User | None,
    config: dict[str, Any],
    enqueue: bool = True,
    trigger: dict[str, Any] | None = None,
) -> TrainingRun:
    """Check the config, snapshot the data (`run.snapshot`), create the run and send it to a
    training worker once the transaction commits. `enqueue=False` leaves the run for an
    in-process runner (`manage.py train --inline`). `trigger`: the retrain policy's numbers, for
    a run the policy started (modeling/retrain_policy.py)."""
    config = clean_training_config(config)
    with transaction.atomic():
        active = TrainingRun.objects.active().filter(queue=TRAINING_QUEUE).first()
        if active is not None:
            raise TrainingAlreadyActive(active)
        manifest = snapshot_training_data(cohorts=config["cohorts"], label_rule=config["label_rule"])
        _check_enough_data(manifest)
        images = manifest.pop("images")
        run = TrainingRun(
            config=config,
            queue=TRAINING_QUEUE,
            requested_by=requested_by,
            data_manifest=manifest,
            celery_task_id=str(uuid.uuid4()),
            message="waiting for a training worker",
            triggered_by="policy" if trigger is not None else "user",
            trigger=trigger or {},
        )
        try:
            # Two requests racing past the check above meet the database's one-active-run rule.
            with transaction.atomic():
                run.save()
        except IntegrityError:
            raise TrainingAlreadyActive(TrainingRun.objects.active().get(queue=TRAINING_QUEUE)) from None
        TrainingSnapshot.objects.create(run=run, images=images)
        record_event(
            actor=requested_by,
            action="training.start",
            target=run,
            details={"config": config, "counts": manifest["counts"]}
            | ({"triggered_by": "policy", "trigger": trigger} if trigger is not None else {}),
        )
        if enqueue:
            transaction.on_commit(lambda: send_to_worker(run))
    return run


BROKER_DOWN_MESSAGE = (
    "the task broker is unreachable: the run is saved and will be sent to a training worker "
    "as soon as the broker is back"
)


def send_to_worker(run: TrainingRun) -> bool:
    """Hand the run to the broker. When the broker cannot be reached the run stays queued with no
    task id, says so in its message, and the reaper sends it once the broker is back
    (`send_unsent_runs`): the request that started it is still answered, never a 500."""
    try:
        # Sent by name: the task module imports this one.
        current_app.send_task(RUN_TRAINING_TASK, args=[run.pk], task_id=run.celery_task_id, queue=run.queue)
    except Exception:
        logger.exception("training run %s could not be sent to the broker; it waits for the reaper", run.pk)
        TrainingRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
            celery_task_id="", message=BROKER_DOWN_MESSAGE
        )
        run.celery_task_id, run.message = "", BROKER_DOWN_MESSAGE
        return False
    return True


def send_unsent_runs() -> list[ReapedRun]:
    """Send the queued runs the broker refused earlier (their task id is blank)."""
    sent = []
    for run_id in TrainingRun.objects.filter(status=RunStatus.QUEUED, celery_task_id="").values_list("pk", flat=True):
        with transaction.atomic():
            unsent = TrainingRun.objects.select_for_update().filter(
                pk=run_id, status=RunStatus.QUEUED, celery_task_id=""
            )
            run = unsent.first()
            if run is None:  # another reaper sent it, or it was cancelled meanwhile
                continue
            run.celery_task_id = str(uuid.uuid4())
            run.message = "waiting for a training worker (sent after the broker came back)"
            run.save(update_fields=["celery_task_id", "message"])
        if send_to_worker(run):
            record_event(actor=None, action="training.sent_after_broker_outage", target=run, details={})
            sent.append(ReapedRun(run_id=run.pk, action="sent", attempts=run.attempts))
    return sent


def snapshot_training_data(*, cohorts: list[str], label_rule: str) -> dict[str, Any]:
    """The exact images and target labels a run uses, fixed at request time.

    Every labelled image of a consenting patient gets its patient's split (new patients are
    assigned now; existing assignments never move). Train and validation images come from the
    chosen cohorts; the locked test images of every cohort are kept for evaluation, so versions
    trained on different cohorts are still scored on the same patients.
    """
    levels = PainLevels.parse(settings.PAINSITE_PAIN_LEVELS)
    labelled = selectors.labelled_images(label_rule=label_rule)
    for item in labelled:
        item["level"] = levels.level_of(item["nrs"])
    splits = assign_patient_splits(labelled)
    images = []
    for item in labelled:
        item["split"] = splits[item["patient"]]
        if item["split"] == Split.TEST or item["cohort"] in cohorts:
            images.append(item)
    counts = {split: sum(1 for item in images if item["split"] == split) for split in Split.values}
    return {
        "label_rule": label_rule,
        "cohorts": cohorts,
        "pain_levels": levels.spec,
        "images": images,
        "counts": counts,
    }


def _check_enough_data(manifest: dict[str, Any]) -> None:
    counts = manifest["counts"]
    cohorts = gettext(" and ").join(cohort_word(cohort) for cohort in manifest["cohorts"])
    if not counts[Split.TRAIN]:
        raise ValidationError(
            {
                "cohorts": [
                    gettext(
                        "no labelled images of consenting %(cohorts)s patients in the training split under the label "
                        "rule %(rule)s"
                    )
                    % {"cohorts": cohorts, "rule": repr(manifest["label_rule"])}
                ]
            }
        )
    if not counts[Split.VAL]:
        raise ValidationError(
            {
                "cohorts": [
                    gettext(
                        "no labelled images of consenting %(cohorts)s patients in the validation split: early "
                        "stopping needs at least one validation patient"
                    )
                    % {"cohorts": cohorts}
                ]
            }
        )


def assign_patient_splits(labelled: list[dict[str, Any]]) -> dict[str, str]:
    """Split of every patient in `labelled` (patient code -> split). New patients get one,
    stratified by their cohort and highest pain level, so each cohort gets its share of test
    patients; assignments already stored never change."""
    max_level: dict[str, int] = {}
    cohorts: dict[str, str] = {}
    for item in labelled:
        max_level[item["patient"]] = max(max_level.get(item["patient"], 0), item["level"])
        cohorts[item["patient"]] = item["cohort"]
    existing = dict(SplitAssignment.objects.values_list("patient__code", "split"))
    seed = settings.PAINSITE_SPLIT_SEED
    assigned = assign_splits(max_level, existing, seed, cohorts=cohorts)
    new_codes = [code for code in max_level if code not in existing]
    if new_codes:
        patient_ids = dict(selectors.patient_ids(new_codes))
        SplitAssignment.objects.bulk_create(
            [SplitAssignment(patient_id=patient_ids[code], split=assigned[code], seed=seed) for code in new_codes],
            # A concurrent request may have assigned the same patient first; its answer stands.
            ignore_conflicts=True,
        )
        stored = SplitAssignment.objects.filter(patient__code__in=new_codes).values_list("patient__code", "split")
        existing.update(stored)
    return {code: existing[code] for code in max_level}


# ---------------------------------------------------------------------------------------------
# Cancel and crash recovery


def cancel_training(*, run: TrainingRun, actor: User | None) -> TrainingRun:
    """A queued run is cancelled at once; a running one stops cooperatively after its current
    batch (the worker reads the flag)."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        status_before = run.status
        if run.status == RunStatus.QUEUED:
            run.status = RunStatus.CANCELLED
            run.finished_at = timezone.now()
            run.message = "cancelled before it started"
            run.save(update_fields=["status", "finished_at", "message"])
        elif run.status == RunStatus.RUNNING:
            run.cancel_requested = True
            run.message = "cancel requested: stopping after the current batch"
            run.save(update_fields=["cancel_requested", "message"])
        else:
            raise RunNotActive(run)
        record_event(actor=actor, action="training.cancel", target=run, details={"status_before": status_before})
    return run


@dataclass(frozen=True)
class ReapedRun:
    run_id: int
    action: str  # "resumed", "failed", "cancelled", or "sent" (after a broker outage)
    attempts: int


def reap_stale_runs(*, now=None) -> list[ReapedRun]:
    """Runs whose worker stopped sending heartbeats (killed, out of memory, machine lost) are
    sent again, to resume from their last epoch checkpoint, or failed after
    PAINSITE_TRAINING_MAX_ATTEMPTS attempts; queued runs the broker refused are sent now.
    Safe to run from several places at once."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.PAINSITE_TRAINING_STALE_SECONDS)
    stale = TrainingRun.objects.filter(status=RunStatus.RUNNING).filter(
        Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True)
    )
    reaped = []
    for run_id in stale.values_list("pk", flat=True):
        outcome = _reap(run_id, stale_before)
        if outcome is not None:
            reaped.append(outcome)
    remove_ended_runs_work_folders()
    return reaped + send_unsent_runs()


def remove_ended_runs_work_folders() -> list[int]:
    """Remove the checkpoints of runs that ended. A run removes its own when it publishes, but a
    worker stopped between the commit and that removal leaves them behind."""
    folder = run_work_dir(0).parent
    try:
        names = [entry.name for entry in folder.iterdir() if entry.is_dir() and entry.name.isdigit()]
    except FileNotFoundError:
        return []
    ids = {int(name) for name in names}
    active = set(TrainingRun.objects.filter(pk__in=ids, status__in=ACTIVE_STATUSES).values_list("pk", flat=True))
    ended = sorted(ids - active)
    for run_id in ended:
        remove_run_files(run_id, keep_artifacts=True)
    return ended


def _reap(run_id: int, stale_before) -> ReapedRun | None:
    with transaction.atomic():
        run = (
            TrainingRun.objects.select_for_update()
            .filter(pk=run_id, status=RunStatus.RUNNING)
            .filter(Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True))
            .first()
        )
        if run is None:  # it sent a heartbeat meanwhile, or another reaper got there first
            return None
        last_seen = run.heartbeat_at.isoformat() if run.heartbeat_at else "never"
        if run.cancel_requested:
            action = "cancelled"
            run.status = RunStatus.CANCELLED
            run.message = f"cancelled (its worker stopped responding; last heartbeat {last_seen})"
        elif run.attempts >= settings.PAINSITE_TRAINING_MAX_ATTEMPTS:
            action = "failed"
            run.status = RunStatus.FAILED
            run.error = (
                f"the worker stopped responding during attempt {run.attempts} of "
                f"{settings.PAINSITE_TRAINING_MAX_ATTEMPTS} (last heartbeat {last_seen}); giving up"
            )
            run.message = "failed: worker lost too many times"
        else:
            action = "resumed"
            run.status = RunStatus.QUEUED
            run.celery_task_id = str(uuid.uuid4())
            run.message = f"worker lost (last heartbeat {last_seen}); resuming from the last checkpoint"
        if action != "resumed":
            run.finished_at = timezone.now()
        run.save(update_fields=["status", "celery_task_id", "message", "error", "finished_at"])
        record_event(
            actor=None,
            action=f"training.{action}_after_worker_lost",
            target=run,
            details={"attempts": run.attempts, "last_heartbeat": last_seen},
        )
        if action == "resumed":
            transaction.on_commit(lambda: send_to_worker(run))
        else:
            transaction.on_commit(lambda: remove_run_files(run.pk))
    return ReapedRun(run_id=run.pk, action=action, attempts=run.attempts)


# ---------------------------------------------------------------------------------------------
# Promotion


class RandomInitNotConfirmed(Exception):
    def __init__(self, version: ModelVersion) -> None:
        self.version = version
        super().__init__(
            gettext(
                "%(name)s has a random-init backbone (its VGG16 was not trained on ImageNet), so its assessments are "
                "far weaker than an ImageNet model's; promoting it needs explicit confirmation (confirm_random_init)"
            )
            % {"name": version.name}
        )


def promote_model_version(
    *, version: ModelVersion, actor: User | None, reason: str, confirm_random_init: bool = False
) -> ModelVersion:
    """Make `version` the production model. The previous production version is archived in the
    same transaction. Rollback is the promotion of an older version. A random-init version is
    promoted only with `confirm_random_init` (RandomInitNotConfirmed otherwise)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": [gettext("a reason is required to change the production model")]})
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version.pk)
        if version.stage == Stage.PRODUCTION:
            raise AlreadyInProduction(version)
        if version.is_random_init and not confirm_random_init:
            raise RandomInitNotConfirmed(version)
        # Archive first: the database allows one production version at any moment.
        for previous in ModelVersion.objects.select_for_update().filter(stage=Stage.PRODUCTION):
            _change_stage(previous, Stage.ARCHIVED, actor=actor, reason=f"replaced by {version.name}: {reason}")
        _change_stage(
            version, Stage.PRODUCTION, actor=actor, reason=reason, random_init_confirmed=version.is_random_init
        )
        queue_predictions.after_promotion(version)
    return version


def _change_stage(
    version: ModelVersion, to_stage: str, *, actor: User | None, reason: str, random_init_confirmed: bool = False
) -> None:
    from_stage = version.stage
    # A queryset update, not save(): a model version's other fields are never written again.
    ModelVersion.objects.filter(pk=version.pk).update(stage=to_stage)
    version.stage = to_stage
    PromotionEvent.objects.create(
        model_version=version, from_stage=from_stage, to_stage=to_stage, actor=actor, reason=reason
    )
    record_event(
        actor=actor,
        action="model_version.promote" if to_stage == Stage.PRODUCTION else "model_version.archive",
        target=version,
        details={"name": version.name, "from": from_stage, "to": to_stage, "reason": reason}
        | ({"random_init_confirmed": True} if random_init_confirmed else {}),
    )
