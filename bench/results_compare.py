"""Benchmark: the paired comparison behind /results/compare/, computed in the request vs cached.

Run alone: ``python bench/results_compare.py`` prints the timings and their ratio and writes
bench/results/results_compare.json. Two model versions are scored on a study-sized locked test
set (20% of the study's 4,449 images: ~680 clinical images from ~100 patients and ~210 simulated
images from ~10 volunteers); the comparison runs the ML core's compare_predictions with 2,000
paired resamples per cohort. Cold and cached calls run side by side in one process.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "painsite.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.core.cache import cache  # noqa: E402

from modeling.ml.metrics import evaluate_predictions  # noqa: E402
from modeling.models import ModelVersion  # noqa: E402
from modeling.results import COHORTS, compare_versions  # noqa: E402

LEVEL_NAMES = ["none", "mild", "moderate", "severe"]
COHORT_SIZES = {"clinical": (682, 100), "simulated": (208, 10)}  # images, patients
REPEATS = 5


def make_test_predictions(seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    images: list[dict[str, Any]] = []
    for cohort, (n_images, n_patients) in COHORT_SIZES.items():
        patient = np.arange(n_images) % n_patients
        typical = rng.integers(0, 11, n_patients)[patient]
        nrs = np.clip(typical + rng.integers(-2, 3, n_images), 0, 10)
        levels = np.select([nrs == 0, nrs <= 3, nrs <= 6], [0, 1, 2], 3)
        for index in range(n_images):
            images.append(
                {
                    "image_id": len(images) + 1,
                    "patient": f"{cohort[0].upper()}{patient[index]:04d}",
                    "cohort": cohort,
                    "nrs": int(nrs[index]),
                    "level": int(levels[index]),
                }
            )
    model = np.random.default_rng(seed)
    for image in images:
        logits = model.normal(size=4)
        logits[image["level"]] += 1.0 + 0.3 * seed
        image["probabilities"] = [float(p) for p in np.exp(logits) / np.exp(logits).sum()]
    return images


def make_version(pk: int, predictions: list[dict[str, Any]]) -> ModelVersion:
    metrics = {}
    for cohort in COHORTS:
        chosen = [p for p in predictions if cohort == "combined" or p["cohort"] == cohort]
        metrics[cohort] = evaluate_predictions(
            [p["level"] for p in chosen],
            [p["nrs"] for p in chosen],
            [p["probabilities"] for p in chosen],
            [p["patient"] for p in chosen],
            LEVEL_NAMES,
        )
    # Unsaved rows: the comparison reads only these fields, so no database is needed.
    return ModelVersion(
        pk=pk, name=f"v{pk}", weights_sha256=f"{pk:064d}", metrics=metrics, test_predictions=predictions, pain_levels=LEVEL_NAMES
    )


def seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> dict[str, Any]:
    a, b = make_version(1, make_test_predictions(1)), make_version(2, make_test_predictions(2))
    cold, cached = [], []
    for _ in range(REPEATS):
        cache.clear()
        cold.append(seconds(lambda: [compare_versions(a, b, cohort) for cohort in COHORTS]))
        cached.append(seconds(lambda: [compare_versions(a, b, cohort) for cohort in COHORTS]))
    result = {
        "benchmark": "paired comparison of two model versions for the compare page (3 cohorts), computed vs cached",
        "n_test_images": len(a.test_predictions),
        "cohort_sizes": {cohort: {"images": n, "patients": p} for cohort, (n, p) in COHORT_SIZES.items()},
        "resamples": 2000,
        "repeats": REPEATS,
        "computed_seconds_median": statistics.median(cold),
        "cached_seconds_median": statistics.median(cached),
        "computed_over_cached": statistics.median(cold) / statistics.median(cached),
        "cache_backend": django.conf.settings.CACHES["default"]["BACKEND"],
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    out = ROOT / "bench" / "results" / "results_compare.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"compare page, {result['n_test_images']} test images, 3 cohorts: "
        f"computed {result['computed_seconds_median'] * 1000:.0f} ms, cached {result['cached_seconds_median'] * 1000:.2f} ms "
        f"({result['computed_over_cached']:.0f}x) -> {out.relative_to(ROOT)}"
    )
    return result


if __name__ == "__main__":
    main()
