"""Active learning on synthetic patients: how many labels each labeling-queue order needs.

One synthetic study (painsite/synthetic_faces: the expression follows the NRS) is drawn once; a
share of its patients is the locked test set, the rest is the pool the clinicians would label.
Per seed, the same first 10% of the pool (in arrival order) is labeled, then labels are added in
rounds of a fixed size, each strategy choosing which unlabeled pool images come next:

- arrival: the queue's default, oldest first (patients arrive in a seeded order, each patient's
  images together);
- entropy / margin: the current model's least confident images first (modeling/ml/uncertainty.py,
  the same functions the labeling queue's predictions use);
- level-balanced: round-robin over the current model's predicted levels, arrival order within one.

Images in which no face is found get no prediction and come after the predicted ones, as in the
queue. After each round the head is retrained from the previous round's weights (warm start, head
mode on cached frozen features: PainHead and the ML core's `train_one_epoch`), and scored on the
test patients (macro AUROC, one-vs-rest over the levels). The reference is a cold head trained on
the whole pool; the figure of merit is the labels each strategy needs before its mean curve
reaches 95% of the reference's AUROC.

    python bench/active_learning.py                      # the figures in docs/benchmarks.md
    python bench/active_learning.py --patients 120 --seeds 0 1   # a quick look

Writes bench/results/active_learning.json and docs/active_learning.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is first on sys.path; keep it from shadowing standard modules.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("PAINSITE_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from annotation.faces import detect_face  # noqa: E402
from bench.machine import load_average, machine  # noqa: E402
from modeling.ml.backbone import open_backbone  # noqa: E402
from modeling.ml.config import TrainConfig  # noqa: E402
from modeling.ml.data import Record, load_image, read_manifest  # noqa: E402
from modeling.ml.device import configure_threads, intra_op_threads  # noqa: E402
from modeling.ml.engine import macro_auroc, train_one_epoch  # noqa: E402
from modeling.ml.feature_paths import choose_feature_path  # noqa: E402
from modeling.ml.features import FeatureCache, extract_features  # noqa: E402
from modeling.ml.levels import PainLevels  # noqa: E402
from modeling.ml.network import PainHead  # noqa: E402
from modeling.ml.progress import Reporter  # noqa: E402
from modeling.ml.splits import patient_max_levels, split_patients  # noqa: E402
from modeling.ml.training import head_trainee, warm_feature_cache  # noqa: E402
from modeling.ml.transforms import EvalPreset  # noqa: E402
from modeling.ml.uncertainty import ENTROPY, MARGIN, level_balanced_order, most_uncertain_first  # noqa: E402
from painsite.synthetic_faces import write_dataset  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "active_learning.json"
PLOT = ROOT / "docs" / "active_learning.png"
STRATEGIES = ("arrival", ENTROPY, MARGIN, "level-balanced")
SHARE_OF_REFERENCE = 0.95


@dataclasses.dataclass
class Study:
    pool: list[Record]
    test: list[Record]
    pool_features: np.ndarray
    test_features: np.ndarray
    seconds: dict[str, float]
    backbone: str
    feature_path: str


def draw_study(folder: Path, args: argparse.Namespace) -> Study:
    started = time.perf_counter()
    manifest = write_dataset(folder, args.patients, args.images_per_patient, args.data_seed, size=args.drawn_size)
    drawn = time.perf_counter()
    levels = PainLevels.parse()
    records = [
        dataclasses.replace(record, face_box=detect_face(load_image(record.path)))
        for record in read_manifest(manifest, data_dir=folder, levels=levels)
    ]
    detected = time.perf_counter()
    test_share = args.test_patients / args.patients
    splits = split_patients(
        patient_max_levels(records),
        seed=args.data_seed,
        fractions={"train": 1 - test_share, "val": 0.0, "test": test_share},
    )
    config = TrainConfig(image_size=args.image_size, seed=0)
    cache_dir = folder / "features"
    warm_feature_cache(config, records, cache_dir=cache_dir)
    choice = choose_feature_path(config.device, config.precision, config.feature_path, state_dir=cache_dir)
    identity = open_backbone(init_seed=config.seed, fingerprint_dir=cache_dir).identity
    preset = EvalPreset(config.image_size)
    cache = FeatureCache(
        cache_dir, backbone_sha256=identity.sha256, preprocessing=preset.version, precision=choice.cache_tag
    )

    def vectors(part: list[Record]) -> np.ndarray:
        found = extract_features(part, extractor=lambda: None, choice=choice, preset=preset, cache=cache)
        assert found.misses == 0, "every vector was cached just before"
        return found.vectors

    pool = [record for record in records if splits[record.patient] != "test"]
    test = [record for record in records if splits[record.patient] == "test"]
    study = Study(
        pool=pool,
        test=test,
        pool_features=vectors(pool),
        test_features=vectors(test),
        seconds={"draw": drawn - started, "detect_faces": detected - drawn, "features": time.perf_counter() - detected},
        backbone=identity.name,
        feature_path=choice.path,
    )
    return study


def arrival_order(pool: list[Record], seed: int) -> np.ndarray:
    """Patients arrive in a seeded order; each patient's images arrive together, in order."""
    patients = sorted({record.patient for record in pool})
    rng = np.random.default_rng(seed)
    place = {patient: index for index, patient in enumerate(rng.permutation(patients))}
    return np.array(sorted(range(len(pool)), key=lambda row: (place[pool[row].patient], row)), dtype=int)


def fit_head(
    features: np.ndarray, levels: np.ndarray, *, epochs: int, seed: int, warm: dict[str, torch.Tensor] | None
) -> PainHead:
    config = TrainConfig(seed=seed, epochs=epochs)
    n_levels = len(config.pain_levels)
    inputs = torch.from_numpy(np.asarray(features, dtype=np.float32))
    targets = torch.from_numpy(levels.astype(np.int64))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = PainHead(n_levels, hidden=config.head_hidden, dropout=config.dropout)
        if warm is not None:
            head.load_state_dict(warm)
        head.set_standardisation(inputs)
        trainee = head_trainee(config, head, inputs, targets)
        reporter = Reporter(None, None, epochs)
        # One thread, as training's head mode: the batches are tiny (modeling/ml/training.py).
        with intra_op_threads(1):
            for epoch in range(1, epochs + 1):
                torch.manual_seed(seed * 1_000_003 + epoch)
                train_one_epoch(trainee, epoch=epoch, reporter=reporter)
    head.eval()
    return head


@torch.inference_mode()
def probabilities(head: PainHead, features: np.ndarray) -> np.ndarray:
    logits = head(torch.from_numpy(np.asarray(features, dtype=np.float32)))
    return torch.softmax(logits, dim=1).numpy().astype(np.float64)


def next_batch(strategy: str, unlabeled: np.ndarray, study: Study, head: PainHead, size: int) -> np.ndarray:
    """The next `size` pool rows to label. `unlabeled` is in arrival order."""
    if strategy == "arrival":
        return unlabeled[:size]
    has_face = np.array([study.pool[row].face_box is not None for row in unlabeled], dtype=bool)
    predicted, no_face = unlabeled[has_face], unlabeled[~has_face]
    with intra_op_threads(1):
        scores = probabilities(head, study.pool_features[predicted])
    if strategy == "level-balanced":
        ranked = predicted[level_balanced_order(scores.argmax(axis=1))]
    else:
        ranked = predicted[most_uncertain_first(scores, strategy)]
    # No face, no score: those images come after every predicted one, in arrival order.
    return np.concatenate([ranked, no_face])[:size]


def learning_curve(strategy: str, study: Study, seed: int, args: argparse.Namespace) -> list[dict[str, float]]:
    levels = np.array([record.level for record in study.pool])
    test_levels = np.array([record.level for record in study.test])
    order = arrival_order(study.pool, seed)
    first = max(1, round(args.start_share * len(order)))
    step = max(1, round(args.round_share * len(order)))
    labeled = list(order[:first])
    head = None
    curve = []
    for round_number in range(args.rounds + 1):
        rows = np.array(labeled)
        epochs = args.cold_epochs if head is None else args.warm_epochs
        warm = None if head is None else head.state_dict()
        head = fit_head(study.pool_features[rows], levels[rows], epochs=epochs, seed=seed, warm=warm)
        auroc = macro_auroc(test_levels, probabilities(head, study.test_features))
        curve.append({"round": round_number, "labels": len(rows), "macro_auroc": auroc})
        taken = set(labeled)
        unlabeled = np.array([row for row in order if row not in taken], dtype=int)
        if not len(unlabeled):
            break
        labeled += list(next_batch(strategy, unlabeled, study, head, step))
    return curve


def labels_to_reach(curve: list[dict[str, float]], target: float) -> int | None:
    for point in curve:
        if point["macro_auroc"] is not None and point["macro_auroc"] >= target:
            return point["labels"]
    return None


def mean_curve(curves: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    length = min(len(curve) for curve in curves)
    return [
        {
            "labels": curves[0][index]["labels"],
            "macro_auroc": float(np.mean([curve[index]["macro_auroc"] for curve in curves])),
            "macro_auroc_sd": float(np.std([curve[index]["macro_auroc"] for curve in curves])),
        }
        for index in range(length)
    ]


def draw_plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    for strategy, summary in result["strategies"].items():
        curve = summary["mean_curve"]
        labels = [point["labels"] for point in curve]
        mean = np.array([point["macro_auroc"] for point in curve])
        spread = np.array([point["macro_auroc_sd"] for point in curve])
        (line,) = axes.plot(labels, mean, marker="o", markersize=3, label=strategy)
        axes.fill_between(labels, mean - spread, mean + spread, color=line.get_color(), alpha=0.12)
    reference = result["reference"]["macro_auroc_mean"]
    axes.axhline(reference, color="black", linewidth=0.8, label="all pool labels (cold)")
    axes.axhline(SHARE_OF_REFERENCE * reference, color="black", linewidth=0.8, linestyle=":", label="95% of it")
    run = result["run"]
    axes.set_xlabel("labeled pool images")
    axes.set_ylabel("test macro AUROC")
    axes.set_title(
        f"Labeling order on synthetic faces: {run['patients']} patients ({run['test_patients']} test), "
        f"mean ± sd of {len(run['seeds'])} seeds",
        fontsize=9,
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.text(0.01, 0.01, f"{result['machine']['cpu_model']}; backbone {run['backbone']}", fontsize=6, color="grey")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--test-patients", type=int, default=60)
    parser.add_argument("--images-per-patient", type=int, default=4)
    parser.add_argument("--drawn-size", type=int, default=128, help="pixels of the drawn faces")
    parser.add_argument("--image-size", type=int, default=64, help="network input size")
    parser.add_argument("--data-seed", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--start-share", type=float, default=0.10, help="share of the pool labeled at first")
    parser.add_argument("--round-share", type=float, default=0.05, help="share of the pool added per round")
    parser.add_argument("--rounds", type=int, default=18)
    parser.add_argument("--cold-epochs", type=int, default=30)
    parser.add_argument("--warm-epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--plot", type=Path, default=PLOT)
    args = parser.parse_args()
    if not 0 < args.test_patients < args.patients or not 0 < args.start_share < 1 or args.round_share <= 0:
        parser.error("need 0 < --test-patients < --patients, 0 < --start-share < 1 and --round-share > 0")

    started = time.perf_counter()
    threads = configure_threads()
    logging.getLogger("modeling.ml.network").setLevel(logging.ERROR)
    measured_machine = machine(torch_threads=threads, torch=torch.__version__)
    scratch = Path(tempfile.mkdtemp(prefix="painsite-bench-active-"))
    try:
        study = draw_study(scratch, args)
        reference = {}
        for seed in args.seeds:
            levels = np.array([record.level for record in study.pool])
            head = fit_head(study.pool_features, levels, epochs=args.cold_epochs, seed=seed, warm=None)
            test_levels = np.array([record.level for record in study.test])
            reference[seed] = macro_auroc(test_levels, probabilities(head, study.test_features))
        reference_mean = float(np.mean(list(reference.values())))
        target = SHARE_OF_REFERENCE * reference_mean
        strategies = {}
        for strategy in STRATEGIES:
            curves = {seed: learning_curve(strategy, study, seed, args) for seed in args.seeds}
            mean = mean_curve(list(curves.values()))
            strategies[strategy] = {
                "labels_to_95_percent_of_reference": labels_to_reach(mean, target),
                "labels_to_95_percent_by_seed": {
                    str(seed): labels_to_reach(curve, SHARE_OF_REFERENCE * reference[seed])
                    for seed, curve in curves.items()
                },
                "mean_macro_auroc_over_rounds": float(np.mean([point["macro_auroc"] for point in mean])),
                "mean_curve": mean,
                "curves": {str(seed): curve for seed, curve in curves.items()},
            }
            print(
                f"{strategy:>15}: labels to {SHARE_OF_REFERENCE:.0%} of the reference "
                f"{strategies[strategy]['labels_to_95_percent_of_reference']}, mean AUROC over rounds "
                f"{strategies[strategy]['mean_macro_auroc_over_rounds']:.3f}",
                flush=True,
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    reached = {name: s["labels_to_95_percent_of_reference"] for name, s in strategies.items()}
    fewest = min((labels for labels in reached.values() if labels is not None), default=None)
    result = {
        "benchmark": "active learning: labels each labeling-queue order needs (synthetic faces, head mode)",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**measured_machine, "load_average_at_end": load_average()},
        "run": {
            "patients": args.patients,
            "test_patients": len({record.patient for record in study.test}),
            "pool_patients": len({record.patient for record in study.pool}),
            "images_per_patient": args.images_per_patient,
            "pool_images": len(study.pool),
            "test_images": len(study.test),
            "pool_images_without_a_face": sum(record.face_box is None for record in study.pool),
            "drawn_size": args.drawn_size,
            "image_size": args.image_size,
            "data_seed": args.data_seed,
            "seeds": args.seeds,
            "start_labels": max(1, round(args.start_share * len(study.pool))),
            "labels_per_round": max(1, round(args.round_share * len(study.pool))),
            "rounds": args.rounds,
            "cold_epochs": args.cold_epochs,
            "warm_epochs": args.warm_epochs,
            "head": "linear (PainHead hidden=0, dropout 0.5), AdamW, class-weighted loss, no early stopping",
            "backbone": study.backbone,
            "feature_path": study.feature_path,
        },
        "seconds": {
            **{name: round(value, 1) for name, value in study.seconds.items()},
            "total": round(time.perf_counter() - started, 1),
        },
        "reference": {
            "what": "a cold head on every pool label, per seed",
            "macro_auroc_by_seed": {str(seed): value for seed, value in reference.items()},
            "macro_auroc_mean": reference_mean,
            "target_share": SHARE_OF_REFERENCE,
            "target_macro_auroc": target,
        },
        "labels_to_95_percent_of_reference": reached,
        "fewest_labels": sorted(name for name, labels in reached.items() if labels is not None and labels == fewest),
        "strategies": strategies,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    draw_plot(result, args.plot)
    print(f"reference {reference_mean:.3f}; labels to 95%: {reached}; wrote {args.out} and {args.plot}")
    return result


if __name__ == "__main__":
    main()
