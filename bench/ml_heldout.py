"""Held-out accuracy of head-mode training on synthetic faces, over data seeds and patient splits.

Per data seed, the largest requested set of synthetic patients is drawn once (at 128 px, faces
found by the Haar cascade, as tests/ml does); a smaller set is its first patients (the generator
keeps earlier patients exactly as they were when more are asked for). For every set size, image
size and split seed: patient split (`assign_splits`), `train()` in head mode, `load_model()` +
`predict_records()` on the test patients, and `modeling.ml.metrics.evaluate_predictions`
(macro AUROC with its patient-cluster bootstrap 95% CI). Beside it, the ceiling: a logistic
regression on the action units the generator drew, same train + validation and test patients.

    python bench/ml_heldout.py                              # the table in docs/ml.md
    python bench/ml_heldout.py --patients 300 --precision float32   # as on a CPU without bf16
    python bench/ml_heldout.py --patients 200 --data-seeds 1 --feature-path int8-onnxruntime  # int8 features

Writes bench/results/ml_heldout.json (or --out) and prints one line per configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is first on sys.path, and bench/queue.py would shadow the standard
# library's queue module that torch imports.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from annotation.faces import detect_face  # noqa: E402
from modeling.ml.config import FEATURE_PATHS, TrainConfig  # noqa: E402
from modeling.ml.data import Record, load_image, read_manifest  # noqa: E402
from modeling.ml.device import choose_device, configure_threads, cpu_supports_bf16  # noqa: E402
from modeling.ml.levels import PainLevels  # noqa: E402
from modeling.ml.metrics import evaluate_predictions  # noqa: E402
from modeling.ml.predict import load_model  # noqa: E402
from modeling.ml.splits import assign_splits, patient_max_levels  # noqa: E402
from modeling.ml.training import macro_auroc, train  # noqa: E402
from painsite.synthetic_faces import plan_patients, sample_expression, write_dataset  # noqa: E402

DRAWN_SIZE = 128


@dataclasses.dataclass
class Study:
    records: list[Record]
    action_units: dict[str, list[float]]  # by image path
    draw_seconds: float
    detect_seconds: float


def draw_study(folder: Path, n_patients: int, images_per_patient: int, seed: int) -> Study:
    started = time.perf_counter()
    manifest = write_dataset(folder, n_patients, images_per_patient, seed, size=DRAWN_SIZE)
    drawn = time.perf_counter()
    records = [
        dataclasses.replace(record, face_box=detect_face(load_image(record.path)))
        for record in read_manifest(manifest, data_dir=folder, levels=PainLevels.parse())
    ]
    detected = time.perf_counter()
    action_units = {}
    for patient in plan_patients(n_patients, images_per_patient, seed):
        for index in range(images_per_patient):
            # The expression is drawn first from the image's own stream, as in `PlannedPatient.render`.
            expression = sample_expression(patient.identity, patient.nrs[index], patient.image_rng(index))
            path = folder / f"{patient.cohort}/{patient.code}/{patient.code}-{index + 1:03d}.jpg"
            action_units[str(path)] = list(dataclasses.astuple(expression))
    return Study(records, action_units, drawn - started, detected - drawn)


def action_unit_ceiling(study: Study, fitted_on: list[Record], test: list[Record]) -> float | None:
    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000))
    model.fit([study.action_units[r.path] for r in fitted_on], [r.level for r in fitted_on])
    probabilities = np.zeros((len(test), len(PainLevels.parse())))
    probabilities[:, model.classes_] = model.predict_proba([study.action_units[r.path] for r in test])
    return macro_auroc(np.array([r.level for r in test]), probabilities)


def held_out_run(
    records: list[Record],
    split_seed: int,
    image_size: int,
    precision: str,
    cache: Path,
    work: Path,
    feature_path: str = "auto",
) -> dict[str, Any]:
    splits = assign_splits(patient_max_levels(records), {}, seed=split_seed)
    part = {name: [r for r in records if splits[r.patient] == name] for name in ("train", "val", "test")}
    config = TrainConfig(image_size=image_size, seed=0, precision=precision, feature_path=feature_path)
    started = time.perf_counter()
    result = train(config, part["train"], part["val"], work_dir=work, cache_dir=cache)
    model = load_model(result.weights_path, cache_dir=cache, precision=precision)
    probabilities = model.predict_records(part["test"], cache_dir=cache)
    seconds = time.perf_counter() - started
    test = part["test"]
    metrics = evaluate_predictions(
        [r.level for r in test], [r.nrs for r in test], probabilities, [r.patient for r in test], model.level_names
    )
    return {
        "split_seed": split_seed,
        "macro_auroc": metrics["macro_auroc"],
        "macro_auroc_ci": metrics["macro_auroc_ci"],
        "per_level_auroc": {name: level["auroc"] for name, level in metrics["levels"].items()},
        "test_patients": metrics["n_patients"],
        "test_images": metrics["n_images"],
        "best_epoch": result.best_epoch,
        "features_computed": result.cache_misses,
        "seconds": seconds,
        "backbone": result.backbone,
        "device": result.device,
        "feature_path": result.feature_path,
        "parts": part,
    }


def summary(runs: list[dict[str, Any]], key: str = "macro_auroc") -> dict[str, float]:
    values = [run[key] for run in runs if run[key] is not None]
    return {"min": min(values), "max": max(values), "mean": float(np.mean(values))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, nargs="+", default=[40, 200, 300])
    parser.add_argument("--images-per-patient", type=int, default=6)
    parser.add_argument("--image-sizes", type=int, nargs="+", default=[64])
    parser.add_argument("--data-seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--split-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16"))
    parser.add_argument("--feature-path", default="auto", choices=FEATURE_PATHS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ml_heldout.json")
    args = parser.parse_args()

    threads = configure_threads()
    # Every run would repeat the random-init warning; the backbone is in each run's record.
    logging.getLogger("modeling.ml.network").setLevel(logging.ERROR)
    scratch = Path(tempfile.mkdtemp(prefix="painsite-bench-ml-heldout-"))
    cache = scratch / "cache"
    report: dict[str, Any] = {
        "machine": {
            "nproc": os.cpu_count(),
            "torch_threads": threads,
            "bf16_native": cpu_supports_bf16(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        },
        "images_per_patient": args.images_per_patient,
        "drawn_size": DRAWN_SIZE,
        "precision": choose_device("auto", args.precision).precision,
        "data_seeds": [],
    }
    configurations: dict[tuple[int, int], list[dict[str, Any]]] = {}
    ceilings: dict[int, list[float]] = {}
    try:
        for data_seed in args.data_seeds:
            study = draw_study(scratch / f"faces-{data_seed}", max(args.patients), args.images_per_patient, data_seed)
            seed_report: dict[str, Any] = {
                "data_seed": data_seed,
                "draw_seconds": study.draw_seconds,
                "detect_seconds": study.detect_seconds,
                "images": len(study.records),
                "faces_found": sum(r.face_box is not None for r in study.records),
                "runs": [],
            }
            for n_patients in args.patients:
                codes = {p.code for p in plan_patients(n_patients, args.images_per_patient, data_seed)}
                records = [r for r in study.records if r.patient in codes]
                for image_size in args.image_sizes:
                    runs = []
                    for split_seed in args.split_seeds:
                        run = held_out_run(
                            records,
                            split_seed,
                            image_size,
                            args.precision,
                            cache,
                            scratch / f"run-{data_seed}-{n_patients}-{image_size}-{split_seed}",
                            args.feature_path,
                        )
                        part = run.pop("parts")
                        run["action_unit_ceiling"] = action_unit_ceiling(
                            study, part["train"] + part["val"], part["test"]
                        )
                        run.update(data_seed=data_seed, patients=n_patients, image_size=image_size)
                        runs.append(run)
                        if image_size == args.image_sizes[0]:
                            ceilings.setdefault(n_patients, []).append(run["action_unit_ceiling"])
                    configurations.setdefault((n_patients, image_size), []).extend(runs)
                    seed_report["runs"].extend(runs)
                    print(
                        f"data seed {data_seed}, {n_patients} patients, {image_size} px: macro AUROC "
                        + ", ".join(
                            f"{r['macro_auroc']:.3f} [{r['macro_auroc_ci'][0]:.3f}, {r['macro_auroc_ci'][1]:.3f}]"
                            for r in runs
                        )
                        + f" (action-unit ceiling {min(r['action_unit_ceiling'] for r in runs):.2f}-"
                        f"{max(r['action_unit_ceiling'] for r in runs):.2f})",
                        flush=True,
                    )
            report["data_seeds"].append(seed_report)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report["summary"] = [
        {
            "patients": n_patients,
            "image_size": image_size,
            "runs": len(runs),
            "test_patients": summary(runs, "test_patients"),
            "macro_auroc": summary(runs),
            "ci_lower": summary([{"lower": run["macro_auroc_ci"][0]} for run in runs], "lower"),
            "action_unit_ceiling": summary([{"c": c} for c in ceilings[n_patients]], "c"),
            "backbone": runs[0]["backbone"],
            "feature_path": runs[0]["feature_path"],
        }
        for (n_patients, image_size), runs in configurations.items()
    ]
    report["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    for row in report["summary"]:
        print(
            f"{row['patients']} patients, {row['image_size']} px: macro AUROC {row['macro_auroc']['min']:.3f}-"
            f"{row['macro_auroc']['max']:.3f}, CI lower bound >= {row['ci_lower']['min']:.3f} ({row['runs']} runs, "
            f"{row['backbone']} backbone, {report['precision']})"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
