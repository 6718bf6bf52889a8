"""Evaluation metrics for one cohort's test predictions, and the paired comparison of two models.

Point metrics come from scikit-learn; confidence intervals from the patient-cluster bootstrap
(``bootstrap.py``); the paired p-value from DeLong's test with Obuchowski's patient-clustered
variance (``delong.py``). An interval or p-value the test set cannot support is withheld with the
reason (``estimability.py``); the point value stays. Every returned value is
plain JSON: ints, floats, lists, None; never NaN and never a NumPy scalar. The schema is
documented field by field in docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from . import bootstrap, estimability
from .levels import whole_nrs

DEFAULT_LEVEL_NAMES = ("none", "mild", "moderate", "severe")
DEFAULT_LEVEL_RANGES = ((0, 0), (1, 3), (4, 6), (7, 10))
BINARY_THRESHOLDS = {"nrs_ge_4": 4, "nrs_ge_7": 7}
ROC_MAX_POINTS = 101
CALIBRATION_BINS = 10
# Stored probabilities may be rounded; a larger gap means the columns are not probabilities.
PROBABILITY_SUM_TOLERANCE = 1e-3


def evaluate_predictions(
    levels_true: Sequence[int],
    nrs: Sequence[int],
    probabilities: Sequence[Sequence[float]],
    patients: Sequence[object],
    level_names: Sequence[str],
    n_bootstrap: int = bootstrap.N_RESAMPLES,
    seed: int = 0,
    *,
    level_ranges: Sequence[tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """All metrics of one cohort. ``level_ranges`` gives each level's NRS range (low, high),
    needed for the NRS >= 4 and >= 7 AUROCs; it defaults to none 0, mild 1-3, moderate 4-6,
    severe 7-10 when the level names are those four."""
    y, probs, patients = _validated(levels_true, probabilities, patients, level_names)
    n_levels = len(level_names)
    if len(y) == 0:
        return {"n_images": 0, "n_patients": 0, "unavailable": "no test images in this cohort"}
    nrs_values = _whole_nrs(nrs, len(y))
    predicted = probs.argmax(axis=1)
    resamples = bootstrap.ClusterResamples.draw(patients, n_resamples=n_bootstrap, seed=seed)
    dropped: dict[str, dict[str, int]] = {"auroc": {}, "f1": {}}
    cohort_problem = estimability.cohort_problem(resamples.n_patients)
    level_problems: dict[str, str | None] = {}

    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=list(range(n_levels)), zero_division=0
    )
    f1_resamples = bootstrap.f1_per_level(resamples, y, predicted, n_levels)
    levels: dict[str, Any] = {}
    aurocs: dict[int, float] = {}
    auroc_resamples: dict[int, np.ndarray] = {}
    for level, name in enumerate(level_names):
        is_level = y == level
        problem = level_problems[name] = cohort_problem or estimability.class_problem(
            is_level, resamples.patient_of_image
        )
        auroc = _auroc_with_interval(is_level, probs[:, level], resamples, problem)
        if auroc["auroc"] is not None:
            dropped["auroc"][name] = auroc["dropped"]
            aurocs[level] = auroc["auroc"]
            auroc_resamples[level] = auroc["resamples"]
        f1_interval, dropped["f1"][name] = bootstrap.percentile_interval(f1_resamples[:, level])
        f1_ci, f1_problem = estimability.reported(
            f1_interval,
            dropped["f1"][name],
            resamples.n_resamples,
            problem if support[level] else "no true case of this level in the test set",
        )
        levels[name] = {
            "auroc": auroc["auroc"],
            "ci": auroc["ci"],
            "auroc_unavailable": auroc["unavailable"],
            "ci_not_estimable": auroc["ci_not_estimable"],
            "precision": float(precision[level]),
            "recall": float(recall[level]),
            "f1": float(f1[level]),
            "f1_ci": f1_ci,
            "f1_ci_not_estimable": f1_problem,
            "support": int(support[level]),
            "roc": _roc_points(is_level, probs[:, level]) if auroc["auroc"] is not None else {"fpr": [], "tpr": []},
        }

    macro_auroc, macro_auroc_ci = None, None
    macro_auroc_problem: str | None = "no level has an AUROC"
    if aurocs:
        macro_auroc = float(np.mean(list(aurocs.values())))
        macro_values = np.mean(np.vstack(list(auroc_resamples.values())), axis=0)
        interval, dropped["auroc"]["macro"] = bootstrap.percentile_interval(macro_values)
        macro_auroc_ci, macro_auroc_problem = estimability.reported(
            interval,
            dropped["auroc"]["macro"],
            resamples.n_resamples,
            cohort_problem
            or estimability.combined_problem((level_names[k], level_problems[level_names[k]]) for k in aurocs),
        )
    macro_f1_interval, dropped["f1"]["macro"] = bootstrap.percentile_interval(
        bootstrap.macro_f1(resamples, y, predicted, n_levels)
    )
    macro_f1_ci, macro_f1_problem = estimability.reported(
        macro_f1_interval,
        dropped["f1"]["macro"],
        resamples.n_resamples,
        cohort_problem
        or estimability.combined_problem(
            (name, level_problems[name]) for level, name in enumerate(level_names) if support[level]
        ),
    )

    binary: dict[str, Any] = {}
    ranges, ranges_problem = _level_ranges(level_names, level_ranges, y, nrs_values)
    for key, threshold in BINARY_THRESHOLDS.items():
        problem = ranges_problem or _threshold_problem(ranges, level_names, threshold)
        if problem:
            binary[key] = {"auroc": None, "ci": None, "unavailable": problem, "ci_not_estimable": problem}
            continue
        at_or_above = [level for level, (low, _) in enumerate(ranges) if low >= threshold]
        positive = nrs_values >= threshold
        result = _auroc_with_interval(
            positive,
            probs[:, at_or_above].sum(axis=1),
            resamples,
            cohort_problem or estimability.class_problem(positive, resamples.patient_of_image),
        )
        if result["auroc"] is not None:
            dropped["auroc"][key] = result["dropped"]
        binary[key] = {
            "auroc": result["auroc"],
            "ci": result["ci"],
            "unavailable": result["unavailable"],
            "ci_not_estimable": result["ci_not_estimable"],
        }

    return {
        "n_images": int(len(y)),
        "n_patients": int(resamples.n_patients),
        "ci_not_estimable": cohort_problem,
        "level_names": list(level_names),
        "levels": levels,
        "macro_auroc": macro_auroc,
        "macro_auroc_ci": macro_auroc_ci,
        "macro_auroc_ci_not_estimable": macro_auroc_problem,
        "macro_auroc_levels": [level_names[level] for level in aurocs],
        "macro_f1": float(f1_score(y, predicted, average="macro", zero_division=0)),
        "macro_f1_ci": macro_f1_ci,
        "macro_f1_ci_not_estimable": macro_f1_problem,
        "macro_f1_levels": [
            name for level, name in enumerate(level_names) if support[level] or np.any(predicted == level)
        ],
        "kappa_quadratic": _quadratic_kappa(y, predicted, n_levels),
        "mae_level": float(mean_absolute_error(y, predicted)),
        "binary": binary,
        "confusion_matrix": confusion_matrix(y, predicted, labels=list(range(n_levels))).tolist(),
        "calibration": calibration(y, probs),
        "bootstrap": _bootstrap_description(resamples, dropped),
    }


def calibration(levels_true: np.ndarray, probabilities: np.ndarray, n_bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Top-label expected calibration error over equal-width confidence bins, and the multi-class Brier score.

    ECE = sum over bins of (images in bin / images) * |accuracy in bin - mean confidence in bin|,
    where confidence is the highest level probability and a bin holds confidences in
    (lower, upper] (the first bin also holds 0). Brier = mean over images of the sum over levels
    of (probability - [level is the true one])^2, from 0 (perfect) to 2.
    """
    levels_true = np.asarray(levels_true)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == levels_true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bin_of_image = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    bins: list[dict[str, Any]] = []
    ece = 0.0
    for index in range(n_bins):
        in_bin = bin_of_image == index
        count = int(in_bin.sum())
        mean_confidence = float(confidence[in_bin].mean()) if count else None
        accuracy = float(correct[in_bin].mean()) if count else None
        if count:
            ece += count / len(confidence) * abs(accuracy - mean_confidence)
        bins.append(
            {
                "lower": float(edges[index]),
                "upper": float(edges[index + 1]),
                "confidence": mean_confidence,
                "accuracy": accuracy,
                "count": count,
            }
        )
    one_hot = np.eye(probabilities.shape[1])[levels_true]
    brier = float(np.mean(np.sum((probabilities - one_hot) ** 2, axis=1)))
    return {"ece": float(ece), "brier": brier, "bins": bins}


def downsample_roc(fpr: np.ndarray, tpr: np.ndarray, max_points: int = ROC_MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points of the curve, evenly spaced along it, first and last kept.

    Along a ROC curve fpr + tpr rises from 0 to 2, so points picked at equal steps of it are
    spread evenly in both dense and sparse stretches; the drawn curve stays within 2 / (max_points
    - 1) of the full one.
    """
    if len(fpr) <= max_points:
        return fpr, tpr
    travelled = fpr + tpr
    targets = np.linspace(travelled[0], travelled[-1], max_points)
    chosen = np.unique(np.clip(np.searchsorted(travelled, targets, side="left"), 0, len(fpr) - 1))
    return fpr[chosen], tpr[chosen]


def _validated(
    levels_true: Sequence[int],
    probabilities: Sequence[Sequence[float]],
    patients: Sequence[object],
    level_names: Sequence[str],
) -> tuple[np.ndarray, np.ndarray, list[object]]:
    n_levels = len(level_names)
    if n_levels < 2:
        raise ValueError(f"need at least 2 pain levels, got {list(level_names)}")
    y = np.asarray(levels_true, dtype=np.int64).reshape(-1)
    probs = np.asarray(probabilities, dtype=np.float64)
    if len(y) == 0:
        probs = probs.reshape(0, n_levels)
    patients = list(patients)
    if probs.ndim != 2 or probs.shape != (len(y), n_levels):
        raise ValueError(
            f"probabilities must have one row per image and one column per level {list(level_names)}: "
            f"expected shape {(len(y), n_levels)}, got {probs.shape}"
        )
    if len(patients) != len(y):
        raise ValueError(f"{len(patients)} patients given for {len(y)} images")
    if len(y) and (y.min() < 0 or y.max() >= n_levels):
        raise ValueError(f"true levels must be between 0 and {n_levels - 1}, got {sorted(set(y.tolist()))}")
    if not np.all(np.isfinite(probs)) or np.any(probs < 0):
        raise ValueError("probabilities must be finite and non-negative")
    if len(y) and np.max(np.abs(probs.sum(axis=1) - 1)) > PROBABILITY_SUM_TOLERANCE:
        raise ValueError("each image's probabilities must sum to 1")
    return y, probs, patients


def _auroc_problem(y_binary: np.ndarray) -> str | None:
    if not y_binary.any():
        return "no positive cases in the test set"
    if y_binary.all():
        return "no negative cases in the test set"
    return None


def _auroc_with_interval(
    y_binary: np.ndarray, scores: np.ndarray, resamples: bootstrap.ClusterResamples, ci_problem: str | None
) -> dict[str, Any]:
    problem = _auroc_problem(y_binary)
    if problem:
        return {
            "auroc": None,
            "ci": None,
            "unavailable": problem,
            "ci_not_estimable": problem,
            "dropped": None,
            "resamples": None,
        }
    values = bootstrap.auroc(resamples, y_binary, scores)
    interval, dropped = bootstrap.percentile_interval(values)
    ci, ci_problem = estimability.reported(interval, dropped, resamples.n_resamples, ci_problem)
    return {
        "auroc": float(roc_auc_score(y_binary, scores)),
        "ci": ci,
        "unavailable": None,
        "ci_not_estimable": ci_problem,
        "dropped": dropped,
        "resamples": values,
    }


def _roc_points(y_binary: np.ndarray, scores: np.ndarray) -> dict[str, list[float]]:
    fpr, tpr, _ = roc_curve(y_binary, scores)
    fpr, tpr = downsample_roc(fpr, tpr)
    return {"fpr": [float(value) for value in fpr], "tpr": [float(value) for value in tpr]}


def _quadratic_kappa(y: np.ndarray, predicted: np.ndarray, n_levels: int) -> float | None:
    # Kappa is undefined (0/0) when truth and prediction are one and the same single level.
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = cohen_kappa_score(y, predicted, labels=list(range(n_levels)), weights="quadratic")
    return float(kappa) if np.isfinite(kappa) else None


def _level_ranges(
    level_names: Sequence[str],
    level_ranges: Sequence[tuple[int, int]] | None,
    y: np.ndarray,
    nrs: np.ndarray,
) -> tuple[list[tuple[int, int]], str | None]:
    if level_ranges is None:
        if tuple(level_names) != DEFAULT_LEVEL_NAMES:
            return [], "the NRS range of each level was not given"
        ranges = [tuple(map(int, bounds)) for bounds in DEFAULT_LEVEL_RANGES]
    else:
        ranges = [(int(low), int(high)) for low, high in level_ranges]
        if len(ranges) != len(level_names):
            raise ValueError(f"{len(ranges)} NRS ranges given for {len(level_names)} levels")
    lows = np.array([low for low, _ in ranges])[y]
    highs = np.array([high for _, high in ranges])[y]
    outside = int(np.sum((nrs < lows) | (nrs > highs)))
    if outside:
        # Reported rather than raised: a finished training run should keep its other metrics.
        assumed = "" if level_ranges is not None else " (assumed none 0, mild 1-3, moderate 4-6, severe 7-10)"
        return [], f"the NRS scores of {outside} images fall outside their level's NRS range{assumed}"
    return ranges, None


def _whole_nrs(nrs: Sequence[float], n_images: int) -> np.ndarray:
    # A median of observer scores can be fractional; like the level mapping, halves round up.
    values = np.asarray(nrs, dtype=np.float64).reshape(-1)
    if values.size != n_images:
        raise ValueError(f"nrs has {values.size} values for {n_images} images")
    if not np.all(np.isfinite(values)) or np.any((values < 0) | (values > 10)):
        raise ValueError("NRS scores must be between 0 and 10")
    return np.array([whole_nrs(value) for value in values.tolist()], dtype=np.int64)


def _threshold_problem(ranges: list[tuple[int, int]], level_names: Sequence[str], threshold: int) -> str | None:
    for name, (low, high) in zip(level_names, ranges):
        if low < threshold <= high:
            return f"NRS {threshold} splits level '{name}' ({low}-{high}), so no level probabilities add up to NRS >= {threshold}"
    return None


def _bootstrap_description(resamples: bootstrap.ClusterResamples, dropped: dict[str, Any]) -> dict[str, Any]:
    return {
        "resamples": int(resamples.n_resamples),
        "seed": int(resamples.seed),
        "method": bootstrap.METHOD,
        "confidence": bootstrap.CONFIDENCE,
        "dropped": dropped,
    }
