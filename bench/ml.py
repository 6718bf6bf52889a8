"""Benchmark of the ML core, measured side by side in one process on synthetic 224 px faces.

1. Feature extraction: the project's path (batched, threads set, channels_last + bf16 where the
   CPU has native bf16) vs a plain float32 NCHW torchvision VGG16 forward, on the same images.
2. Head-mode retrain: cold (empty feature cache, backbone built from scratch) vs warm (every
   feature cached). Before each, the process forgets its backbone, the backbone's fast copy and
   the fingerprints it knows, so warm pays what a fresh worker process would; the VGG16
   constructions each side needed are counted. Then the test patients' predictions, as a real
   run makes next (cold: computes their features; warm: all cached).
3. Incremental: after adding 100 images, how many feature vectors the next retrain computes.
4. The bootstrap benchmark from bench/ml_stats.py, when present.

    python bench/ml.py                      # the full 4,449 images (long on 2 cores)
    python bench/ml.py --images 350         # a quick run; the output says it was scaled down

Writes bench/results/ml.json and prints the ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
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

import torch  # noqa: E402
from torchvision.models import vgg16  # noqa: E402

from modeling.ml import backbone  # noqa: E402
from modeling.ml import features as features_module  # noqa: E402
from modeling.ml.backbone import load_backbone  # noqa: E402
from modeling.ml.config import TrainConfig  # noqa: E402
from modeling.ml.data import load_image, read_manifest  # noqa: E402
from modeling.ml.device import choose_device, configure_threads, cpu_supports_bf16  # noqa: E402
from modeling.ml.features import compute_vectors, inference_extractor  # noqa: E402
from modeling.ml.levels import PainLevels  # noqa: E402
from modeling.ml.network import FrozenFeatures  # noqa: E402
from modeling.ml.predict import load_model  # noqa: E402
from modeling.ml.splits import assign_splits, patient_max_levels  # noqa: E402
from modeling.ml.training import train  # noqa: E402
from modeling.ml.transforms import EvalPreset  # noqa: E402
from painsite.synthetic_faces import write_dataset  # noqa: E402

FULL_IMAGES = 4449
IMAGE_SIZE = 224
ADDED_IMAGES = 100


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def drop_in_process_backbone() -> None:
    backbone.forget_backbones()
    features_module.forget_inference_copies()


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(records: list, batch_size: int, rounds: int, device: str = "auto") -> dict[str, Any]:
    """images/s of the project's extraction vs plain float32 NCHW on the same device, alternating,
    best of `rounds`."""
    vgg, identity = load_backbone(init_seed=0)
    choice = choose_device(device)
    preset = EvalPreset(IMAGE_SIZE)
    images = torch.stack([preset(load_image(r.path), r.face_box) for r in records])
    project = inference_extractor(FrozenFeatures(vgg), identity, choice)
    plain_vgg = vgg16(weights=None).eval()
    plain_vgg.load_state_dict(vgg.state_dict())
    plain = FrozenFeatures(plain_vgg).eval().to(choice.device)

    def run_project() -> None:
        for start in range(0, len(images), batch_size):
            compute_vectors(project, images[start : start + batch_size], choice)
        synchronize(choice.device)

    @torch.inference_mode()
    def run_plain() -> None:
        for start in range(0, len(images), batch_size):
            plain(images[start : start + batch_size].to(choice.device)).cpu()
        synchronize(choice.device)

    run_project()
    run_plain()
    project_times, plain_times = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        run_project()
        project_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        run_plain()
        plain_times.append(time.perf_counter() - started)
    project_rate = len(images) / min(project_times)
    plain_rate = len(images) / min(plain_times)
    return {
        "images": len(images),
        "batch_size": batch_size,
        "rounds": rounds,
        "device": choice.describe(),
        "project_images_per_s": project_rate,
        "plain_float32_nchw_images_per_s": plain_rate,
        "speedup": project_rate / plain_rate,
        "target": 3.0,
    }


def retrain(records: list, splits: dict[str, str], work: Path, cache: Path, epochs: int) -> tuple[Any, float]:
    by_split = {name: [r for r in records if splits[r.patient] == name] for name in ("train", "val")}
    config = TrainConfig(mode="head", epochs=epochs, image_size=IMAGE_SIZE, seed=0)
    started = time.perf_counter()
    result = train(config, by_split["train"], by_split["val"], work_dir=work, cache_dir=cache)
    return result, time.perf_counter() - started


def predict_test(result: Any, test_records: list, cache: Path) -> float:
    """Seconds to load the model and predict the test patients, as the worker does after training."""
    started = time.perf_counter()
    load_model(result.weights_path, cache_dir=cache).predict_records(test_records, cache_dir=cache)
    return time.perf_counter() - started


def cold_and_warm(records: list, splits: dict[str, str], scratch: Path, cache: Path, epochs: int) -> dict[str, Any]:
    test_records = [r for r in records if splits[r.patient] == "test"]
    runs: dict[str, dict[str, Any]] = {}
    for name in ("cold", "warm"):
        drop_in_process_backbone()
        built = backbone.vgg16_constructions
        result, seconds = retrain(records, splits, scratch / name, cache, epochs)
        built_by_retrain = backbone.vgg16_constructions - built
        runs[name] = {
            "result": result,
            "seconds": seconds,
            "vgg16_constructions": built_by_retrain,
            "test_seconds": predict_test(result, test_records, cache),
            "test_vgg16_constructions": backbone.vgg16_constructions - built - built_by_retrain,
        }
    cold, warm = runs["cold"], runs["warm"]
    weights_equal = cold["result"].weights_sha256 == warm["result"].weights_sha256
    report = {
        "cold_seconds": cold["seconds"],
        "cold_feature_misses": cold["result"].cache_misses,
        "cold_vgg16_constructions": cold["vgg16_constructions"],
        "warm_seconds": warm["seconds"],
        "warm_feature_misses": warm["result"].cache_misses,
        "warm_vgg16_constructions": warm["vgg16_constructions"],
        "cold_epochs_run": len(cold["result"].history),
        "warm_epochs_run": len(warm["result"].history),
        "warm_weights_identical_to_cold": weights_equal,
        "speedup": cold["seconds"] / warm["seconds"],
        "target": 20.0,
        "test_images": len(test_records),
        "cold_test_prediction_seconds": cold["test_seconds"],
        "warm_test_prediction_seconds": warm["test_seconds"],
        "warm_test_prediction_vgg16_constructions": warm["test_vgg16_constructions"],
        "cold_with_test_seconds": cold["seconds"] + cold["test_seconds"],
        "warm_with_test_seconds": warm["seconds"] + warm["test_seconds"],
        "speedup_with_test_predictions": (cold["seconds"] + cold["test_seconds"])
        / (warm["seconds"] + warm["test_seconds"]),
        "backbone": cold["result"].backbone,
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=FULL_IMAGES, help=f"data set size (default {FULL_IMAGES})")
    parser.add_argument("--images-per-patient", type=int, default=7)
    parser.add_argument("--throughput-images", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--skip-bootstrap", action="store_true")
    parser.add_argument("--keep", type=Path, help="reuse/keep the generated images in this folder")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ml.json")
    args = parser.parse_args()

    load_at_start = load_average()
    threads = configure_threads()
    scratch = Path(tempfile.mkdtemp(prefix="painsite-bench-ml-"))
    data_dir = args.keep or scratch / "faces"
    n_patients = math.ceil((args.images + ADDED_IMAGES) / args.images_per_patient)
    started = time.perf_counter()
    manifest = data_dir / "manifest.csv"
    if not manifest.exists():
        manifest = write_dataset(data_dir, n_patients, args.images_per_patient, seed=4, size=IMAGE_SIZE)
    generate_seconds = time.perf_counter() - started
    all_records = read_manifest(manifest, data_dir=data_dir, levels=PainLevels.parse())
    # The last patients' images are held back and "added" afterwards.
    records, added = all_records[: args.images], all_records[args.images : args.images + ADDED_IMAGES]
    scaled = args.images != FULL_IMAGES
    report: dict[str, Any] = {
        "machine": {
            "nproc": os.cpu_count(),
            "torch_threads": threads,
            "cpu": cpu_model(),
            "bf16_native": cpu_supports_bf16(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
            "load_average_at_start": load_at_start,
        },
        "images": len(records),
        "images_per_patient": args.images_per_patient,
        "image_size": IMAGE_SIZE,
        "scaled_down": scaled,
        "generate_seconds": generate_seconds,
    }
    if scaled:
        print(f"NOTE: scaled-down run on {len(records)} images (the full benchmark uses {FULL_IMAGES})")

    splits = assign_splits(patient_max_levels(records), {}, seed=0)
    cache = scratch / "cache"
    retrain_report = cold_and_warm(records, splits, scratch, cache, args.epochs)
    retrain_report.update(
        peak_rss_gib_after_retrains=peak_rss_gib(), peak_memory_target_gib=3.0, load_average_after=load_average()
    )
    report["retrain"] = retrain_report
    print(
        f"retrain: cold {retrain_report['cold_seconds']:.1f}s ({retrain_report['cold_feature_misses']} features "
        f"computed) vs warm {retrain_report['warm_seconds']:.2f}s ({retrain_report['warm_feature_misses']} computed, "
        f"{retrain_report['warm_vgg16_constructions']} VGG16 built) = {retrain_report['speedup']:.1f}x; "
        f"with test predictions {retrain_report['speedup_with_test_predictions']:.1f}x; "
        f"peak RSS {retrain_report['peak_rss_gib_after_retrains']:.2f} GiB"
    )

    grown = records + added
    grown_splits = assign_splits(patient_max_levels(grown), splits, seed=0)
    after, after_seconds = retrain(grown, grown_splits, scratch / "grown", cache, args.epochs)
    test_added = [r for r in added if grown_splits[r.patient] == "test"]
    model = load_model(after.weights_path, cache_dir=cache)
    before_test = len(list(cache.rglob("*.npy")))
    assert before_test == len(records) + after.cache_misses
    model.predict_records([r for r in grown if grown_splits[r.patient] == "test"], cache_dir=cache)
    test_computed = len(list(cache.rglob("*.npy"))) - before_test
    report["incremental"] = {
        "added_images": len(added),
        "retrain_features_computed": after.cache_misses,
        "added_in_train_or_val": len(added) - len(test_added),
        "test_features_computed": test_computed,
        "total_computed": after.cache_misses + test_computed,
        "retrain_seconds": after_seconds,
    }
    print(
        f"incremental: {len(added)} images added -> {after.cache_misses} computed by the retrain "
        f"(train/val) + {test_computed} by the test predictions = {after.cache_misses + test_computed}"
    )

    report["extraction"] = throughput(records[: args.throughput_images], batch_size=32, rounds=args.rounds)
    extraction = report["extraction"]
    print(
        f"extraction: project {extraction['project_images_per_s']:.1f} img/s vs plain float32 NCHW "
        f"{extraction['plain_float32_nchw_images_per_s']:.1f} img/s = {extraction['speedup']:.2f}x "
        f"({extraction['device']}, bf16 native: {report['machine']['bf16_native']})"
    )

    if not args.skip_bootstrap:
        try:
            from bench.ml_stats import bootstrap_benchmark
        except ImportError:
            report["bootstrap"] = None
        else:
            stats = bootstrap_benchmark(n_images=args.images, images_per_patient=args.images_per_patient)
            report["bootstrap"] = stats
            print(
                f"bootstrap: {stats['speedup']:.0f}x vs naive scikit-learn loop, CI max difference {stats['ci_max_difference']:.4f}"
            )

    report["peak_rss_gib_whole_benchmark"] = peak_rss_gib()
    report["machine"]["load_average_at_end"] = load_average()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    if args.keep is None:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
