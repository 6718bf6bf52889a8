"""Paired comparison of two models on the same test images: per-level ΔAUROC with the paired
patient-cluster bootstrap interval and the patient-clustered DeLong p-value (Obuchowski 1997);
schema in docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    f1_score,
    roc_auc_score,
)

from modeling.ml.metrics import _auroc_problem, _bootstrap_description, _validated

from . import bootstrap, delong, estimability


def compare_predictions(
    levels_true: Sequence[int],
    probabilities_a: Sequence[Sequence[float]],
    probabilities_b: Sequence[Sequence[float]],
    patients: Sequence[object],
    level_names: Sequence[str],
    n_bootstrap: int = bootstrap.N_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Model b against model a on the same images in the same order: differences are b - a."""
    y, probs_a, patients = _validated(levels_true, probabilities_a, patients, level_names)
    _, probs_b, _ = _validated(levels_true, probabilities_b, patients, level_names)
    if len(y) == 0:
        return {"n_images": 0, "n_patients": 0, "unavailable": "no test images in this cohort"}
    n_levels = len(level_names)
    predicted_a, predicted_b = probs_a.argmax(axis=1), probs_b.argmax(axis=1)
    f1_a = f1_score(y, predicted_a, labels=list(range(n_levels)), average=None, zero_division=0)
    f1_b = f1_score(y, predicted_b, labels=list(range(n_levels)), average=None, zero_division=0)
    resamples = bootstrap.ClusterResamples.draw(patients, n_resamples=n_bootstrap, seed=seed)
    dropped: dict[str, int] = {}
    cohort_problem = estimability.cohort_problem(resamples.n_patients)
    level_problems: list[tuple[str, str | None]] = []

    levels: dict[str, Any] = {}
    deltas: list[np.ndarray] = []
    aurocs_a: list[float] = []
    aurocs_b: list[float] = []
    for level, name in enumerate(level_names):
        is_level = y == level
        entry: dict[str, Any] = {
            "auroc_a": None,
            "auroc_b": None,
            "delta_auroc": None,
            "delta_ci": None,
            "delong_p": None,
            "f1_a": float(f1_a[level]),
            "f1_b": float(f1_b[level]),
            "delta_f1": float(f1_b[level] - f1_a[level]),
            "unavailable": _auroc_problem(is_level),
            "ci_not_estimable": None,
            "p_not_estimable": None,
        }
        levels[name] = entry
        if entry["unavailable"]:
            entry["ci_not_estimable"] = entry["p_not_estimable"] = entry["unavailable"]
            continue
        problem = cohort_problem or estimability.class_problem(is_level, resamples.patient_of_image)
        level_problems.append((name, problem))
        auroc_a = float(roc_auc_score(is_level, probs_a[:, level]))
        auroc_b = float(roc_auc_score(is_level, probs_b[:, level]))
        delta_resamples = bootstrap.auroc(resamples, is_level, probs_b[:, level]) - bootstrap.auroc(
            resamples, is_level, probs_a[:, level]
        )
        interval, dropped[name] = bootstrap.percentile_interval(delta_resamples)
        delta_ci, entry["ci_not_estimable"] = estimability.reported(
            interval, dropped[name], resamples.n_resamples, problem
        )
        entry.update(auroc_a=auroc_a, auroc_b=auroc_b, delta_auroc=auroc_b - auroc_a, delta_ci=delta_ci)
        entry["delong_p"], entry["p_not_estimable"] = _clustered_p_value(
            is_level, probs_a[:, level], probs_b[:, level], patients, problem
        )
        aurocs_a.append(auroc_a)
        aurocs_b.append(auroc_b)
        deltas.append(delta_resamples)

    macro: dict[str, Any] = {
        "auroc_a": None,
        "auroc_b": None,
        "delta_auroc": None,
        "delta_ci": None,
        "ci_not_estimable": "no level has an AUROC",
        "levels": [n for n, _ in level_problems],
    }
    if deltas:
        interval, dropped["macro"] = bootstrap.percentile_interval(np.mean(np.vstack(deltas), axis=0))
        macro_a, macro_b = float(np.mean(aurocs_a)), float(np.mean(aurocs_b))
        delta_ci, macro["ci_not_estimable"] = estimability.reported(
            interval,
            dropped["macro"],
            resamples.n_resamples,
            cohort_problem or estimability.combined_problem(level_problems),
        )
        macro.update(auroc_a=macro_a, auroc_b=macro_b, delta_auroc=macro_b - macro_a, delta_ci=delta_ci)

    return {
        "n_images": int(len(y)),
        "n_patients": int(resamples.n_patients),
        "ci_not_estimable": cohort_problem,
        "p_value_method": delong.CLUSTERED_METHOD,
        "level_names": list(level_names),
        "levels": levels,
        "macro": macro,
        "bootstrap": _bootstrap_description(resamples, {"delta_auroc": dropped}),
    }


def _clustered_p_value(
    y_binary: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, patients: list[object], problem: str | None
) -> tuple[float | None, str | None]:
    """Obuchowski's patient-clustered DeLong p-value, or None and why it is withheld."""
    if problem:
        return None, problem
    test = delong.paired_test(y_binary, scores_a, scores_b, np.asarray([str(p) for p in patients]))
    if test.z is None and test.p_value != 1.0:
        # A difference with no variance across patients is not evidence of anything.
        return None, "the difference has no variance across patients, so no test statistic"
    return test.p_value, None
