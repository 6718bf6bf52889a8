"""Training: `train()` runs one training run in head or finetune mode.

Head mode (the CPU default) computes the frozen 4096-d features once per image through the
feature cache and trains a small classifier on them; finetune mode trains the last conv block
and the fully connected layers on augmented images. Both use class-weighted cross-entropy, stop
early on the validation patients' macro AUROC, are seeded, and write a checkpoint after every
epoch that a redelivered task resumes from.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.utils.data import DataLoader

from modeling.ml.config import OPTIMIZERS, TrainConfig
from modeling.ml.data import PainImageDataset, Record, check_readable
from modeling.ml.device import DeviceChoice, choose_device, configure_threads, intra_op_threads
from modeling.ml.feature_paths import choose_feature_path, path_extractor
from modeling.ml.features import FeatureCache, extract_features
from modeling.ml.network import (
    RANDOM_INIT,
    Backbone,
    BackboneIdentity,
    FrozenFeatures,
    PainHead,
    PainNet,
    WeightsFileError,
    open_backbone,
    trainable_copy_for_finetune,
)
from modeling.ml.splits import check_no_leakage
from modeling.ml.transforms import EvalPreset, FinetunePreset

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
WEIGHTS_NAME = "model.pt"
WEIGHTS_FORMAT = "painsite-vgg16/1"
CHECKPOINT_FORMAT = "painsite-checkpoint/1"
# Share of a cold head-mode run spent computing features, for the progress bar.
EXTRACTION_SHARE = 0.9


class TrainingCancelled(Exception):
    """`should_stop()` answered True. The last completed epoch's checkpoint is kept."""


class CheckpointError(WeightsFileError):
    """A checkpoint cannot be resumed from. Names the file."""


@dataclass(frozen=True)
class Progress:
    epoch: int
    epochs: int
    batch: int
    batches: int
    loss: float | None
    fraction: float
    elapsed: float
    eta: float | None
    message: str = ""


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


class _Reporter:
    """Turns work done into `Progress` events, and checks for cancellation."""

    def __init__(self, progress: Callable[[Progress], None] | None, should_stop: Callable[[], bool] | None, epochs: int):
        self.progress = progress
        self.should_stop = should_stop
        self.epochs = epochs
        self.started = time.monotonic()

    def check_cancelled(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise TrainingCancelled("training was cancelled")

    def report(self, *, fraction: float, epoch: int = 0, batch: int = 0, batches: int = 0,
               loss: float | None = None, message: str = "") -> None:
        if self.progress is None:
            return
        elapsed = time.monotonic() - self.started
        fraction = min(1.0, max(0.0, fraction))
        eta = elapsed / fraction * (1 - fraction) if fraction > 0.01 else None
        self.progress(Progress(epoch, self.epochs, batch, batches, loss, fraction, elapsed, eta, message))


def macro_auroc(levels_true: np.ndarray, probabilities: np.ndarray) -> float | None:
    """Mean one-vs-rest AUROC over the levels with both positive and negative cases; None when
    no level has both."""
    scores = [
        roc_auc_score(levels_true == level, probabilities[:, level])
        for level in range(probabilities.shape[1])
        if 0 < int((levels_true == level).sum()) < len(levels_true)
    ]
    return float(np.mean(scores)) if scores else None


def class_weights(levels: np.ndarray, n_levels: int) -> torch.Tensor:
    """Inverse-frequency weights (balanced), 0 for levels absent from training."""
    counts = np.bincount(levels, minlength=n_levels).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_levels)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return torch.tensor(weights, dtype=torch.float32)


def make_optimizer(config: TrainConfig, parameters: Sequence[nn.Parameter]) -> torch.optim.Optimizer:
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; valid options: {', '.join(OPTIMIZERS)}")


def save_atomically(payload: dict[str, Any], path: Path, *, durable: bool = True) -> str:
    """torch.save to a temp file beside `path`, rename over it. Returns the sha256. `durable`
    also fsyncs first, so a power cut cannot leave an empty file under the final name; an
    epoch checkpoint skips it (the previous one is still there, and fsync per epoch is slow on
    a busy disk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            torch.save(payload, out)
            out.flush()
            if durable:
                os.fsync(out.fileno())
        digest = hashlib.sha256()
        with open(temp, "rb") as written:
            for chunk in iter(lambda: written.read(1 << 22), b""):
                digest.update(chunk)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged zip or pickle raises many unrelated types
        raise CheckpointError(f"cannot read checkpoint {path}: {error}; delete it to start the run over") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a PainSite training checkpoint; delete it to start the run over")
    return checkpoint


def data_fingerprint(train_records: Sequence[Record], val_records: Sequence[Record]) -> str:
    digest = hashlib.sha256()
    for name, records in (("train", train_records), ("val", val_records)):
        for record in records:
            digest.update(f"{name}|{record.sha256 or record.path}|{record.level}|{record.patient}\n".encode())
    return digest.hexdigest()


@dataclass
class _EpochState:
    """What a checkpoint carries besides the model and optimizer."""

    next_epoch: int = 1
    best_score: float = float("-inf")
    best_epoch: int = 0
    best_auroc: float | None = None
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    finished: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


def _resume(path: Path, config: TrainConfig, fingerprint: str, model: nn.Module,
            optimizer: torch.optim.Optimizer) -> _EpochState:
    if not path.exists():
        return _EpochState()
    checkpoint = read_checkpoint(path)
    if checkpoint.get("config") != config.to_dict() or checkpoint.get("data_fingerprint") != fingerprint:
        raise CheckpointError(
            f"checkpoint {path} belongs to a run with another configuration or other data; "
            f"use a fresh work folder or delete it"
        )
    try:
        model.load_state_dict(checkpoint["model_state"])
        optimizer.load_state_dict(checkpoint["optimizer_state"])
        state = _EpochState(
            next_epoch=int(checkpoint["epoch"]) + 1,
            best_score=float(checkpoint["best_score"]),
            best_epoch=int(checkpoint["best_epoch"]),
            best_auroc=checkpoint["best_val_macro_auroc"],
            best_state=checkpoint["best_state"],
            bad_epochs=int(checkpoint["bad_epochs"]),
            finished=bool(checkpoint["finished"]),
            history=list(checkpoint["history"]),
        )
    except (KeyError, RuntimeError, ValueError, TypeError) as error:
        raise CheckpointError(f"checkpoint {path} is incomplete or damaged ({error}); delete it to start over") from None
    logger.info("resuming from %s after epoch %d", path, state.next_epoch - 1)
    return state


def _save_checkpoint(path: Path, config: TrainConfig, fingerprint: str, epoch: int, model: nn.Module,
                     optimizer: torch.optim.Optimizer, state: _EpochState) -> None:
    save_atomically({
        "format": CHECKPOINT_FORMAT,
        "config": config.to_dict(),
        "data_fingerprint": fingerprint,
        "epoch": epoch,
        "model_state": model.state_dict(),
        "optimizer_state": optimizer.state_dict(),
        "best_state": state.best_state,
        "best_score": state.best_score,
        "best_epoch": state.best_epoch,
        "best_val_macro_auroc": state.best_auroc,
        "bad_epochs": state.bad_epochs,
        "finished": state.finished,
        "history": state.history,
    }, path, durable=False)


def _end_of_epoch(state: _EpochState, *, epoch: int, loss: float, probabilities: np.ndarray | None,
                  levels_true: np.ndarray, val_loss: float | None, model: nn.Module, config: TrainConfig) -> None:
    auroc = macro_auroc(levels_true, probabilities) if probabilities is not None else None
    # Validation AUROC decides; without one (no validation patients, or a single level among
    # them) the lower validation loss does, and without that, the latest epoch.
    if auroc is not None:
        score = auroc
    elif val_loss is not None:
        score = -val_loss
    else:
        score = float(epoch)
    state.history.append({"epoch": epoch, "loss": loss, "val_macro_auroc": auroc, "val_loss": val_loss})
    if score > state.best_score + 1e-9:
        state.best_score, state.best_epoch, state.best_auroc = score, epoch, auroc
        state.best_state = copy.deepcopy(model.state_dict())
        state.bad_epochs = 0
    else:
        state.bad_epochs += 1
    state.next_epoch = epoch + 1
    state.finished = state.bad_epochs >= config.patience or epoch >= config.epochs


def _run_epochs(
    config: TrainConfig,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    batches: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    n_batches: int,
    forward: Callable[[torch.Tensor], torch.Tensor],
    validate: Callable[[], tuple[np.ndarray | None, float | None]],
    levels_val: np.ndarray,
    checkpoint_path: Path,
    fingerprint: str,
    reporter: _Reporter,
    fraction_from: float,
) -> tuple[_EpochState, int]:
    """The epoch loop shared by both modes. Returns the final state (best weights loaded into
    `model`) and the epoch it resumed after (0 for a fresh start)."""
    state = _resume(checkpoint_path, config, fingerprint, model, optimizer)
    resumed_from = state.next_epoch - 1
    total_batches = config.epochs * n_batches
    # Every epoch reseeds from (seed, epoch): shuffling, dropout and augmentation then repeat
    # exactly after a resume, and the caller's random stream is left alone.
    with torch.random.fork_rng(devices=[]):
        for epoch in range(state.next_epoch, config.epochs + 1):
            if state.finished:
                break
            torch.manual_seed(config.seed * 1_000_003 + epoch)
            model.train()
            loss_sum, seen = 0.0, 0
            for batch_index, (inputs, targets) in enumerate(batches(), start=1):
                reporter.check_cancelled()
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(forward(inputs), targets)
                loss.backward()
                optimizer.step()
                loss_sum += loss.item() * len(targets)
                seen += len(targets)
                done = (epoch - 1) * n_batches + batch_index
                reporter.report(fraction=fraction_from + (1 - fraction_from) * done / total_batches, epoch=epoch,
                                batch=batch_index, batches=n_batches, loss=loss.item())
            model.eval()
            probabilities, val_loss = validate()
            _end_of_epoch(state, epoch=epoch, loss=loss_sum / max(seen, 1), probabilities=probabilities,
                          levels_true=levels_val, val_loss=val_loss, model=model, config=config)
            _save_checkpoint(checkpoint_path, config, fingerprint, epoch, model, optimizer, state)
            last = state.history[-1]
            auroc_text = "n/a" if last["val_macro_auroc"] is None else f"{last['val_macro_auroc']:.3f}"
            reporter.report(fraction=fraction_from + (1 - fraction_from) * epoch * n_batches / total_batches,
                            epoch=epoch, batch=n_batches, batches=n_batches, loss=last["loss"],
                            message=f"epoch {epoch}: loss {last['loss']:.4f}, validation macro AUROC {auroc_text}")
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    return state, resumed_from


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
    reporter = _Reporter(progress, should_stop, config.epochs)
    if identity.name == RANDOM_INIT:
        reporter.report(fraction=0.0, message="WARNING: no ImageNet weights found, training on a random-init backbone")
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    run = _head_mode if config.mode == "head" else _finetune_mode
    payload, result = run(config, train_records, val_records, vgg=vgg, identity=identity, choice=choice,
                          work=work, cache_dir=cache_dir, reporter=reporter)
    weights_path = work / WEIGHTS_NAME
    result.weights_sha256 = save_atomically(payload, weights_path)
    result.weights_path = str(weights_path)
    result.seconds = time.monotonic() - started
    reporter.report(fraction=1.0, epoch=result.best_epoch, message="training finished")
    return result


def _weights_payload(config: TrainConfig, identity: BackboneIdentity, choice: DeviceChoice, preset: EvalPreset,
                     state: _EpochState, **weights: Any) -> dict[str, Any]:
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


def _result(identity: BackboneIdentity, choice: DeviceChoice, state: _EpochState, resumed_from: int, **counts: Any) -> TrainResult:
    return TrainResult(
        weights_path="", weights_sha256="", backbone=identity.name, backbone_sha256=identity.sha256,
        device=choice.describe(), history=state.history, best_epoch=state.best_epoch, seconds=0.0,
        best_val_macro_auroc=state.best_auroc, resumed_from_epoch=resumed_from, feature_path=choice.path, **counts,
    )


def _head_mode(config: TrainConfig, train_records: Sequence[Record], val_records: Sequence[Record], *,
               vgg: Backbone, identity: BackboneIdentity, choice: DeviceChoice, work: Path,
               cache_dir: str | os.PathLike[str] | None, reporter: _Reporter) -> tuple[dict[str, Any], TrainResult]:
    preset = EvalPreset(config.image_size)
    cache = (FeatureCache(cache_dir, backbone_sha256=identity.sha256, preprocessing=preset.version,
                          precision=choice.cache_tag) if cache_dir is not None else None)
    n_images = len(train_records) + len(val_records)
    computed = [0]

    def on_batch(done: int, total: int) -> None:
        reporter.check_cancelled()
        reporter.report(fraction=EXTRACTION_SHARE * (computed[0] + done) / n_images,
                        message=f"computing image features: {computed[0] + done} new")

    def extractor() -> Callable[[torch.Tensor], torch.Tensor]:
        return path_extractor(choice, lambda: FrozenFeatures(vgg.build()), identity, config.image_size, cache_dir)

    extracted = []
    for records in (train_records, val_records):
        features = extract_features(records, extractor=extractor, choice=choice, preset=preset, cache=cache,
                                    batch_size=config.extract_batch_size, skip_unreadable=config.skip_unreadable,
                                    on_batch=on_batch)
        computed[0] += features.misses
        extracted.append(features)
    train_features, val_features = extracted
    _check_inputs(config, train_features.records, val_features.records)
    fraction_from = EXTRACTION_SHARE * computed[0] / n_images

    inputs = torch.from_numpy(train_features.vectors)
    targets = torch.tensor([record.level for record in train_features.records])
    val_inputs = torch.from_numpy(val_features.vectors)
    levels_val = np.array([record.level for record in val_features.records], dtype=np.int64)
    n_levels = len(config.pain_levels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        head = PainHead(n_levels, hidden=config.head_hidden, dropout=config.dropout)
    head.set_standardisation(inputs)
    optimizer = make_optimizer(config, list(head.parameters()))
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(targets.numpy(), n_levels))
    n_batches = -(-len(inputs) // config.batch_size)

    def batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(inputs))
        return [(inputs[index], targets[index]) for index in order.split(config.batch_size)]

    @torch.inference_mode()
    def validate() -> tuple[np.ndarray | None, float | None]:
        if len(val_inputs) == 0:
            return None, None
        logits = head(val_inputs)
        val_loss = float(nn.functional.cross_entropy(logits, torch.from_numpy(levels_val), weight=loss_fn.weight))
        return torch.softmax(logits, dim=1).numpy(), val_loss

    # One thread: the head's batches are tiny, so more threads only add synchronisation, and on a
    # busy machine OpenMP's spinning workers made each epoch ten times slower (bench/ml.py).
    with intra_op_threads(1):
        state, resumed_from = _run_epochs(
            config, model=head, optimizer=optimizer, loss_fn=loss_fn, batches=batches, n_batches=n_batches,
            forward=head, validate=validate, levels_val=levels_val, checkpoint_path=work / CHECKPOINT_NAME,
            fingerprint=data_fingerprint(train_features.records, val_features.records), reporter=reporter,
            fraction_from=fraction_from,
        )
    payload = _weights_payload(config, identity, choice, preset, state, head_state=head.state_dict())
    result = _result(identity, choice, state, resumed_from,
                     cache_hits=train_features.hits + val_features.hits,
                     cache_misses=train_features.misses + val_features.misses,
                     skipped_images=train_features.skipped + val_features.skipped,
                     n_train_images=len(train_features.records), n_val_images=len(val_features.records))
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
            "with --pool threads to use them", wanted)
        return 0
    return wanted


def _finetune_mode(config: TrainConfig, train_records: Sequence[Record], val_records: Sequence[Record], *,
                   vgg: Backbone, identity: BackboneIdentity, choice: DeviceChoice, work: Path,
                   cache_dir: str | os.PathLike[str] | None, reporter: _Reporter) -> tuple[dict[str, Any], TrainResult]:
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
    optimizer = make_optimizer(config, [p for p in model.parameters() if p.requires_grad])
    train_targets = np.array([record.level for record in train_ok], dtype=np.int64)
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(train_targets, n_levels).to(choice.device))
    on_cuda = choice.device.type == "cuda"
    loading = {"num_workers": loader_workers(config, choice), "pin_memory": on_cuda}
    if loading["num_workers"]:
        loading["persistent_workers"] = True
    train_loader = DataLoader(PainImageDataset(train_ok, FinetunePreset(config.image_size)),
                              batch_size=config.batch_size, shuffle=True, **loading)
    preset = EvalPreset(config.image_size)
    val_loader = DataLoader(PainImageDataset(val_ok, preset), batch_size=config.batch_size, **loading)
    levels_val = np.array([record.level for record in val_ok], dtype=np.int64)

    def to_device(images: torch.Tensor) -> torch.Tensor:
        images = images.to(choice.device, non_blocking=on_cuda)
        return images.contiguous(memory_format=torch.channels_last) if choice.channels_last else images

    def forward(images: torch.Tensor) -> torch.Tensor:
        with choice.autocast():
            return model(to_device(images)).float()

    def batches() -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        return ((images, targets.to(choice.device, non_blocking=on_cuda)) for images, targets in train_loader)

    @torch.inference_mode()
    def validate() -> tuple[np.ndarray | None, float | None]:
        if not val_ok:
            return None, None
        logits = torch.cat([forward(images) for images, _ in val_loader])
        val_loss = float(nn.functional.cross_entropy(logits, torch.from_numpy(levels_val).to(choice.device),
                                                     weight=loss_fn.weight))
        return torch.softmax(logits, dim=1).cpu().numpy(), val_loss

    state, resumed_from = _run_epochs(
        config, model=model, optimizer=optimizer, loss_fn=loss_fn, batches=batches, n_batches=len(train_loader),
        forward=forward, validate=validate, levels_val=levels_val, checkpoint_path=work / CHECKPOINT_NAME,
        fingerprint=data_fingerprint(train_ok, val_ok), reporter=reporter, fraction_from=0.0,
    )
    model_state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    payload = _weights_payload(config, identity, choice, preset, state, model_state=model_state)
    result = _result(identity, choice, state, resumed_from, cache_hits=0, cache_misses=0,
                     skipped_images=skipped_train + skipped_val, n_train_images=len(train_ok), n_val_images=len(val_ok))
    return payload, result
