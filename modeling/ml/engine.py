"""The epoch loop, as torchvision's classification reference reads: `train_one_epoch`, `evaluate`,
and `fit`, a short loop that calls them, checkpoints and stops early.

Both training modes hand the loop a `Trainee`: the model and what it learns from. Head mode's
batches are cached 4096-d feature vectors, fine-tune mode's are augmented images.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from modeling.ml.checkpoints import EpochState, resume, save_checkpoint
from modeling.ml.config import OPTIMIZERS, TrainConfig
from modeling.ml.progress import Reporter

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Trainee:
    """A model, how it learns, and the data it learns and is validated on."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: nn.Module
    # Inputs of a batch -> logits (float32), moving them to the model's device on the way.
    forward: Callable[[torch.Tensor], torch.Tensor]
    # One epoch's training batches; called once per epoch, after the epoch's seed is set.
    batches: Callable[[], Iterable[Batch]]
    n_batches: int
    # The validation images' inputs in order, and their true levels.
    validation_inputs: Callable[[], Iterable[torch.Tensor]]
    levels_val: np.ndarray


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


def train_one_epoch(trainee: Trainee, *, epoch: int, reporter: Reporter) -> float:
    """One pass over the training batches; returns the mean loss per image."""
    trainee.model.train()
    loss_sum, seen = 0.0, 0
    for batch, (inputs, targets) in enumerate(trainee.batches(), start=1):
        reporter.check_cancelled()
        trainee.optimizer.zero_grad(set_to_none=True)
        loss = trainee.loss_fn(trainee.forward(inputs), targets)
        loss.backward()
        trainee.optimizer.step()
        loss_sum += loss.item() * len(targets)
        seen += len(targets)
        reporter.batch_done(epoch=epoch, batch=batch, loss=loss.item())
    return loss_sum / max(seen, 1)


@torch.inference_mode()
def evaluate(trainee: Trainee) -> tuple[np.ndarray | None, float | None]:
    """Level probabilities and the (class-weighted) loss on the validation images; (None, None)
    when there are none."""
    trainee.model.eval()
    if len(trainee.levels_val) == 0:
        return None, None
    logits = torch.cat([trainee.forward(inputs) for inputs in trainee.validation_inputs()])
    targets = torch.from_numpy(trainee.levels_val).to(logits.device)
    val_loss = float(nn.functional.cross_entropy(logits, targets, weight=trainee.loss_fn.weight))
    return torch.softmax(logits, dim=1).cpu().numpy(), val_loss


def fit(
    config: TrainConfig, trainee: Trainee, *, checkpoint_path: Path, fingerprint: str, reporter: Reporter
) -> tuple[EpochState, int]:
    """Train until early stopping or the last epoch, checkpointing after every epoch. Returns the
    final state (the best epoch's weights loaded into the model) and the epoch it resumed after
    (0 for a fresh start)."""
    state = resume(checkpoint_path, config, fingerprint, trainee.model, trainee.optimizer)
    resumed_from = state.next_epoch - 1
    # Every epoch reseeds from (seed, epoch): shuffling, dropout and augmentation then repeat
    # exactly after a resume, and the caller's random stream is left alone.
    with torch.random.fork_rng(devices=[]):
        for epoch in range(state.next_epoch, config.epochs + 1):
            if state.finished:
                break
            torch.manual_seed(config.seed * 1_000_003 + epoch)
            loss = train_one_epoch(trainee, epoch=epoch, reporter=reporter)
            probabilities, val_loss = evaluate(trainee)
            auroc = macro_auroc(trainee.levels_val, probabilities) if probabilities is not None else None
            state.end_epoch(
                epoch=epoch,
                loss=loss,
                val_macro_auroc=auroc,
                val_loss=val_loss,
                model=trainee.model,
                patience=config.patience,
                epochs=config.epochs,
            )
            save_checkpoint(checkpoint_path, config, fingerprint, epoch, trainee.model, trainee.optimizer, state)
            reporter.epoch_done(epoch=epoch, loss=loss, val_macro_auroc=auroc)
    if state.best_state is not None:
        trainee.model.load_state_dict(state.best_state)
    return state, resumed_from
