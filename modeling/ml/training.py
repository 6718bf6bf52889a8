"""Training: `train()` runs one training run in head or finetune mode.

Head mode (the CPU default) computes the frozen 4096-d features once per image through the
feature cache and trains a small classifier on them; finetune mode trains the last conv block
and the fully connected layers on augmented images. Each mode builds a `Trainee` and hands it
to the epoch loop (modeling/ml/engine.py), which uses class-weighted cross-entropy, stops early
on the validation patients' macro AUROC, is seeded, and writes a checkpoint after every epoch
that a redelivered task resumes from (modeling/ml/checkpoints.py).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from modeling.ml.backbone import RANDOM_INIT, Backbone, BackboneIdentity, open_backbone
from modeling.ml.checkpoints import CHECKPOINT_NAME, CheckpointError, EpochState, data_fingerprint, save_atomically
from modeling.ml.config import TrainConfig
from modeling.ml.data import PainImageDataset, Record, check_readable
from modeling.ml.device import DeviceChoice, choose_device, configure_threads, intra_op_threads
from modeling.ml.engine import Batch, Trainee, class_weights, fit, macro_auroc, make_optimizer
from modeling.ml.feature_paths import choose_feature_path, path_extractor
from modeling.ml.features import FeatureCache, extract_features
from modeling.ml.network import FrozenFeatures, PainHead, PainNet, trainable_copy_for_finetune
from modeling.ml.progress import Progress, Reporter, TrainingCancelled
from modeling.ml.splits import check_no_leakage
from modeling.ml.transforms import EvalPreset, FinetunePreset

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.pt"
WEIGHTS_FORMAT = "painsite-vgg16/1"
# Share of a cold head-mode run spent computing features, for the progress bar.
EXTRACTION_SHARE = 0.9

# Callers import these from here: what a training run raises, reports and resumes from.
__all__ = [
    "CHECKPOINT_NAME",
    "CheckpointError",
    "Progress",
    "TrainResult",
    "TrainingCancelled",
    "loader_workers",
    "macro_auroc",
    "train",
    "warm_feature_cache",
]


@dataclass
class TrainResult:
    weights_path: str
    weights_sha256: str
    backbone: str
    backbone_sha256: str
    device: str
    history: list[dict[str, Any]]
    best_epoch: int
    cache_hits: int
    cache_misses: int
    seconds: float
    best_val_macro_auroc: float | None = None
    skipped_images: list[str] = field(default_factory=list)
    resumed_from_epoch: int = 0
    n_train_images: int = 0
    n_val_images: int = 0
    # The kernels that computed the features (feature_paths.py): float32, bf16, int8-onnxruntime.
    feature_path: str = ""


def _check_inputs(config: TrainConfig, train_records: Sequence[Record], val_records: Sequence[Record]) -> None:
    if not train_records:
        raise ValueError("no training images: the training split is empty")
    n_levels = len(config.pain_levels)
    bad = [record.path for record in [*train_records, *val_records] if not 0 <= record.level < n_levels]
    if bad:
        raise ValueError(f"{len(bad)} image(s) have a level outside 0..{n_levels - 1}, e.g. {bad[0]}")
    if len({record.level for record in train_records}) < 2:
        raise ValueError("the training images cover a single pain level: a classifier needs at least two")
    check_no_leakage({"train": train_records, "val": val_records})


def train(
    config: TrainConfig,
    train_records: Sequence[Record],
    val_records: Sequence[Record],
    *,
    work_dir: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None,
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train one model; write `model.pt` into `work_dir` atomically and return what was done.

    A checkpoint in `work_dir` from the same configuration and data is resumed from.
    """
    started = time.monotonic()
    _check_inputs(config, train_records, val_records)
    configure_threads()
    if config.mode == "head":
        choice = choose_feature_path(config.device, config.precision, config.feature_path, state_dir=cache_dir)
    else:
        choice = choose_device(config.device, config.precision)
    # The VGG16 is built only when something needs it: a warm head-mode retrain never does.
    vgg = open_backbone(init_seed=config.seed, fingerprint_dir=cache_dir)
    identity = vgg.identity
    reporter = Reporter(progress, should_stop, config.epochs)
    if identity.name == RANDOM_INIT:
        reporter.report(fraction=0.0, message="WARNING: no ImageNet weights found, training on a random-init backbone")
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    run = _head_mode if config.mode == "head" else _finetune_mode
    payload, result = run(
        config,
        train_records,
        val_records,
        vgg=vgg,
        identity=identity,
        choice=choice,
        work=work,
        cache_dir=cache_dir,
        reporter=reporter,
    )
    weights_path = work / WEIGHTS_NAME
    result.weights_sha256 = save_atomically(payload, weights_path)
    result.weights_path = str(weights_path)
    result.seconds = time.monotonic() - started
    # The last event names the last epoch that ran (early stopping may end before config.epochs),
    # not the best one: a progress display shows how far training went.
    last_epoch = result.history[-1]["epoch"] if result.history else 0
    reporter.report(fraction=1.0, epoch=last_epoch, message=f"training finished, best epoch {result.best_epoch}")
    return result


@dataclass
class WarmedCache:
    """What `warm_feature_cache` did: vectors computed now, found cached, and images it could not read."""

    computed: int
    cached: int
    skipped: list[str] = field(default_factory=list)
    feature_path: str = ""


def warm_feature_cache(
    config: TrainConfig,
    records: Sequence[Record],
    *,
    cache_dir: str | os.PathLike[str],
    should_stop: Callable[[], bool] | None = None,
    batch_size: int | None = None,
) -> WarmedCache:
    """Compute and cache the frozen features a head-mode run with `config` will ask for: the same
    backbone, preprocessing and feature path, so that run finds them cached. Vectors already
    cached are not computed again; unreadable images are skipped and listed. `should_stop` is
    asked before each batch; when it says stop, the batches done so far stay cached."""
    configure_threads()
    choice = choose_feature_path(config.device, config.precision, config.feature_path, state_dir=cache_dir)
    vgg = open_backbone(init_seed=config.seed, fingerprint_dir=cache_dir)
    identity = vgg.identity
    preset = EvalPreset(config.image_size)
    cache = FeatureCache(
        cache_dir, backbone_sha256=identity.sha256, preprocessing=preset.version, precision=choice.cache_tag
    )
    size = batch_size or config.extract_batch_size
    computed = cached = 0
    skipped: list[str] = []
    extractor = None

    def build() -> Callable[[torch.Tensor], torch.Tensor]:
        return path_extractor(choice, lambda: FrozenFeatures(vgg.build()), identity, config.image_size, cache_dir)

    def once() -> Callable[[torch.Tensor], torch.Tensor]:
        nonlocal extractor
        if extractor is None:
            extractor = build()
        return extractor

    for start in range(0, len(records), size):
        if should_stop is not None and should_stop():
            break
        features = extract_features(
            records[start : start + size],
            extractor=once,
            choice=choice,
            preset=preset,
            cache=cache,
            batch_size=size,
            skip_unreadable=True,
        )
        computed += features.misses - len(features.skipped)
        cached += features.hits
        skipped += features.skipped
    return WarmedCache(computed=computed, cached=cached, skipped=skipped, feature_path=choice.path)


def _weights_payload(
    config: TrainConfig,
    identity: BackboneIdentity,
    choice: DeviceChoice,
    preset: EvalPreset,
    state: EpochState,
    **weights: Any,
) -> dict[str, Any]:
    return {
        "format": WEIGHTS_FORMAT,
        "mode": config.mode,
        "levels": config.levels,
        "image_size": config.image_size,
        "preprocessing": preset.version,
        "precision": choice.precision,
        "feature_path": choice.path,
        "backbone": identity.to_dict(),
        "head": {"hidden": config.head_hidden if config.mode == "head" else 0, "dropout": config.dropout},
        "config": config.to_dict(),
        "best_epoch": state.best_epoch,
        "history": state.history,
        **weights,
    }


def _result(
    identity: BackboneIdentity, choice: DeviceChoice, state: EpochState, resumed_from: int, **counts: Any
) -> TrainResult:
    return TrainResult(
        weights_path="",
        weights_sha256="",
        backbone=identity.name,
        backbone_sha256=identity.sha256,
        device=choice.describe(),
        history=state.history,
        best_epoch=state.best_epoch,
        seconds=0.0,
        best_val_macro_auroc=state.best_auroc,
        resumed_from_epoch=resumed_from,
        feature_path=choice.path,
        **counts,
    )


def head_trainee(
    config: TrainConfig,
    head: PainHead,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    val_inputs: torch.Tensor | None = None,
    levels_val: np.ndarray | None = None,
) -> Trainee:
    """The head of head mode, trained on feature vectors in shuffled mini-batches with class-weighted
    cross-entropy (also used by bench/active_learning.py's rounds)."""

    def batches() -> list[Batch]:
        order = torch.randperm(len(inputs))
        return [(inputs[index], targets[index]) for index in order.split(config.batch_size)]

    return Trainee(
        model=head,
        optimizer=make_optimizer(config, list(head.parameters())),
        loss_fn=nn.CrossEntropyLoss(weight=class_weights(targets.numpy(), len(config.pain_levels))),
        forward=head,
        batches=batches,
        n_batches=-(-len(inputs) // config.batch_size),
        validation_inputs=lambda: [] if val_inputs is None else [val_inputs],
        levels_val=np.zeros(0, dtype=np.int64) if levels_val is None else levels_val,
    )


def _head_mode(
    config: TrainConfig,
    train_records: Sequence[Record],
    val_records: Sequence[Record],
    *,
    vgg: Backbone,
    identity: BackboneIdentity,
    choice: DeviceChoice,
    work: Path,
    cache_dir: str | os.PathLike[str] | None,
    reporter: Reporter,
) -> tuple[dict[str, Any], TrainResult]:
    preset = EvalPreset(config.image_size)
    cache = (
        FeatureCache(
            cache_dir, backbone_sha256=identity.sha256, preprocessing=preset.version, precision=choice.cache_tag
        )
        if cache_dir is not None
        else None
    )
    n_images = len(train_records) + len(val_records)
    computed = [0]

    def on_batch(done: int, total: int) -> None:
        reporter.check_cancelled()
        reporter.report(
            fraction=EXTRACTION_SHARE * (computed[0] + done) / n_images,
            message=f"computing image features: {computed[0] + done} new",
        )

    def extractor() -> Callable[[torch.Tensor], torch.Tensor]:
        return path_extractor(choice, lambda: FrozenFeatures(vgg.build()), identity, config.image_size, cache_dir)

    extracted = []
    for records in (train_records, val_records):
        features = extract_features(
            records,
            extractor=extractor,
            choice=choice,
            preset=preset,
            cache=cache,
            batch_size=config.extract_batch_size,
            skip_unreadable=config.skip_unreadable,
            on_batch=on_batch,
        )
        computed[0] += features.misses
        extracted.append(features)
    train_features, val_features = extracted
    _check_inputs(config, train_features.records, val_features.records)

    inputs = torch.from_numpy(train_features.vectors)
    targets = torch.tensor([record.level for record in train_features.records])
    val_inputs = torch.from_numpy(val_features.vectors)
    n_levels = len(config.pain_levels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        head = PainHead(n_levels, hidden=config.head_hidden, dropout=config.dropout)
    head.set_standardisation(inputs)

    trainee = head_trainee(
        config,
        head,
        inputs,
        targets,
        val_inputs=val_inputs,
        levels_val=np.array([record.level for record in val_features.records], dtype=np.int64),
    )
    reporter.start_epochs(fraction_from=EXTRACTION_SHARE * computed[0] / n_images, batches_per_epoch=trainee.n_batches)
    # One thread: the head's batches are tiny, so more threads only add synchronisation, and on a
    # busy machine OpenMP's spinning workers made each epoch ten times slower (bench/ml.py).
    with intra_op_threads(1):
        state, resumed_from = fit(
            config,
            trainee,
            checkpoint_path=work / CHECKPOINT_NAME,
            fingerprint=data_fingerprint(train_features.records, val_features.records),
            reporter=reporter,
        )
    payload = _weights_payload(config, identity, choice, preset, state, head_state=head.state_dict())
    result = _result(
        identity,
        choice,
        state,
        resumed_from,
        cache_hits=train_features.hits + val_features.hits,
        cache_misses=train_features.misses + val_features.misses,
        skipped_images=train_features.skipped + val_features.skipped,
        n_train_images=len(train_features.records),
        n_val_images=len(val_features.records),
    )
    return payload, result


def loader_workers(config: TrainConfig, choice: DeviceChoice) -> int:
    """Image loading processes for fine-tuning: the configured count, or for -1 (auto) one per CPU
    but one (left to the training process), at most 16, on CUDA, and none on the CPU.

    A daemonic process (a task in Celery's default prefork pool) may not start processes, so
    there the images load in the training process itself, with a warning."""
    if config.loader_workers >= 0:
        wanted = config.loader_workers
    elif choice.device.type != "cuda":
        wanted = 0
    else:
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:
            cpus = os.cpu_count() or 1
        wanted = max(0, min(16, cpus - 1))
    if wanted and multiprocessing.current_process().daemon:
        logger.warning(
            "fine-tuning loads its images in the training process, not in %d loading processes: this is a "
            "daemonic process (Celery's prefork pool), which may not start any; run the training worker "
            "with --pool threads to use them",
            wanted,
        )
        return 0
    return wanted


def _finetune_mode(
    config: TrainConfig,
    train_records: Sequence[Record],
    val_records: Sequence[Record],
    *,
    vgg: Backbone,
    identity: BackboneIdentity,
    choice: DeviceChoice,
    work: Path,
    cache_dir: str | os.PathLike[str] | None,
    reporter: Reporter,
) -> tuple[dict[str, Any], TrainResult]:
    train_ok, skipped_train = check_readable(train_records, skip_unreadable=config.skip_unreadable)
    val_ok, skipped_val = check_readable(val_records, skip_unreadable=config.skip_unreadable)
    _check_inputs(config, train_ok, val_ok)
    n_levels = len(config.pain_levels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        head = PainHead(n_levels, hidden=0, dropout=config.dropout)
    model = PainNet(trainable_copy_for_finetune(vgg.build()), head, round_features=False).to(choice.device)
    if choice.channels_last:
        model = model.to(memory_format=torch.channels_last)
    train_targets = np.array([record.level for record in train_ok], dtype=np.int64)
    on_cuda = choice.device.type == "cuda"
    loading = {"num_workers": loader_workers(config, choice), "pin_memory": on_cuda}
    if loading["num_workers"]:
        loading["persistent_workers"] = True
    train_loader = DataLoader(
        PainImageDataset(train_ok, FinetunePreset(config.image_size)),
        batch_size=config.batch_size,
        shuffle=True,
        **loading,
    )
    preset = EvalPreset(config.image_size)
    val_loader = DataLoader(PainImageDataset(val_ok, preset), batch_size=config.batch_size, **loading)

    def to_device(images: torch.Tensor) -> torch.Tensor:
        images = images.to(choice.device, non_blocking=on_cuda)
        return images.contiguous(memory_format=torch.channels_last) if choice.channels_last else images

    def forward(images: torch.Tensor) -> torch.Tensor:
        with choice.autocast():
            return model(to_device(images)).float()

    def batches() -> Iterable[Batch]:
        return ((images, targets.to(choice.device, non_blocking=on_cuda)) for images, targets in train_loader)

    trainee = Trainee(
        model=model,
        optimizer=make_optimizer(config, [p for p in model.parameters() if p.requires_grad]),
        loss_fn=nn.CrossEntropyLoss(weight=class_weights(train_targets, n_levels).to(choice.device)),
        forward=forward,
        batches=batches,
        n_batches=len(train_loader),
        validation_inputs=lambda: (images for images, _ in val_loader),
        levels_val=np.array([record.level for record in val_ok], dtype=np.int64),
    )
    reporter.start_epochs(fraction_from=0.0, batches_per_epoch=trainee.n_batches)
    state, resumed_from = fit(
        config,
        trainee,
        checkpoint_path=work / CHECKPOINT_NAME,
        fingerprint=data_fingerprint(train_ok, val_ok),
        reporter=reporter,
    )
    model_state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    payload = _weights_payload(config, identity, choice, preset, state, model_state=model_state)
    result = _result(
        identity,
        choice,
        state,
        resumed_from,
        cache_hits=0,
        cache_misses=0,
        skipped_images=skipped_train + skipped_val,
        n_train_images=len(train_ok),
        n_val_images=len(val_ok),
    )
    return payload, result
