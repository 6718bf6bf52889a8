"""Model versions for registry tests: real rows as the runner writes them, without training."""

from __future__ import annotations

from django.contrib.auth.models import User

from modeling.models import ModelVersion, RunStatus, TrainingRun


def make_model_version(name: str, *, stage: str = "candidate", requested_by: User | None = None) -> ModelVersion:
    # Finished runs: the one-active-run-per-queue rule does not apply to them.
    run = TrainingRun.objects.create(status=RunStatus.SUCCEEDED, progress=1.0, requested_by=requested_by)
    return ModelVersion.objects.create(
        name=name,
        training_run=run,
        stage=stage,
        cohorts=["clinical"],
        mode="head",
        data_manifest_sha256="0" * 64,
        split_sha256="1" * 64,
        label_rule="self_report_first",
        seed=0,
        device="cpu",
        backbone="random-init",
        weights_path=f"/nonexistent/{name}.pt",
        weights_sha256="2" * 64,
        metrics={"clinical": {"n_images": 0, "n_patients": 0, "unavailable": "no clinical test images"}},
        test_predictions=[
            {
                "image_id": 1,
                "patient": "C-1",
                "cohort": "clinical",
                "nrs": 3,
                "level": 1,
                "probabilities": [0.1, 0.6, 0.2, 0.1],
            }
        ],
    )
