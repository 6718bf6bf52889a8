"""Benchmark: does the int8 feature path change what a head-mode model ranks, beyond what any
perturbation of that size does?

`python bench/feature_path_parity.py [--patients 200] [--cache-dir DIR]` draws the held-out
synthetic benchmark of tests/ml (data seed 1, faces drawn at 128 px, 64 px crops, patient-level
splits), computes its features on the float32 and the int8-onnxruntime paths (through the feature
cache: `--cache-dir` keeps them between runs), trains a default head on each, and scores:

1. each head on each path's test features (a 2 x 2 table of macro AUROC), which separates what
   int8 does to training from what it does to the test images' features;
2. the float32 head on float32 test features plus noise of the int8 error's size, 8 times: the
   int8 error's elements shuffled within each image (same size, no structure) and Gaussian noise
   of the same RMS. The spread of those AUROCs is how far a perturbation of that size moves this
   benchmark;
3. the cosine of int8 to float32 features per test image.

It writes bench/results/feature_path_parity.json with the CPU and the backbone (random-init where
no ImageNet weights are installed: its features are weak, and a weak signal is easily moved).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import load_average, machine
from modeling.ml.feature_paths import FLOAT32, INT8_ONNXRUNTIME
from modeling.ml.features import FeatureCache
from modeling.ml.metrics import evaluate_predictions
from modeling.ml.predict import load_model
from modeling.ml.training import train
from tests.ml.conftest import make_config, make_synthetic_data

PATHS = (FLOAT32, INT8_ONNXRUNTIME)
NOISE_DRAWS = 8


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--cache-dir", type=Path, help="feature cache kept between runs (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "feature_path_parity.json")
    args = parser.parse_args()
    started_machine = machine()
    with tempfile.TemporaryDirectory(prefix="painsite-parity-") as scratch:
        work = Path(scratch)
        cache = args.cache_dir or work / "cache"
        data = make_synthetic_data(work / "faces", args.patients)
        test = data.split("test")
        levels = [record.level for record in test]
        nrs = [record.nrs for record in test]
        patients = [record.patient for record in test]
        models, features = {}, {}
        for path in PATHS:
            result = train(
                make_config(feature_path=path),
                data.split("train"),
                data.split("val"),
                work_dir=work / path,
                cache_dir=cache,
            )
            model = load_model(result.weights_path, cache_dir=cache)
            model.predict_records(test, cache_dir=cache)  # fills the cache with the test features
            stored = FeatureCache(
                cache,
                backbone_sha256=model.backbone.sha256,
                preprocessing=model.preset.version,
                precision=model.choice.cache_tag,
            )
            models[path] = model
            features[path] = np.stack([stored.get(record.sha256) for record in test]).astype(np.float32)

        def auroc(model, vectors: np.ndarray) -> float:
            probabilities = model._probabilities_from_vectors(vectors)
            metrics = evaluate_predictions(levels, nrs, probabilities, patients, model.level_names, n_bootstrap=20)
            return round(float(metrics["macro_auroc"]), 4)

        table = {head: {path: auroc(models[head], features[path]) for path in PATHS} for head in PATHS}
        exact, quantized = features[FLOAT32], features[INT8_ONNXRUNTIME]
        error = quantized - exact
        rms = float(np.sqrt((error**2).mean()))
        rng = np.random.default_rng(0)
        shuffled = [
            auroc(models[FLOAT32], np.maximum(exact + rng.permuted(error, axis=1), 0)) for _ in range(NOISE_DRAWS)
        ]
        gaussian = [
            auroc(models[FLOAT32], np.maximum(exact + rng.normal(0, rms, exact.shape).astype(np.float32), 0))
            for _ in range(NOISE_DRAWS)
        ]
        cosines = (exact * quantized).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(quantized, axis=1)
        backbone = models[FLOAT32].backbone.name

    gap = table[INT8_ONNXRUNTIME][INT8_ONNXRUNTIME] - table[FLOAT32][FLOAT32]
    result = {
        "benchmark": "feature_path_parity",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "patients": args.patients,
        "test_patients": len(set(patients)),
        "test_images": len(test),
        "backbone": backbone,
        "macro_auroc_head_by_test_features": table,
        "gap_int8_vs_float32": round(gap, 4),
        "int8_error_rms": round(rms, 5),
        "cosine_int8_to_float32": {
            "min": round(float(cosines.min()), 5),
            "median": round(float(np.median(cosines)), 5),
        },
        "float32_head_on_float32_plus_shuffled_int8_error": shuffled,
        "float32_head_on_float32_plus_gaussian_of_that_rms": gaussian,
        "perturbation_spread": round(max(shuffled + gaussian) - min(shuffled + gaussian), 4),
        "machine": {**started_machine, "load_average_at_end": load_average()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{started_machine['cpu_model']}; backbone {backbone}; {len(test)} test images of {len(set(patients))} patients"
    )
    print("macro AUROC (rows: head trained on; columns: test features of)")
    for head in PATHS:
        print(f"  {head:<18}" + "".join(f"{table[head][path]:>18.4f}" for path in PATHS))
    print(
        f"int8 - float32 (each on its own features): {gap:+.4f}; int8 error RMS {rms:.5f}, cosine min "
        f"{cosines.min():.4f}; float32 head with noise of that size: {min(shuffled + gaussian):.4f}"
        f"..{max(shuffled + gaussian):.4f}"
    )
    return result


if __name__ == "__main__":
    main()
