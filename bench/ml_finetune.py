"""Fine-tune-mode training speed on the device torch picks (a CUDA GPU when present), on
synthetic 224 px faces, with the image loading processes the project chooses (auto) and with
none, side by side in one process; then, on the same device, the trained model's prediction
speed, one Grad-CAM explanation, and the frozen part's extraction throughput of the project's
path vs a plain float32 NCHW forward.

    python bench/ml_finetune.py --data DIR      # DIR holds manifest.csv (e.g. from write_dataset)
    python bench/ml_finetune.py --patients 300  # draws 300 patients' faces into a temp folder first

Images/s of an epoch counts its training images over the time from the end of the previous
epoch (its validation and its checkpoint, about 1.5 GB with the optimizer state, counted apart)
to the epoch's last batch; the first epoch pays
for the start (cuDNN's choices, loading processes) and is reported apart. Writes
bench/results/ml_finetune.json.
"""

from __future__ import annotations

import argparse
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
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.ml import IMAGE_SIZE, synchronize, throughput  # noqa: E402
from modeling.ml.config import TrainConfig  # noqa: E402
from modeling.ml.data import load_image, read_manifest  # noqa: E402
from modeling.ml.device import choose_device, configure_threads  # noqa: E402
from modeling.ml.gradcam import grad_cam  # noqa: E402
from modeling.ml.levels import PainLevels  # noqa: E402
from modeling.ml.metrics import evaluate_predictions  # noqa: E402
from modeling.ml.predict import load_model  # noqa: E402
from modeling.ml.splits import assign_splits, patient_max_levels  # noqa: E402
from modeling.ml.training import Progress, loader_workers, train  # noqa: E402
from painsite.synthetic_faces import write_dataset  # noqa: E402


def finetune_run(config: TrainConfig, train_records: list, val_records: list, work: Path) -> dict[str, Any]:
    """One fine-tune training, timed per epoch from its progress events."""
    events: list[tuple[float, Progress]] = []
    started = time.perf_counter()
    result = train(
        config,
        train_records,
        val_records,
        work_dir=work,
        cache_dir=None,
        progress=lambda event: events.append((time.perf_counter(), event)),
    )
    seconds = time.perf_counter() - started
    epoch_train_seconds, epoch_val_seconds = [], []
    epoch_start = started
    for epoch in range(1, len(result.history) + 1):
        batches = [moment for moment, event in events if event.epoch == epoch and not event.message]
        ends = [moment for moment, event in events if event.epoch == epoch and event.message.startswith("epoch ")]
        epoch_train_seconds.append(batches[-1] - epoch_start)
        epoch_val_seconds.append(ends[-1] - batches[-1])
        epoch_start = ends[-1]
    rates = [len(train_records) / value for value in epoch_train_seconds]
    steady = rates[1:] or rates
    return {
        "loader_workers_setting": config.loader_workers,
        "epochs_run": len(result.history),
        "seconds": seconds,
        "first_epoch_images_per_s": rates[0],
        "steady_images_per_s_median": statistics.median(steady),
        "steady_images_per_s_best": max(steady),
        "epoch_train_seconds": epoch_train_seconds,
        "epoch_validation_and_checkpoint_seconds": epoch_val_seconds,
        "val_images": len(val_records),
        "best_val_macro_auroc": result.best_val_macro_auroc,
        "device": result.device,
        "backbone": result.backbone,
        "weights_path": result.weights_path,
    }


def prediction_and_explanation(weights_path: str, records: list, device: str) -> dict[str, Any]:
    model = load_model(weights_path, device=device)
    model.predict_records(records[:64])  # warm-up: the fast inference copy, cuDNN's choices
    synchronize(model.choice.device)
    started = time.perf_counter()
    probabilities = model.predict_records(records, batch_size=64)
    synchronize(model.choice.device)
    predict_seconds = time.perf_counter() - started
    network = model.network
    batch = model.preset(load_image(records[0].path), records[0].face_box).unsqueeze(0)
    grad_cam(network.features, network.from_conv_output, batch)
    synchronize(model.choice.device)
    started = time.perf_counter()
    cam, level = grad_cam(network.features, network.from_conv_output, batch)
    synchronize(model.choice.device)
    metrics = evaluate_predictions(
        [r.level for r in records],
        [r.nrs for r in records],
        probabilities,
        [r.patient for r in records],
        model.level_names,
    )
    return {
        "test_images": len(records),
        "test_patients": metrics["n_patients"],
        "test_macro_auroc": metrics["macro_auroc"],
        "test_macro_auroc_ci": metrics["macro_auroc_ci"],
        "predict_images_per_s": len(records) / predict_seconds,
        "probabilities_sum_to_one": bool(np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)),
        "grad_cam_ms": (time.perf_counter() - started) * 1000,
        "grad_cam_shape": list(cam.shape),
        "grad_cam_finite": bool(np.isfinite(cam).all()),
        "grad_cam_level": level,
    }


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="folder with manifest.csv (path,patient,cohort,nrs)")
    parser.add_argument("--patients", type=int, default=300, help="patients to draw when --data has no manifest")
    parser.add_argument("--images-per-patient", type=int, default=7)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--patience", type=int, help="early-stopping patience (default: the epochs, so all run)")
    parser.add_argument("--workers", type=int, default=-1, help="loading processes of the first run (-1: auto)")
    parser.add_argument("--skip-no-workers", action="store_true", help="skip the run with no loading processes")
    parser.add_argument("--extraction-images", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ml_finetune.json")
    args = parser.parse_args()

    threads = configure_threads()
    scratch = Path(tempfile.mkdtemp(prefix="painsite-bench-finetune-"))
    data_dir = args.data or scratch / "faces"
    manifest = data_dir / "manifest.csv"
    if not manifest.exists():
        write_dataset(data_dir, args.patients, args.images_per_patient, seed=4, size=IMAGE_SIZE)
    records = read_manifest(manifest, data_dir=data_dir, levels=PainLevels.parse())
    splits = assign_splits(patient_max_levels(records), {}, seed=0)
    by_split = {name: [r for r in records if splits[r.patient] == name] for name in ("train", "val", "test")}
    choice = choose_device(args.device)
    report: dict[str, Any] = {
        "machine": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "torch_threads": threads,
            "device": choice.describe(),
        },
        "images": len(records),
        "train_images": len(by_split["train"]),
        "image_size": IMAGE_SIZE,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "lr": args.lr,
    }
    first = TrainConfig(mode="finetune", device=args.device, loader_workers=args.workers)
    settings = [args.workers] + ([] if args.skip_no_workers or loader_workers(first, choice) == 0 else [0])
    runs = []
    for workers in settings:
        config = TrainConfig(
            mode="finetune",
            epochs=args.epochs,
            batch_size=args.batch_size,
            image_size=IMAGE_SIZE,
            device=args.device,
            seed=0,
            patience=args.patience or args.epochs,
            lr=args.lr,
            loader_workers=workers,
        )
        run = finetune_run(config, by_split["train"], by_split["val"], scratch / f"run-{workers}")
        run["loader_workers"] = loader_workers(config, choice)
        runs.append(run)
        print(
            f"finetune ({run['device']}, {run['loader_workers']} loading processes): "
            f"{run['steady_images_per_s_median']:.0f} training images/s after the first epoch "
            f"(first epoch {run['first_epoch_images_per_s']:.0f}); {run['epochs_run']} epochs in {run['seconds']:.1f}s"
        )
    report["finetune"] = runs
    report["prediction"] = prediction_and_explanation(runs[0]["weights_path"], by_split["test"], args.device)
    found = report["prediction"]
    auroc, (low, high) = found["test_macro_auroc"], found["test_macro_auroc_ci"]
    auroc_text = "n/a" if auroc is None or low is None else f"{auroc:.3f} (95% CI {low:.3f}-{high:.3f})"
    print(
        f"test patients ({found['test_patients']}): macro AUROC {auroc_text}; "
        f"prediction {found['predict_images_per_s']:.0f} images/s; "
        f"Grad-CAM {found['grad_cam_ms']:.1f} ms"
    )
    report["extraction"] = throughput(records[: args.extraction_images], 64, args.rounds, device=args.device)
    report["extraction"].pop("target")  # bench/ml.py's 3x is a CPU target
    found = report["extraction"]
    print(
        f"extraction on {found['device']}: project {found['project_images_per_s']:.0f} images/s vs plain float32 "
        f"NCHW {found['plain_float32_nchw_images_per_s']:.0f} images/s = {found['speedup']:.2f}x"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    shutil.rmtree(scratch, ignore_errors=True)
    return report


if __name__ == "__main__":
    main()
