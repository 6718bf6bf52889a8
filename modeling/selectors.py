"""Reads of the modeling app: training data, runs and model versions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from annotation.models import Consent, Image, Patient
from annotation.selectors import targets_for_images
from modeling.models import ModelVersion, TrainingRun

# Model version fields too large for a list: the manifest, per-image predictions and full metrics.
HEAVY_VERSION_FIELDS = ("data_manifest", "test_predictions", "training_history", "metrics")


def labelled_images(*, label_rule: str) -> list[dict[str, Any]]:
    """Every image of a consenting patient with a training target under `label_rule`, as plain
    dicts (image id, sha256, storage name, face box, patient code, cohort, target NRS), by id."""
    images = Image.objects.filter(patient__consent=Consent.GRANTED)
    targets = targets_for_images(images, label_rule)
    rows = images.order_by("pk").values_list("pk", "sha256", "file", "face_box", "patient__code", "patient__cohort")
    return [
        {
            "image_id": pk,
            "sha256": sha256,
            "file": file,
            "face_box": face_box,
            "patient": patient,
            "cohort": cohort,
            "nrs": targets[pk],
        }
        for pk, sha256, file, face_box, patient, cohort in rows
        if pk in targets
    ]


def patient_ids(codes: Iterable[str]) -> QuerySet:
    return Patient.objects.filter(code__in=list(codes)).values_list("code", "pk")


def withdrawn_patient_codes(codes: Iterable[str]) -> set[str]:
    return set(Patient.objects.filter(code__in=list(codes), consent=Consent.WITHDRAWN).values_list("code", flat=True))


def training_runs() -> QuerySet[TrainingRun]:
    """Runs for lists: without data manifests, with who asked and the version each produced."""
    return (
        TrainingRun.objects.select_related("requested_by", "model_version")
        .defer("data_manifest", "history", *(f"model_version__{name}" for name in HEAVY_VERSION_FIELDS))
    )


def model_versions_light() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.defer(*HEAVY_VERSION_FIELDS).select_related("training_run", "created_by")


def version_of_run(run: TrainingRun) -> ModelVersion | None:
    return model_versions_light().filter(training_run=run).first()


def manifest_images_without_face(version: ModelVersion) -> tuple[int, int]:
    """(images of the version's data manifest with no detected face box, images in the manifest).

    Training and evaluation use the full image for those (docs/ml.md). Face boxes are detected
    once, on upload, so the stored rows tell what the run saw."""
    manifest = version.data_manifest if isinstance(version.data_manifest, dict) else {}
    image_ids = [_manifest_image_id(item) for item in manifest.get("images", [])]
    if not image_ids or None in image_ids:
        return 0, 0
    return Image.objects.filter(pk__in=image_ids, face_box__isnull=True).count(), len(image_ids)


def _manifest_image_id(item: object) -> int | None:
    # Runs write {"image_id": ..., ...}; a manifest of [image id, label] pairs is read too.
    if isinstance(item, dict):
        return item.get("image_id")
    if isinstance(item, (list, tuple)) and item:
        return item[0]
    return None
