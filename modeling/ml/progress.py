"""What a training run tells its caller while it works, and how the caller stops it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


class TrainingCancelled(Exception):
    """`should_stop()` answered True. The last completed epoch's checkpoint is kept."""


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


class Reporter:
    """Turns work done into `Progress` events, and checks for cancellation.

    The epochs cover the share of the run after `fraction_from` (a cold head-mode run spends the
    share before it computing image features)."""

    def __init__(
        self, progress: Callable[[Progress], None] | None, should_stop: Callable[[], bool] | None, epochs: int
    ):
        self.progress = progress
        self.should_stop = should_stop
        self.epochs = epochs
        self.started = time.monotonic()
        self.fraction_from = 0.0
        self.batches_per_epoch = 1

    def check_cancelled(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise TrainingCancelled("training was cancelled")

    def report(
        self,
        *,
        fraction: float,
        epoch: int = 0,
        batch: int = 0,
        batches: int = 0,
        loss: float | None = None,
        message: str = "",
    ) -> None:
        if self.progress is None:
            return
        elapsed = time.monotonic() - self.started
        fraction = min(1.0, max(0.0, fraction))
        eta = elapsed / fraction * (1 - fraction) if fraction > 0.01 else None
        self.progress(Progress(epoch, self.epochs, batch, batches, loss, fraction, elapsed, eta, message))

    def start_epochs(self, *, fraction_from: float, batches_per_epoch: int) -> None:
        self.fraction_from = fraction_from
        self.batches_per_epoch = batches_per_epoch

    def epoch_fraction(self, epoch: int, batch: int) -> float:
        """The run's share done after `batch` batches of `epoch`."""
        done = (epoch - 1) * self.batches_per_epoch + batch
        return self.fraction_from + (1 - self.fraction_from) * done / (self.epochs * self.batches_per_epoch)

    def batch_done(self, *, epoch: int, batch: int, loss: float) -> None:
        self.report(
            fraction=self.epoch_fraction(epoch, batch),
            epoch=epoch,
            batch=batch,
            batches=self.batches_per_epoch,
            loss=loss,
        )

    def epoch_done(self, *, epoch: int, loss: float, val_macro_auroc: float | None) -> None:
        auroc_text = "n/a" if val_macro_auroc is None else f"{val_macro_auroc:.3f}"
        self.report(
            fraction=self.epoch_fraction(epoch, self.batches_per_epoch),
            epoch=epoch,
            batch=self.batches_per_epoch,
            batches=self.batches_per_epoch,
            loss=loss,
            message=f"epoch {epoch}: loss {loss:.4f}, validation macro AUROC {auroc_text}",
        )
