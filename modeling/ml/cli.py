"""Command line: `python -m modeling.ml train|evaluate|features`, on a folder of images and a
manifest CSV (path,patient,cohort,nrs). Prints one JSON document; logs go to stderr."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modeling.ml.backbone import WeightsFileError
from modeling.ml.config import FEATURE_PATHS, MODES, OPTIMIZERS, PRECISIONS, TrainConfig
from modeling.ml.data import Record, UnreadableImage, read_manifest
from modeling.ml.levels import DEFAULT_LEVELS, PainLevels, whole_nrs
from modeling.ml.splits import (
    assign_splits,
    patient_cohorts,
    patient_max_levels,
    split_sha256,
)

logger = logging.getLogger("modeling.ml")


def evaluate_records(
    records: Sequence[Record], probabilities: np.ndarray, levels: PainLevels, *, n_bootstrap: int, seed: int
) -> dict[str, Any]:
    """Metrics per cohort (each cohort present, plus "combined"), by modeling.ml.metrics."""
    from modeling.ml.metrics import evaluate_predictions

    cohorts = {"combined": np.arange(len(records))}
    for cohort in sorted({record.cohort for record in records}):
        cohorts[cohort] = np.array([i for i, record in enumerate(records) if record.cohort == cohort])
    results = {}
    for cohort, index in cohorts.items():
        chosen = [records[i] for i in index]
        results[cohort] = evaluate_predictions(
            [record.level for record in chosen],
            [whole_nrs(record.nrs) for record in chosen],
            probabilities[index],
            [record.patient for record in chosen],
            levels.names,
            n_bootstrap=n_bootstrap,
            seed=seed,
            level_ranges=list(levels.ranges),
        )
    return results


def _load_splits(records: Sequence[Record], path: Path | None, seed: int) -> dict[str, str]:
    """Patient splits from ``path`` (kept as they are) plus new patients, stratified by cohort and
    maximal level and seeded by the split seed alone: a new training seed never moves a patient."""
    existing = json.loads(path.read_text()) if path is not None and path.exists() else {}
    assignment = assign_splits(patient_max_levels(records), existing, seed=seed, cohorts=patient_cohorts(records))
    if path is not None:
        path.write_text(json.dumps(assignment, indent=1, sort_keys=True))
    return assignment


def _records(args: argparse.Namespace) -> list[Record]:
    return read_manifest(args.manifest, data_dir=args.data_dir, levels=PainLevels.parse(args.levels))


def command_train(args: argparse.Namespace) -> dict[str, Any]:
    from modeling.ml.predict import load_model
    from modeling.ml.training import train

    config = TrainConfig(
        mode=args.mode,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        seed=args.seed,
        image_size=args.image_size,
        patience=args.patience,
        device=args.device,
        levels=args.levels,
        precision=args.precision,
        skip_unreadable=args.skip_unreadable,
        loader_workers=args.loader_workers,
        feature_path=args.feature_path,
    )
    records = _records(args)
    work_dir = Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    splits = _load_splits(records, Path(args.splits) if args.splits else work_dir / "splits.json", args.split_seed)
    by_split = {name: [r for r in records if splits[r.patient] == name] for name in ("train", "val", "test")}

    def report(event: Any) -> None:
        if event.message:
            logger.info("%3.0f%% %s", 100 * event.fraction, event.message)

    result = train(
        config,
        by_split["train"],
        by_split["val"],
        work_dir=work_dir,
        cache_dir=args.cache_dir or work_dir / "features",
        progress=report,
    )
    summary: dict[str, Any] = {
        "weights_path": result.weights_path,
        "weights_sha256": result.weights_sha256,
        "backbone": result.backbone,
        "backbone_sha256": result.backbone_sha256,
        "device": result.device,
        "feature_path": result.feature_path,
        "best_epoch": result.best_epoch,
        "best_val_macro_auroc": result.best_val_macro_auroc,
        "history": result.history,
        "cache_hits": result.cache_hits,
        "cache_misses": result.cache_misses,
        "skipped_images": result.skipped_images,
        "seconds": result.seconds,
        "split_seed": args.split_seed,
        "split_sha256": split_sha256(splits),
        "n_images": {k: len(v) for k, v in by_split.items()},
    }
    test = by_split["test"]
    if test and not args.no_evaluate:
        model = load_model(result.weights_path, device=args.device)
        probabilities = model.predict_records(test, cache_dir=args.cache_dir or work_dir / "features")
        summary["metrics"] = evaluate_records(
            test, probabilities, config.pain_levels, n_bootstrap=args.n_bootstrap, seed=args.seed
        )
    return summary


def command_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from modeling.ml.predict import load_model

    model = load_model(args.weights, device=args.device)
    records = read_manifest(args.manifest, data_dir=args.data_dir, levels=model.levels)
    if args.splits:
        splits = json.loads(Path(args.splits).read_text())
        missing = sorted({r.patient for r in records} - set(splits))
        if missing:
            raise ValueError(f"{args.splits} has no split for patient(s) {', '.join(missing[:5])}")
        records = [r for r in records if splits[r.patient] == "test"]
    if not records:
        raise ValueError("no images to evaluate")
    probabilities = model.predict_records(records, cache_dir=args.cache_dir)
    return {
        "weights": str(args.weights),
        "backbone": model.backbone.name,
        "device": model.device,
        "n_images": len(records),
        "metrics": evaluate_records(records, probabilities, model.levels, n_bootstrap=args.n_bootstrap, seed=args.seed),
    }


def command_features(args: argparse.Namespace) -> dict[str, Any]:
    from modeling.ml.backbone import load_backbone
    from modeling.ml.device import configure_threads
    from modeling.ml.feature_paths import choose_feature_path, path_extractor
    from modeling.ml.features import FeatureCache, extract_features
    from modeling.ml.network import FrozenFeatures
    from modeling.ml.transforms import EvalPreset

    records = _records(args)
    configure_threads()
    choice = choose_feature_path(args.device, args.precision, args.feature_path, state_dir=args.cache_dir)
    vgg, identity = load_backbone(init_seed=args.seed)
    preset = EvalPreset(args.image_size)
    cache = FeatureCache(
        args.cache_dir, backbone_sha256=identity.sha256, preprocessing=preset.version, precision=choice.cache_tag
    )
    features = extract_features(
        records,
        extractor=lambda: path_extractor(
            choice, lambda: FrozenFeatures(vgg), identity, args.image_size, args.cache_dir
        ),
        choice=choice,
        preset=preset,
        cache=cache,
        skip_unreadable=args.skip_unreadable,
    )
    return {
        "backbone": identity.name,
        "backbone_sha256": identity.sha256,
        "device": choice.describe(),
        "feature_path": choice.path,
        "images": len(records),
        "cache_hits": features.hits,
        "cache_misses": features.misses,
        "skipped_images": features.skipped,
        "cache_folder": str(cache.folder),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m modeling.ml", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def data_arguments(command: argparse.ArgumentParser) -> None:
        command.add_argument("--data-dir", required=True, type=Path, help="folder the manifest paths are relative to")
        command.add_argument("--manifest", required=True, type=Path, help="CSV with path,patient,cohort,nrs")
        command.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
        command.add_argument(
            "--seed", type=int, default=0, help="seed of training and of the bootstrap (never of the patient split)"
        )
        command.add_argument("--output", type=Path, help="also write the JSON result here")

    defaults = TrainConfig()
    train = commands.add_parser("train", help="split by patient, train, evaluate on the test patients")
    data_arguments(train)
    train.add_argument("--work-dir", required=True, type=Path, help="checkpoint, weights and splits.json go here")
    train.add_argument("--cache-dir", type=Path, help="feature cache (default: WORK_DIR/features)")
    train.add_argument("--splits", help="JSON {patient: train|val|test}; existing patients keep their split")
    train.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="seed of the patient split for patients without one (default 0); apart from --seed, "
        "so a new training seed does not move test patients",
    )
    train.add_argument("--mode", default=defaults.mode, help=f"one of {', '.join(MODES)}")
    train.add_argument("--epochs", type=int, default=defaults.epochs)
    train.add_argument("--lr", type=float, default=defaults.lr)
    train.add_argument("--batch-size", type=int, default=defaults.batch_size)
    train.add_argument("--optimizer", default=defaults.optimizer, help=f"one of {', '.join(OPTIMIZERS)}")
    train.add_argument("--image-size", type=int, default=defaults.image_size)
    train.add_argument("--patience", type=int, default=defaults.patience)
    train.add_argument("--precision", default="auto", help=f"one of {', '.join(PRECISIONS)}")
    train.add_argument(
        "--feature-path",
        default="auto",
        help=f"head mode: the kernels computing the frozen features, one of {', '.join(FEATURE_PATHS)} "
        "(auto: bf16 where native, CUDA on a GPU, int8 where a trial finds it faster, else float32)",
    )
    train.add_argument("--levels", default=DEFAULT_LEVELS)
    train.add_argument(
        "--skip-unreadable", action="store_true", help="skip (and count) unreadable images instead of failing"
    )
    train.add_argument(
        "--loader-workers",
        type=int,
        default=defaults.loader_workers,
        help="finetune mode: image loading processes (-1: one per CPU but one, at most 16, on CUDA; none on the CPU)",
    )
    train.add_argument("--no-evaluate", action="store_true")
    train.add_argument("--n-bootstrap", type=int, default=2000)
    train.set_defaults(run=command_train)

    evaluate = commands.add_parser("evaluate", help="metrics of a trained model on images")
    data_arguments(evaluate)
    evaluate.add_argument("--weights", required=True, type=Path)
    evaluate.add_argument("--splits", help="JSON {patient: split}: evaluate the test patients only")
    evaluate.add_argument("--cache-dir", type=Path)
    evaluate.add_argument("--n-bootstrap", type=int, default=2000)
    evaluate.set_defaults(run=command_evaluate)

    features = commands.add_parser("features", help="fill the feature cache")
    data_arguments(features)
    features.add_argument("--cache-dir", required=True, type=Path)
    features.add_argument("--image-size", type=int, default=defaults.image_size)
    features.add_argument("--precision", default="auto", help=f"one of {', '.join(PRECISIONS)}")
    features.add_argument(
        "--feature-path",
        default="auto",
        help=f"head mode: the kernels computing the frozen features, one of {', '.join(FEATURE_PATHS)} "
        "(auto: bf16 where native, CUDA on a GPU, int8 where a trial finds it faster, else float32)",
    )
    features.add_argument("--levels", default=DEFAULT_LEVELS)
    features.add_argument("--skip-unreadable", action="store_true")
    features.set_defaults(run=command_features)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = args.run(args)
    except (ValueError, UnreadableImage, WeightsFileError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=1)
    if args.output:
        args.output.write_text(text)
    print(text)
    return 0
