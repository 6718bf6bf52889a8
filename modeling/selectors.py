"""Reads of the modeling app: training data, runs and model versions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count, Q, QuerySet

from annotation.models import Consent, Image, Patient
from annotation.selectors import current_labels_by_image
from modeling.label_rules import OBSERVER_MEDIAN, SELF_REPORT_ONLY, target_nrs
from modeling.models import Evaluation, EvaluationStatus, ModelVersion, Stage, TestSnapshot, TrainingRun

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
    return TrainingRun.objects.select_related("requested_by", "model_version").defer(
        "data_manifest", "history", *(f"model_version__{name}" for name in HEAVY_VERSION_FIELDS)
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


# ---------------------------------------------------------------------------------------------
# Test snapshots and evaluations


def snapshots_light() -> QuerySet[TestSnapshot]:
    return TestSnapshot.objects.defer("images")


def snapshots_with_counts() -> QuerySet[TestSnapshot]:
    return (
        snapshots_light()
        .annotate(n_evaluations=Count("evaluations", filter=Q(evaluations__status=EvaluationStatus.SUCCEEDED)))
        .order_by("-created_at", "-id")
    )


def evaluated_snapshots() -> QuerySet[TestSnapshot]:
    """Snapshots holding at least one finished evaluation, newest first."""
    return snapshots_light().filter(evaluations__status=EvaluationStatus.SUCCEEDED).distinct()


def default_results_snapshot() -> TestSnapshot | None:
    """The newest snapshot the production version was evaluated on, else the newest evaluated one."""
    production = evaluated_snapshots().filter(
        evaluations__model_version__stage=Stage.PRODUCTION, evaluations__status=EvaluationStatus.SUCCEEDED
    )
    return production.first() or evaluated_snapshots().first()


def finished_evaluations() -> QuerySet[Evaluation]:
    """Without per-image predictions (hundreds of kB each), with their snapshot's summary."""
    return (
        Evaluation.objects.filter(status=EvaluationStatus.SUCCEEDED)
        .select_related("snapshot")
        .defer("predictions", "snapshot__images")
    )


def shown_evaluations(version_ids: Iterable[int], snapshot: TestSnapshot | None) -> dict[int, Evaluation]:
    """Per version id, its evaluation on `snapshot`, else its newest finished one (any snapshot)."""
    chosen: dict[int, Evaluation] = {}
    for evaluation in (
        finished_evaluations()
        .filter(model_version_id__in=list(version_ids))
        .order_by("model_version_id", "-snapshot__created_at", "-snapshot_id")
    ):
        current = chosen.get(evaluation.model_version_id)
        if current is None or (snapshot is not None and evaluation.snapshot_id == snapshot.pk):
            chosen[evaluation.model_version_id] = evaluation
    return chosen


def shared_snapshot(a: ModelVersion, b: ModelVersion) -> TestSnapshot | None:
    """The newest snapshot both versions have a finished evaluation on."""
    done = EvaluationStatus.SUCCEEDED
    both = snapshots_light().filter(evaluations__model_version=a, evaluations__status=done)
    both = both.filter(pk__in=Evaluation.objects.filter(model_version=b, status=done).values("snapshot_id"))
    return both.order_by("-created_at", "-id").first()


def snapshot_shared_by(versions: Iterable[ModelVersion]) -> TestSnapshot | None:
    """The newest snapshot every one of `versions` has a finished evaluation on, if any."""
    shared = snapshots_light()
    for version in versions:
        evaluated = Evaluation.objects.filter(model_version=version, status=EvaluationStatus.SUCCEEDED)
        shared = shared.filter(pk__in=evaluated.values("snapshot_id"))
    return shared.order_by("-created_at", "-id").first()


def target_sources(version_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Per version id, where its training targets came from (without loading its manifest)."""
    rows = ModelVersion.objects.filter(pk__in=list(version_ids)).values_list("pk", "data_manifest__target_sources")
    return {pk: sources or {} for pk, sources in rows}
