"""Epoch checkpoints and early stopping: what a redelivered training task resumes from.

A checkpoint is a plain dict carrying the config and a fingerprint of the data, so a run never
resumes from another run's file. `EpochState` is the part of it that early stopping keeps.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modeling.ml.backbone import WeightsFileError
from modeling.ml.config import TrainConfig
from modeling.ml.data import Record

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "painsite-checkpoint/1"


class CheckpointError(WeightsFileError):
    """A checkpoint cannot be resumed from. Names the file."""


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
class EpochState:
    """Early stopping's memory: the best epoch so far and how long ago it was."""

    next_epoch: int = 1
    best_score: float = float("-inf")
    best_epoch: int = 0
    best_auroc: float | None = None
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    finished: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)

    def end_epoch(
        self,
        *,
        epoch: int,
        loss: float,
        val_macro_auroc: float | None,
        val_loss: float | None,
        model: nn.Module,
        patience: int,
        epochs: int,
    ) -> None:
        # Validation AUROC decides; without one (no validation patients, or a single level among
        # them) the lower validation loss does, and without that, the latest epoch.
        if val_macro_auroc is not None:
            score = val_macro_auroc
        elif val_loss is not None:
            score = -val_loss
        else:
            score = float(epoch)
        self.history.append({"epoch": epoch, "loss": loss, "val_macro_auroc": val_macro_auroc, "val_loss": val_loss})
        if score > self.best_score + 1e-9:
            self.best_score, self.best_epoch, self.best_auroc = score, epoch, val_macro_auroc
            self.best_state = copy.deepcopy(model.state_dict())
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        self.next_epoch = epoch + 1
        self.finished = self.bad_epochs >= patience or epoch >= epochs


def resume(
    path: Path, config: TrainConfig, fingerprint: str, model: nn.Module, optimizer: torch.optim.Optimizer
) -> EpochState:
    """Load `path` into the model and optimizer when it exists; a fresh state otherwise."""
    if not path.exists():
        return EpochState()
    checkpoint = read_checkpoint(path)
    if checkpoint.get("config") != config.to_dict() or checkpoint.get("data_fingerprint") != fingerprint:
        raise CheckpointError(
            f"checkpoint {path} belongs to a run with another configuration or other data; "
            f"use a fresh work folder or delete it"
        )
    try:
        model.load_state_dict(checkpoint["model_state"])
        optimizer.load_state_dict(checkpoint["optimizer_state"])
        state = EpochState(
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
        raise CheckpointError(
            f"checkpoint {path} is incomplete or damaged ({error}); delete it to start over"
        ) from None
    logger.info("resuming from %s after epoch %d", path, state.next_epoch - 1)
    return state


def save_checkpoint(
    path: Path,
    config: TrainConfig,
    fingerprint: str,
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: EpochState,
) -> None:
    save_atomically(
        {
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
        },
        path,
        durable=False,
    )
