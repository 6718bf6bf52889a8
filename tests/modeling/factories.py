"""Model versions built from synthetic but honest test predictions.

Probabilities are random (seeded) and correlated with the true level by `skill`; the metrics
stored with each version come from the real ML core, exactly as the training task stores them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
from django.contrib.auth.models import User

from modeling.ml.metrics import evaluate_predictions
from modeling.models import Evaluation, EvaluationStatus, ModelVersion, RunStatus, Stage, TrainingRun
from modeling.snapshots import snapshot_of

LEVEL_NAMES = ["none", "mild", "moderate", "severe"]
LEVEL_RANGES = [(0, 0), (1, 3), (4, 6), (7, 10)]


def level_of(nrs: int) -> int:
    return next(index for index, (low, high) in enumerate(LEVEL_RANGES) if low <= nrs <= high)


def make_test_set(
    *, patients_per_cohort: int = 6, images_per_patient: int = 4, seed: int = 0, first_image_id: int = 1
) -> list[dict[str, Any]]:
    """Locked test images: patients of both cohorts, several images each, every level present."""
    rng = np.random.default_rng(seed)
    images = []
    image_id = first_image_id
    for cohort, prefix in (("clinical", "C"), ("simulated", "S")):
        for p in range(patients_per_cohort):
            # Spread patients over the NRS so that every level has cases in each cohort.
            centre = int(round(10 * p / max(patients_per_cohort - 1, 1)))
            for _ in range(images_per_patient):
                nrs = int(np.clip(centre + rng.integers(-1, 2), 0, 10))
                images.append(
                    {
                        "image_id": image_id,
                        "patient": f"{prefix}{p:03d}",
                        "cohort": cohort,
                        "nrs": nrs,
                        "level": level_of(nrs),
                    }
                )
                image_id += 1
    return images


def make_predictions(test_set: list[dict[str, Any]], *, skill: float = 1.5, seed: int = 0) -> list[dict[str, Any]]:
    """Softmax of noisy logits that favour the true level by `skill` (0 = chance)."""
    rng = np.random.default_rng(seed)
    predictions = []
    for image in test_set:
        logits = rng.normal(0.0, 1.0, len(LEVEL_NAMES))
        logits[image["level"]] += skill
        probabilities = np.exp(logits) / np.exp(logits).sum()
        predictions.append({**image, "probabilities": [float(p) for p in probabilities]})
    return predictions


def metrics_for(predictions: list[dict[str, Any]], *, n_bootstrap: int = 200) -> dict[str, Any]:
    """Per-cohort metrics, as the training task stores them in ModelVersion.metrics."""
    metrics = {}
    for cohort in ("clinical", "simulated", "combined"):
        chosen = [p for p in predictions if cohort == "combined" or p["cohort"] == cohort]
        metrics[cohort] = evaluate_predictions(
            [p["level"] for p in chosen],
            [p["nrs"] for p in chosen],
            [p["probabilities"] for p in chosen],
            [p["patient"] for p in chosen],
            LEVEL_NAMES,
            n_bootstrap=n_bootstrap,
            seed=0,
        )
    return metrics


def make_model_version(
    *,
    name: str,
    predictions: list[dict[str, Any]] | None = None,
    metrics: dict[str, Any] | None = None,
    skill: float = 1.5,
    seed: int = 0,
    cohorts: list[str] | None = None,
    stage: str = Stage.CANDIDATE,
    backbone: str = "vgg16-imagenet1k-v1",
    created_by: User | None = None,
    training_history: list[dict[str, Any]] | None = None,
    n_bootstrap: int = 200,
) -> ModelVersion:
    if predictions is None:
        predictions = make_predictions(make_test_set(), skill=skill, seed=seed)
    if metrics is None:
        metrics = metrics_for(predictions, n_bootstrap=n_bootstrap)
    cohorts = cohorts or ["clinical"]
    config = {"cohorts": cohorts, "mode": "head", "epochs": 3, "lr": 0.001, "batch_size": 32, "seed": seed}
    run = TrainingRun.objects.create(config=config, status=RunStatus.SUCCEEDED, progress=1.0, requested_by=created_by)
    digest = hashlib.sha256(name.encode()).hexdigest()
    version = ModelVersion.objects.create(
        name=name,
        training_run=run,
        stage=stage,
        cohorts=cohorts,
        mode="head",
        data_manifest={"images": [[p["image_id"] + 1000, 5] for p in predictions]},
        data_manifest_sha256=digest,
        split_sha256=hashlib.sha256(b"split").hexdigest(),
        label_rule="self_report_first",
        pain_levels=[{"name": name, "nrs": list(nrs)} for name, nrs in zip(LEVEL_NAMES, LEVEL_RANGES, strict=True)],
        hyperparameters={"epochs": 3, "lr": 0.001, "batch_size": 32, "weight_decay": 0.0001},
        seed=seed,
        code_version="0123abc",
        library_versions={"torch": "2.14.1", "torchvision": "0.29.1"},
        device="cpu",
        backbone=backbone,
        backbone_sha256="" if backbone == "random-init" else hashlib.sha256(b"vgg16").hexdigest(),
        weights_path=f"models/{name}.pt",
        weights_sha256=hashlib.sha256(name.encode() + json.dumps(predictions).encode()).hexdigest(),
        n_train_images=120,
        n_train_patients=30,
        metrics=metrics,
        test_predictions=predictions,
        training_history=training_history
        if training_history is not None
        else [
            {"epoch": e, "loss": 1.4 / e, "val_loss": 1.5 / e + 0.1, "val_macro_auroc": 0.6 + 0.05 * e}
            for e in range(1, 4)
        ],
        created_by=created_by,
    )
    record_evaluation(version, predictions, metrics, at_training=True)
    return version


def test_image_sha256(image_id: int) -> str:
    """A stand-in for the stored pixels' sha256 of a test image that exists only as a prediction."""
    return hashlib.sha256(f"image {image_id}".encode()).hexdigest()


def record_evaluation(
    version: ModelVersion,
    predictions: list[dict[str, Any]],
    metrics: dict[str, Any] | None = None,
    *,
    at_training: bool = False,
    n_bootstrap: int = 200,
) -> Evaluation:
    """A finished evaluation of `version` on the snapshot of the predictions' images, as the
    training runner (or an evaluation worker) writes it."""
    images = [{**p, "sha256": test_image_sha256(p["image_id"]), "file": "", "face_box": None} for p in predictions]
    snapshot = snapshot_of(
        images=images,
        label_rule=version.label_rule,
        pain_levels={"names": LEVEL_NAMES, "ranges": [list(span) for span in LEVEL_RANGES]},
        reason="publish" if at_training else "requested",
    )
    return Evaluation.objects.create(
        model_version=version,
        snapshot=snapshot,
        status=EvaluationStatus.SUCCEEDED,
        progress=1.0,
        at_training=at_training,
        predictions=predictions,
        metrics=metrics if metrics is not None else metrics_for(predictions, n_bootstrap=n_bootstrap),
        seed=version.seed,
        resamples=n_bootstrap,
    )
