"""Benchmark: what /results/compare/ costs, and what pairing two versions costs.

Run alone: ``python bench/results_compare.py`` prints the timings side by side and writes
bench/results/results_compare.json, naming the CPU.

1. Re-evaluation: a head-mode version scored again on a study-sized test set of 900 images
   (~130 patients) whose features are cached, as the evaluation worker does when the compare
   page asks to "evaluate both": load the model, read the cached features, run the head, compute
   the metrics of three cohorts with 2,000 patient-cluster resamples (modeling/evaluations.py's
   `predict` and `metrics_by_cohort`, the body of `run_evaluation`). The first, cold, evaluation
   computes the VGG16 features and fills the cache; it is shown beside the warm ones.
2. The paired comparison of two versions (compare_predictions, 2,000 paired resamples per cohort)
   computed vs read from the cache, on the same 900 images.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "painsite.settings")
# The benchmark measures the random-init backbone when no ImageNet file is present: do not wait
# for a download that cannot happen.
os.environ.setdefault("PAINSITE_OFFLINE", "1")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402

from modeling.comparisons import COMPARISON_RESAMPLES, paired_comparison  # noqa: E402
from modeling.evaluations import metrics_by_cohort, predict  # noqa: E402
from modeling.ml import backbone  # noqa: E402
from modeling.ml import features as features_module  # noqa: E402
from modeling.ml.config import TrainConfig  # noqa: E402
from modeling.ml.data import read_manifest  # noqa: E402
from modeling.ml.device import configure_threads  # noqa: E402
from modeling.ml.levels import PainLevels  # noqa: E402
from modeling.ml.predict import load_model  # noqa: E402
from modeling.ml.training import train  # noqa: E402
from painsite.synthetic_faces import write_dataset  # noqa: E402

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


def seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


TEST_IMAGES = 900
IMAGES_PER_PATIENT = 7
TRAIN_PATIENTS = 6  # a small head is enough: the cost measured is scoring, not training
# The re-evaluation's warm cost does not depend on the image size (the cached features are
# 4,096 numbers per image at any size); the cold pass does. --image-size 224 is the study's.
DEFAULT_IMAGE_SIZE = 224


def reevaluation(scratch: Path, image_size: int) -> dict[str, Any]:
    test_patients = -(-TEST_IMAGES // IMAGES_PER_PATIENT)
    manifest = write_dataset(
        scratch / "faces", TRAIN_PATIENTS * 2 + test_patients, IMAGES_PER_PATIENT, seed=4, size=image_size
    )
    records = read_manifest(manifest, data_dir=scratch / "faces", levels=PainLevels.parse())
    records = [dataclasses.replace(record, image_id=index) for index, record in enumerate(records, start=1)]
    patients = list(dict.fromkeys(record.patient for record in records))
    train_ids, val_ids = set(patients[:TRAIN_PATIENTS]), set(patients[TRAIN_PATIENTS : TRAIN_PATIENTS * 2])
    test = [record for record in records if record.patient not in train_ids | val_ids][:TEST_IMAGES]
    settings.PAINSITE_DATA_DIR = scratch / "data"  # the feature cache lives under it
    cache_dir = Path(settings.PAINSITE_DATA_DIR) / "feature-cache"
    result = train(
        TrainConfig(mode="head", epochs=5, image_size=image_size, seed=0),
        [record for record in records if record.patient in train_ids],
        [record for record in records if record.patient in val_ids],
        work_dir=scratch / "run",
        cache_dir=cache_dir,
    )

    def evaluate_once() -> tuple[float, int]:
        # As a fresh worker: no VGG16 kept in this process from before.
        backbone.forget_backbones()
        features_module.forget_inference_copies()
        built = backbone.vgg16_constructions
        started = time.perf_counter()
        model = load_model(result.weights_path, cache_dir=cache_dir)
        predictions = predict(model, test)
        metrics_by_cohort(predictions, model.levels, seed=0, n_bootstrap=2000)
        return time.perf_counter() - started, backbone.vgg16_constructions - built

    cold_seconds, cold_built = evaluate_once()
    warm = [evaluate_once() for _ in range(REPEATS)]
    warm_seconds = statistics.median(seconds for seconds, _ in warm)
    return {
        "benchmark": "re-evaluation of a head-mode version on the test set (load, score, metrics of 3 cohorts)",
        "test_images": len(test),
        "test_patients": len({record.patient for record in test}),
        "image_size": image_size,
        "resamples": 2000,
        "backbone": result.backbone,
        "cold_seconds": cold_seconds,
        "cold_vgg16_constructions": cold_built,
        "warm_seconds_median": warm_seconds,
        "warm_seconds": [seconds for seconds, _ in warm],
        "warm_vgg16_constructions": max(built for _, built in warm),
        "cold_over_warm": cold_seconds / warm_seconds,
        "target_seconds": 10.0,
        "target_met": warm_seconds < 10.0,
    }


def comparison() -> dict[str, Any]:
    a, b = make_test_predictions(1), make_test_predictions(2)
    computed, cached = [], []
    for _ in range(REPEATS):
        cache.clear()

        def compute() -> None:
            for cohort in ("clinical", "simulated", "combined"):
                chosen_a = {p["image_id"]: p for p in a if cohort == "combined" or p["cohort"] == cohort}
                chosen_b = {p["image_id"]: p for p in b if cohort == "combined" or p["cohort"] == cohort}
                cache.set(f"bench:{cohort}", paired_comparison(chosen_a, chosen_b, LEVEL_NAMES))

        computed.append(seconds(compute))
        cached.append(
            seconds(lambda: [cache.get(f"bench:{cohort}") for cohort in ("clinical", "simulated", "combined")])
        )
    return {
        "benchmark": "paired comparison of two evaluations for the compare page (3 cohorts), computed vs cached",
        "n_test_images": len(a),
        "cohort_sizes": {cohort: {"images": n, "patients": p} for cohort, (n, p) in COHORT_SIZES.items()},
        "resamples": COMPARISON_RESAMPLES,
        "computed_seconds_median": statistics.median(computed),
        "cached_seconds_median": statistics.median(cached),
        "computed_over_cached": statistics.median(computed) / statistics.median(cached),
        "cache_backend": settings.CACHES["default"]["BACKEND"],
    }


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--image-size",
        type=int,
        default=DEFAULT_IMAGE_SIZE,
        help=f"face crop size in pixels (default {DEFAULT_IMAGE_SIZE}); changes the cold pass only",
    )
    args = parser.parse_args()
    threads = configure_threads()
    load_at_start = list(os.getloadavg())
    scratch = Path(tempfile.mkdtemp(prefix="painsite-bench-compare-"))
    try:
        evaluation = reevaluation(scratch, args.image_size)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    paired = comparison()
    result = {
        "machine": {
            "cpu": cpu_model(),
            "nproc": os.cpu_count(),
            "torch_threads": threads,
            "python": platform.python_version(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": list(os.getloadavg()),
        },
        "repeats": REPEATS,
        "reevaluation": evaluation,
        "comparison": paired,
    }
    out = ROOT / "bench" / "results" / "results_compare.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"CPU: {result['machine']['cpu']} ({result['machine']['nproc']} cores, {threads} torch threads)")
    print(
        f"re-evaluation, {evaluation['test_images']} test images ({evaluation['test_patients']} patients), "
        f"head mode: cold {evaluation['cold_seconds']:.1f} s (features computed) vs warm "
        f"{evaluation['warm_seconds_median']:.2f} s (features cached) = {evaluation['cold_over_warm']:.0f}x; "
        f"target < {evaluation['target_seconds']:.0f} s: {'met' if evaluation['target_met'] else 'NOT met'}"
    )
    print(
        f"paired comparison, {paired['n_test_images']} images, 3 cohorts: computed "
        f"{paired['computed_seconds_median'] * 1000:.0f} ms vs cached {paired['cached_seconds_median'] * 1000:.2f} ms "
        f"({paired['computed_over_cached']:.0f}x) -> {out.relative_to(ROOT)}"
    )
    return result


if __name__ == "__main__":
    main()
