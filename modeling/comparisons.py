"""The paired comparison of two model versions, behind /results/compare/ and its API.

Two versions are paired on the newest test snapshot both were evaluated on: the same images,
with the same reference levels, so ΔAUROC gets a paired patient-cluster bootstrap interval and a
DeLong p-value from the ML core's `compare_predictions`. Without a shared snapshot the answer
says so (`paired: false`, with the reason) and shows each version's own numbers, naming their
snapshots. The computation is cached: a finished evaluation never changes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.core.cache import cache

from modeling import selectors, snapshots
from modeling.ml.comparison import compare_predictions
from modeling.models import Evaluation, ModelVersion, TestSnapshot
from modeling.results import (
    COHORT_LABELS,
    cohort_metrics,
    configured_level_names,
    is_available,
    level_metrics,
    pain_level_names,
)

COMPARISON_RESAMPLES = 2000
COMPARISON_SEED = 0
# Bump when the comparison's output changes shape, so cached entries from before are not reused.
COMPARISON_CACHE_VERSION = 2
COMPARISON_CACHE_SECONDS = 7 * 24 * 3600


def _side(version: ModelVersion, evaluation: Evaluation | None, metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": version.pk,
        "name": version.name,
        "stage": version.stage,
        "backbone": version.backbone,
        "evaluation": evaluation.pk if evaluation else None,
        "snapshot": evaluation.snapshot_id if evaluation else None,
        "n_images": metrics.get("n_images", 0),
        "n_patients": metrics.get("n_patients", 0),
        "unavailable": None if is_available(metrics) else metrics.get("unavailable", "not evaluated"),
    }


def _not_shared_reason(
    a: ModelVersion, b: ModelVersion, evaluation_a: Evaluation | None, evaluation_b: Evaluation | None
) -> str:
    def where(side: str, version: ModelVersion, evaluation: Evaluation | None) -> str:
        if evaluation is None:
            return f"{side} ({version.name}) has no finished evaluation"
        snapshot = evaluation.snapshot
        return f"{side} ({version.name}) on test snapshot {snapshot.pk} ({snapshot.n_images} images)"

    return (
        "The two versions were not evaluated on the same test images: no test snapshot holds a "
        f"finished evaluation of both ({where('A', a, evaluation_a)}; {where('B', b, evaluation_b)}). "
        "A paired test needs identical test sets, so no ΔAUROC confidence interval or DeLong "
        "p-value is shown; the per-version intervals below are not a comparison. Evaluate both on "
        "the current test set to pair them."
    )


def compare_versions(a: ModelVersion, b: ModelVersion, cohort: str) -> dict[str, Any]:
    """The numbers the comparison page and API show for one cohort. JSON-ready."""
    snapshot = selectors.shared_snapshot(a, b)
    shown = selectors.shown_evaluations({a.pk, b.pk}, snapshot)
    evaluation_a, evaluation_b = shown.get(a.pk), shown.get(b.pk)
    metrics_a, metrics_b = cohort_metrics(evaluation_a, cohort), cohort_metrics(evaluation_b, cohort)
    level_names = list(metrics_a.get("level_names") or pain_level_names(a) or configured_level_names())
    if snapshot is None:
        problem, paired = _not_shared_reason(a, b, evaluation_a, evaluation_b), None
    else:
        problem, paired = paired_test(evaluation_a, evaluation_b, cohort, level_names)
    levels = {}
    for name in level_names:
        entry_a, entry_b = level_metrics(metrics_a, name), level_metrics(metrics_b, name)
        pair = paired["levels"][name] if paired else {}
        levels[name] = {
            "auroc_a": entry_a.get("auroc"),
            "ci_a": entry_a.get("ci"),
            "ci_a_not_estimable": entry_a.get("ci_not_estimable"),
            "auroc_b": entry_b.get("auroc"),
            "ci_b": entry_b.get("ci"),
            "ci_b_not_estimable": entry_b.get("ci_not_estimable"),
            "delta_auroc": pair.get("delta_auroc"),
            "delta_ci": pair.get("delta_ci"),
            "delta_ci_not_estimable": pair.get("ci_not_estimable"),
            "delong_p": pair.get("delong_p"),
            "p_value": pair.get("delong_p"),
            "p_not_estimable": pair.get("p_not_estimable"),
            # A level without a case in the test set has no F1 (its stored 0 means nothing).
            "f1_a": entry_a.get("f1") if entry_a.get("support") else None,
            "f1_b": entry_b.get("f1") if entry_b.get("support") else None,
            "delta_f1": pair.get("delta_f1") if entry_a.get("support") else None,
            "unavailable": pair.get("unavailable")
            or entry_a.get("auroc_unavailable")
            or entry_b.get("auroc_unavailable"),
        }
    macro = paired["macro"] if paired else {}
    return {
        "cohort": cohort,
        "cohort_label": COHORT_LABELS[cohort],
        "paired": problem is None,
        "snapshot": snapshots.summary(snapshot) if snapshot is not None else None,
        "reason": problem,
        "a": _side(a, evaluation_a, metrics_a),
        "b": _side(b, evaluation_b, metrics_b),
        "level_names": level_names,
        "same_test_images": problem is None,
        "statement": problem,
        "n_images": paired["n_images"] if paired else None,
        "n_patients": paired["n_patients"] if paired else None,
        "ci_not_estimable": paired.get("ci_not_estimable") if paired else None,
        "p_value_method": paired.get("p_value_method") if paired else None,
        "levels": levels,
        "macro": {
            "auroc_a": metrics_a.get("macro_auroc"),
            "ci_a": metrics_a.get("macro_auroc_ci"),
            "ci_a_not_estimable": metrics_a.get("macro_auroc_ci_not_estimable"),
            "auroc_b": metrics_b.get("macro_auroc"),
            "ci_b": metrics_b.get("macro_auroc_ci"),
            "ci_b_not_estimable": metrics_b.get("macro_auroc_ci_not_estimable"),
            "delta_auroc": macro.get("delta_auroc"),
            "delta_ci": macro.get("delta_ci"),
            "delta_ci_not_estimable": macro.get("ci_not_estimable"),
            "n_levels": len(macro.get("levels") or []) if paired else None,
            "f1_a": metrics_a.get("macro_f1"),
            "f1_b": metrics_b.get("macro_f1"),
            "delta_f1": (metrics_b["macro_f1"] - metrics_a["macro_f1"])
            if paired and metrics_a.get("macro_f1") is not None and metrics_b.get("macro_f1") is not None
            else None,
        },
        "bootstrap": paired["bootstrap"] if paired else None,
    }


def paired_test(
    evaluation_a: Evaluation, evaluation_b: Evaluation, cohort: str, level_names: list[str]
) -> tuple[str | None, dict[str, Any] | None]:
    """(why no paired test is possible, or None; compare_predictions' result, or None) for two
    evaluations on one snapshot. Cached by evaluation: a finished one never changes."""
    key = f"painsite:compare:v{COMPARISON_CACHE_VERSION}:{cohort}:{evaluation_a.pk}:{evaluation_b.pk}"
    found = cache.get(key)
    if found is None:
        predictions_a, predictions_b = (
            _predictions_by_image(evaluation_a, cohort),
            _predictions_by_image(evaluation_b, cohort),
        )
        names_b = cohort_metrics(evaluation_b, cohort).get("level_names") or level_names
        problem = _pairing_problem(predictions_a, predictions_b, level_names, list(names_b), evaluation_a.snapshot)
        paired = None if problem else paired_comparison(predictions_a, predictions_b, level_names)
        found = (problem, paired)
        cache.set(key, found, COMPARISON_CACHE_SECONDS)
    return found


def _predictions_by_image(evaluation: Evaluation, cohort: str) -> dict[int, dict[str, Any]]:
    predictions = Evaluation.objects.values_list("predictions", flat=True).get(pk=evaluation.pk)
    return {p["image_id"]: p for p in predictions if cohort == "combined" or p.get("cohort") == cohort}


def _pairing_problem(
    a: dict[int, dict], b: dict[int, dict], names_a: list, names_b: list, snapshot: TestSnapshot
) -> str | None:
    if not a and not b:
        return f"Test snapshot {snapshot.pk} holds no images of this cohort, so there is nothing to pair."
    if not a or not b:
        return "At least one of the two evaluations has no predictions for this cohort."
    if names_a != names_b:
        return "The two versions use different pain levels, so their predictions cannot be paired."
    if set(a) != set(b):  # one snapshot holds one set of images: this would be a damaged row
        return "The two evaluations on this snapshot did not score the same images, so no paired test is shown."
    return None


def paired_comparison(
    predictions_a: dict[int, dict[str, Any]], predictions_b: dict[int, dict[str, Any]], level_names: list[str]
) -> dict[str, Any]:
    """compare_predictions on both evaluations' predictions, aligned by image id."""
    image_ids = sorted(predictions_a)
    return compare_predictions(
        np.asarray([predictions_a[i]["level"] for i in image_ids]),
        np.asarray([predictions_a[i]["probabilities"] for i in image_ids], dtype=float),
        np.asarray([predictions_b[i]["probabilities"] for i in image_ids], dtype=float),
        np.asarray([predictions_a[i]["patient"] for i in image_ids]),
        level_names,
        n_bootstrap=COMPARISON_RESAMPLES,
        seed=COMPARISON_SEED,
    )
