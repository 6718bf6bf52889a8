"""Benchmark: vectorised patient-cluster bootstrap vs a naive loop calling scikit-learn per resample.

Run alone: ``python bench/ml_stats.py`` prints the speed-up and writes bench/results/ml_stats.json.
Both sides run in one process on the same synthetic predictions, side by side.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from modeling.ml import bootstrap, metrics  # noqa: E402

LEVEL_NAMES = ["none", "mild", "moderate", "severe"]
NAIVE_TIMED_RESAMPLES = 100
TARGET_SPEEDUP = 50.0
TARGET_CI_DIFFERENCE = 0.005


def make_predictions(n_images: int, images_per_patient: int, seed: int) -> dict[str, np.ndarray]:
    """Synthetic test predictions: patients in more or less pain, a model that is right more often than not."""
    rng = np.random.default_rng(seed)
    patient_of_image = np.arange(n_images) // images_per_patient
    n_patients = int(patient_of_image.max()) + 1
    typical_nrs = rng.integers(0, 11, n_patients)[patient_of_image]
    nrs = np.clip(typical_nrs + rng.integers(-2, 3, n_images), 0, 10)
    levels = np.select([nrs == 0, nrs <= 3, nrs <= 6], [0, 1, 2], 3)
    logits = rng.normal(size=(n_images, 4)) + rng.normal(scale=0.5, size=(n_patients, 4))[patient_of_image]
    logits[np.arange(n_images), levels] += 1.2
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return {
        "levels": levels,
        "nrs": nrs,
        "probabilities": probabilities,
        "patients": np.array([f"P{index:04d}" for index in patient_of_image]),
    }


def naive_auroc(levels: np.ndarray, probabilities: np.ndarray, images: np.ndarray) -> list[float]:
    """One resample the straightforward way: index the drawn images, one roc_auc_score per level."""
    values = []
    for level in range(probabilities.shape[1]):
        truth = levels[images] == level
        values.append(roc_auc_score(truth, probabilities[images, level]) if 0 < truth.sum() < truth.size else np.nan)
    return values


def percentile_intervals(values: np.ndarray) -> np.ndarray:
    """(n_levels, 2) percentile intervals of (n_resamples, n_levels) resampled AUROCs."""
    return np.array([bootstrap.percentile_interval(column)[0].as_list() for column in values.T])


def bootstrap_benchmark(
    n_images: int = 4449, images_per_patient: int = 7, resamples: int = 2000, seed: int = 0
) -> dict[str, Any]:
    data = make_predictions(n_images, images_per_patient, seed)
    levels, probabilities, patients = data["levels"], data["probabilities"], data["patients"]
    n_levels = probabilities.shape[1]

    def vectorised() -> tuple[bootstrap.ClusterResamples, np.ndarray]:
        drawn = bootstrap.ClusterResamples.draw(patients, n_resamples=resamples, seed=seed)
        values = np.column_stack(
            [bootstrap.auroc(drawn, levels == level, probabilities[:, level]) for level in range(n_levels)]
        )
        return drawn, values

    def naive_on_same_draws(drawn: bootstrap.ClusterResamples, n_resamples: int) -> list[list[float]]:
        values = []
        for resample in range(n_resamples):
            weights = drawn.counts[:, resample].astype(np.int64)[drawn.patient_of_image]
            values.append(naive_auroc(levels, probabilities, np.repeat(np.arange(n_images), weights)))
        return values

    # Alternate the two, three times, and keep each one's median: the machine may be shared, and
    # alternating exposes both to the same load. The naive loop runs on the first resamples of
    # the same patient draws; its time is scaled to all of them.
    vectorised()  # warm caches and imports before timing
    timed = min(NAIVE_TIMED_RESAMPLES, resamples)
    vectorised_runs, naive_runs = [], []
    for _ in range(3):
        started = time.perf_counter()
        drawn, vectorised_values = vectorised()
        vectorised_runs.append(time.perf_counter() - started)
        started = time.perf_counter()
        naive_same_draws = naive_on_same_draws(drawn, timed)
        naive_runs.append(time.perf_counter() - started)
    vectorised_seconds = float(np.median(vectorised_runs))
    naive_timed_seconds = float(np.median(naive_runs))
    naive_scaled_seconds = naive_timed_seconds * resamples / timed
    same_draw_difference = float(np.nanmax(np.abs(np.array(naive_same_draws) - vectorised_values[:timed])))

    # The naive bootstrap in full with its own random draws: its intervals must agree with the
    # vectorised ones up to Monte Carlo error, which checks the method, not just the arithmetic.
    rng = np.random.default_rng(seed + 1)
    _, patient_of_image = np.unique(patients, return_inverse=True)
    images_of_patient = [np.flatnonzero(patient_of_image == patient) for patient in range(patient_of_image.max() + 1)]
    started = time.perf_counter()
    naive_values = []
    for _ in range(resamples):
        drawn_patients = rng.integers(0, len(images_of_patient), len(images_of_patient))
        naive_values.append(
            naive_auroc(levels, probabilities, np.concatenate([images_of_patient[p] for p in drawn_patients]))
        )
    naive_full_seconds = time.perf_counter() - started
    vectorised_intervals = percentile_intervals(vectorised_values)
    naive_intervals = percentile_intervals(np.array(naive_values))
    ci_difference = float(np.max(np.abs(vectorised_intervals - naive_intervals)))

    started = time.perf_counter()
    metrics.evaluate_predictions(
        levels, data["nrs"], probabilities, patients, LEVEL_NAMES, n_bootstrap=resamples, seed=seed
    )
    evaluate_seconds = time.perf_counter() - started

    speedup = naive_scaled_seconds / vectorised_seconds
    return {
        "benchmark": "patient-cluster bootstrap AUROC, vectorised vs naive scikit-learn loop",
        "n_images": n_images,
        "n_patients": len(images_of_patient),
        "levels": n_levels,
        "resamples": resamples,
        "seed": seed,
        "vectorised_seconds": vectorised_seconds,
        "naive_timed_resamples": timed,
        "naive_timed_seconds": naive_timed_seconds,
        "naive_scaled_seconds": naive_scaled_seconds,
        "naive_full_run_seconds": naive_full_seconds,
        "speedup": speedup,
        "speedup_target": TARGET_SPEEDUP,
        "speedup_met": bool(speedup >= TARGET_SPEEDUP),
        "same_draws_max_auroc_difference": same_draw_difference,
        "ci_max_difference": ci_difference,
        "ci_difference_target": TARGET_CI_DIFFERENCE,
        "ci_difference_met": bool(ci_difference <= TARGET_CI_DIFFERENCE),
        "vectorised_ci": {name: vectorised_intervals[level].tolist() for level, name in enumerate(LEVEL_NAMES)},
        "naive_ci": {name: naive_intervals[level].tolist() for level, name in enumerate(LEVEL_NAMES)},
        "evaluate_predictions_seconds": evaluate_seconds,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "processor": platform.machine(),
        },
    }


def main() -> None:
    result = bootstrap_benchmark()
    output = ROOT / "bench" / "results" / "ml_stats.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"bootstrap: {result['resamples']} resamples x {result['levels']} levels on {result['n_images']} images "
        f"({result['n_patients']} patients)\n"
        f"  vectorised {result['vectorised_seconds']:.3f} s, naive {result['naive_scaled_seconds']:.1f} s "
        f"(scaled from {result['naive_timed_resamples']}; full naive run took {result['naive_full_run_seconds']:.1f} s)\n"
        f"  speed-up {result['speedup']:.0f}x (target >= {TARGET_SPEEDUP:.0f}x), "
        f"max CI difference {result['ci_max_difference']:.4f} (target <= {TARGET_CI_DIFFERENCE}), "
        f"same-draw AUROC difference {result['same_draws_max_auroc_difference']:.1e}\n"
        f"  full evaluate_predictions with {result['resamples']} resamples: {result['evaluate_predictions_seconds']:.2f} s\n"
        f"  written to {output.relative_to(ROOT)}"
    )


if __name__ == "__main__":
    main()
