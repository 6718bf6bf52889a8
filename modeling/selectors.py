"""Reads of the modeling app: training data, runs and model versions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from annotation.models import Consent, Image, Patient
from annotation.selectors import OBSERVER_MEDIAN, SELF_REPORT_ONLY, current_labels_by_image, target_nrs
from modeling.models import ModelVersion, TrainingRun

# Model version fields too large for a list: the manifest, per-image predictions and full metrics.
HEAVY_VERSION_FIELDS = ("data_manifest", "test_predictions", "training_history", "metrics")


def labelled_images(*, label_rule: str) -> list[dict[str, Any]]:
    """Every image of a consenting patient with a training target under `label_rule`, as plain
    dicts (image id, sha256, storage name, face box, patient code, cohort, target NRS, and where
    the target came from: "self_report" or "observer_median"), by id."""
    images = Image.objects.filter(patient__consent=Consent.GRANTED)
    labels = current_labels_by_image(images)
    rows = images.order_by("pk").values_list("pk", "sha256", "file", "face_box", "patient__code", "patient__cohort")
    labelled = []
    for pk, sha256, file, face_box, patient, cohort in rows:
        target = target_nrs(labels.get(pk, []), label_rule)
        if target is None:
            continue
        from_self_report = label_rule != OBSERVER_MEDIAN and target_nrs(labels[pk], SELF_REPORT_ONLY) is not None
        labelled.append(
            {
                "image_id": pk,
                "sha256": sha256,
                "file": file,
                "face_box": face_box,
                "patient": patient,
                "cohort": cohort,
                "nrs": target,
                "target_source": "self_report" if from_self_report else "observer_median",
            }
        )
    return labelled


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
