"""Publishing a finished run: the weights put in place, the model version and its training-time
evaluation written, the run closed, in one transaction; and the two ways a run stops being this
worker's to publish (another attempt took it, or it was cancelled).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from django.db import IntegrityError, transaction
from django.utils import timezone

from modeling import artifacts, evaluations, provenance
from modeling.ml.files import copy_checked
from modeling.ml.levels import PainLevels
from modeling.models import ModelVersion, RunStatus, Split, TrainingRun
from modeling.provenance import MANIFEST_KEYS, code_version, library_versions
from modeling.snapshots import target_source_counts
from painsite.core.services import record_event


class LostOwnership(Exception):
    """Another attempt took over this run (this worker was presumed dead): stop, touch nothing."""


def cancelled(message: str = "cancelled after training, before the model version was written") -> BaseException:
    from modeling.ml.training import TrainingCancelled

    return TrainingCancelled(message)


def publish(run, attempt, images, result, config, predictions, metrics, ml_seconds) -> ModelVersion:
    """Put the weights in place, then write the version and close the run in one transaction.
    If the transaction fails the weights file goes again: a version row exists only with its
    file, and a file only with its row."""
    weights_path = _publish_weights(run.pk, result.weights_path, result.weights_sha256)
    used = [item for item in images if item["split"] == Split.TEST or item["cohort"] in run.config["cohorts"]]
    trained_on = [item for item in used if item["split"] == Split.TRAIN]
    try:
        with transaction.atomic():
            locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
            if locked.status != RunStatus.RUNNING or locked.attempts != attempt.number:
                raise LostOwnership(f"training run {run.pk} changed hands before publishing")
            if locked.cancel_requested:
                raise cancelled()
            version = _create_version(
                run=locked,
                used=used,
                trained_on=trained_on,
                result=result,
                config=config,
                predictions=predictions,
                metrics=metrics,
                weights_path=weights_path,
            )
            evaluations.record_training_evaluation(
                version=version, images=used, predictions=predictions, metrics=metrics, seed=config.seed
            )
            warning = " (WARNING: random-init backbone, no ImageNet weights)" if version.is_random_init else ""
            locked.status = RunStatus.SUCCEEDED
            locked.progress = 1.0
            locked.eta_seconds = None
            locked.finished_at = timezone.now()
            locked.heartbeat_at = timezone.now()
            locked.history = result.history
            locked.ml_seconds = ml_seconds
            if config.mode == "head":
                locked.features_computed = result.cache_misses
                locked.features_cached = result.cache_hits
            resumed = f" (resumed from epoch {result.resumed_from_epoch})" if result.resumed_from_epoch else ""
            locked.message = f"finished: {version.name}{warning}{resumed}"
            locked.save(
                update_fields=[
                    "status",
                    "progress",
                    "eta_seconds",
                    "finished_at",
                    "heartbeat_at",
                    "history",
                    "ml_seconds",
                    "features_computed",
                    "features_cached",
                    "message",
                ]
            )
            record_event(
                actor=None,
                action="model_version.create",
                target=version,
                details={
                    "name": version.name,
                    "training_run": run.pk,
                    "backbone": version.backbone,
                    "weights_sha256": version.weights_sha256,
                },
            )
    except BaseException:
        shutil.rmtree(weights_path.parent, ignore_errors=True)
        raise
    shutil.rmtree(artifacts.run_work_dir(run.pk), ignore_errors=True)
    evaluations.evaluate_rivals(version=version)
    return version


def _publish_weights(run_id: int, source: str, expected_sha256: str) -> Path:
    """Copy the weights into place, checking the sha256 of the bytes as they are written (a
    fine-tuned VGG16 is half a gigabyte: reading it back would double the cost)."""
    target = artifacts.run_artifact_dir(run_id) / "weights.pt"
    copy_checked(source, target, expected_sha256=expected_sha256)
    return target


def _create_version(*, run, used, trained_on, result, config, predictions, metrics, weights_path) -> ModelVersion:
    levels = PainLevels.parse(config.levels)
    fields = dict(
        training_run=run,
        cohorts=run.config["cohorts"],
        mode=config.mode,
        data_manifest={
            "label_rule": run.config["label_rule"],
            "pain_levels": levels.spec,
            "images": [{key: item[key] for key in MANIFEST_KEYS} for item in used],
            "target_sources": target_source_counts(item for item in used if item["split"] != Split.TEST),
        },
        data_manifest_sha256=provenance.manifest_sha256(used),
        split_sha256=provenance.split_sha256(used),
        label_rule=run.config["label_rule"],
        pain_levels=[{"name": name, "nrs": [low, high]} for name, (low, high) in zip(levels.names, levels.ranges)],
        # The feature path that ran (the config may say auto): features of another path differ.
        hyperparameters=config.to_dict() | {"feature_path": result.feature_path or config.feature_path},
        seed=config.seed,
        code_version=code_version(),
        library_versions=library_versions(),
        device=str(result.device),
        backbone=result.backbone,
        backbone_sha256=result.backbone_sha256 or "",
        weights_path=str(weights_path),
        weights_sha256=result.weights_sha256,
        n_train_images=len(trained_on),
        n_train_patients=len({item["patient"] for item in trained_on}),
        metrics=metrics,
        test_predictions=predictions,
        training_history=result.history,
        created_by_id=run.requested_by_id,
    )
    # Names are v1, v2, ...: the next free number. Two runs finishing at once on different
    # queues may pick the same one; the unique name makes the later one try the next.
    for _ in range(20):
        try:
            with transaction.atomic():
                return ModelVersion.objects.create(name=f"v{next_version_number()}", **fields)
        except IntegrityError:
            if ModelVersion.objects.filter(training_run=run).exists():
                raise
    raise RuntimeError("could not allocate a model version name")


def next_version_number() -> int:
    numbers = [int(name[1:]) for name in ModelVersion.objects.values_list("name", flat=True) if name[1:].isdigit()]
    return max(numbers, default=0) + 1
