"""The body of the training task: one attempt at a TrainingRun, from claim to model version.

An attempt claims a queued run (only one claim can win, so a duplicated message is harmless),
keeps a heartbeat while the ML core trains, and finishes with one of: an immutable ModelVersion
whose weights file is already in place, a cancelled run, or a failed run with its error text.
Nothing half-written survives: weights are published with an atomic rename and removed again if
the database refuses the version; checkpoints are removed when the run ends. A worker killed
mid-run leaves its checkpoints for the next attempt (see services.reap_stale_runs).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from modeling import artifacts, evaluations, selectors
from modeling.evaluations import evaluate
from modeling.ml.config import TrainConfig
from modeling.ml.data import Record
from modeling.models import ModelVersion, RunStatus, Split, TrainingRun, TrainingSnapshot
from modeling.publishing import LostOwnership, cancelled, publish
from painsite.core.services import record_event

logger = logging.getLogger(__name__)

# Share of the progress bar for training; evaluation and publishing fill the rest.
TRAINING_SHARE = 0.9
# Seconds between progress writes to the run row within an epoch.
PROGRESS_WRITE_INTERVAL = 1.0
# Seconds between reports of the Celery task state: a copy of the row for broker-side monitoring
# (and the console of `manage.py train --inline`), one result-backend write each.
STATE_REPORT_INTERVAL = 5.0

StateReporter = Callable[[dict[str, Any]], None]


class Attempt:
    """One worker's claim on a run: every write is conditional on still holding it."""

    def __init__(self, run: TrainingRun) -> None:
        self.run_id = run.pk
        self.number = run.attempts

    def update(self, **fields: Any) -> None:
        updated = TrainingRun.objects.filter(pk=self.run_id, status=RunStatus.RUNNING, attempts=self.number).update(
            **fields
        )
        if not updated:
            raise LostOwnership(f"training run {self.run_id} is no longer held by attempt {self.number}")


class Heartbeat(threading.Thread):
    """Writes the run's heartbeat and reads its cancel flag in the background, so the training
    loop's `should_stop` costs no query and a long feature extraction still shows signs of life."""

    # The cancel flag is read 4 times a second (one indexed read by key): a cancel is seen at once.
    def __init__(self, attempt: Attempt, *, interval: float, poll: float = 0.25) -> None:
        super().__init__(name=f"heartbeat-run-{attempt.run_id}", daemon=True)
        self.attempt = attempt
        self.interval = interval
        self.poll = min(poll, interval)
        self.cancel_requested = threading.Event()
        self.lost = threading.Event()
        self._stop_event = threading.Event()

    def run(self) -> None:
        last_beat = time.monotonic()
        try:
            while not self._stop_event.wait(self.poll):
                try:
                    if time.monotonic() - last_beat >= self.interval:
                        self.attempt.update(heartbeat_at=timezone.now())
                        last_beat = time.monotonic()
                    state = TrainingRun.objects.filter(pk=self.attempt.run_id).values("cancel_requested").first()
                    if state is None or state["cancel_requested"]:
                        self.cancel_requested.set()
                except LostOwnership:
                    self.lost.set()
                    return
                except Exception:  # a database hiccup must not kill the heartbeat for good
                    logger.exception("heartbeat of training run %s failed; retrying", self.attempt.run_id)
        finally:
            connection.close()

    def should_stop(self) -> bool:
        return self.cancel_requested.is_set() or self.lost.is_set()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)


def execute(run_id: int, *, report_state: StateReporter | None = None) -> str:
    """Run one attempt of training run `run_id`; returns the run's status afterwards."""
    run = claim(run_id)
    if run is None:
        status = TrainingRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        logger.info("training run %s not claimed (status %s): nothing to do", run_id, status)
        return status or "missing"
    attempt = Attempt(run)
    heartbeat = Heartbeat(attempt, interval=settings.PAINSITE_TRAINING_HEARTBEAT_SECONDS)
    heartbeat.start()
    try:
        _train_and_publish(run, attempt, heartbeat, report_state)
    except LostOwnership:
        logger.warning("training run %s: attempt %s lost its claim; stopping", run_id, attempt.number)
        return "superseded"
    except BaseException as error:
        if heartbeat.lost.is_set():
            return "superseded"
        if heartbeat.cancel_requested.is_set() or _is_cancellation(error):
            said = str(error) if _is_cancellation(error) and str(error).startswith("cancelled") else ""
            _finish_without_version(attempt, RunStatus.CANCELLED, message=said or "cancelled during training")
            return RunStatus.CANCELLED
        logger.exception("training run %s failed", run_id)
        _finish_without_version(attempt, RunStatus.FAILED, message="failed", error=_error_text(error))
        if not isinstance(error, Exception):  # SystemExit, KeyboardInterrupt: let them through
            raise
        return RunStatus.FAILED
    finally:
        heartbeat.stop()
    return RunStatus.SUCCEEDED


def claim(run_id: int) -> TrainingRun | None:
    """Move a queued run to running for this worker. Of two deliveries of the same run, one wins."""
    now = timezone.now()
    claimed = TrainingRun.objects.filter(pk=run_id, status=RunStatus.QUEUED, cancel_requested=False).update(
        status=RunStatus.RUNNING,
        attempts=F("attempts") + 1,
        heartbeat_at=now,
        started_at=Coalesce("started_at", now),
        worker=f"{socket.gethostname()}:{os.getpid()}",
        message="preparing the data",
        error="",
    )
    return TrainingRun.objects.get(pk=run_id) if claimed else None


def _is_cancellation(error: BaseException) -> bool:
    from modeling.ml.training import TrainingCancelled

    return isinstance(error, TrainingCancelled)


def _error_text(error: BaseException) -> str:
    lines = traceback.format_exception(error)
    return f"{type(error).__name__}: {error}\n\n" + "".join(lines[-12:])


def _finish_without_version(attempt: Attempt, status: str, *, message: str, error: str = "") -> None:
    try:
        attempt.update(status=status, message=message, error=error, finished_at=timezone.now(), eta_seconds=None)
    except LostOwnership:
        return
    artifacts.remove_run_files(attempt.run_id)
    run = TrainingRun.objects.get(pk=attempt.run_id)
    record_event(actor=None, action=f"training.{status}", target=run, details={"attempt": attempt.number})


# ---------------------------------------------------------------------------------------------


def _train_and_publish(
    run: TrainingRun, attempt: Attempt, heartbeat: Heartbeat, report_state: StateReporter | None
) -> ModelVersion:
    from modeling.ml.training import train

    images = _usable_images(run)
    train_records = _records(images, run.config["cohorts"], Split.TRAIN)
    val_records = _records(images, run.config["cohorts"], Split.VAL)
    test_records = _records(images, None, Split.TEST)
    config = train_config_for(run.config)
    # The claim's "preparing the data" stands until the ML core's first event is written.
    progress = ProgressWriter(attempt, epochs=config.epochs, report_state=report_state)

    started = time.perf_counter()
    result = train(
        config,
        train_records,
        val_records,
        work_dir=artifacts.run_work_dir(run.pk),
        cache_dir=artifacts.feature_cache_dir(),
        progress=progress,
        should_stop=heartbeat.should_stop,
    )
    # The progress writes happened inside train(), but they are bookkeeping, not ML core.
    ml_seconds = time.perf_counter() - started - progress.seconds
    if result.backbone == "random-init":
        logger.warning(
            "training run %s: NO IMAGENET VGG16 WEIGHTS FOUND; the backbone is randomly initialised "
            "(set PAINSITE_VGG16_WEIGHTS or TORCH_HOME)",
            run.pk,
        )

    progress.write_final(progress=TRAINING_SHARE, message="evaluating on the locked test patients", eta_seconds=None)
    started = time.perf_counter()
    predictions, metrics = evaluate(
        result.weights_path, test_records, seed=config.seed, should_stop=heartbeat.should_stop
    )
    ml_seconds += time.perf_counter() - started
    if heartbeat.should_stop():
        raise LostOwnership("stopped") if heartbeat.lost.is_set() else cancelled()

    return publish(run, attempt, images, result, config, predictions, metrics, ml_seconds)


def train_config_for(config: dict[str, Any]) -> TrainConfig:
    return TrainConfig(
        mode=config["mode"],
        epochs=config["epochs"],
        lr=config["lr"],
        batch_size=config["batch_size"],
        seed=config["seed"],
        image_size=config["image_size"],
        patience=config["patience"],
        levels=run_levels(config),
        feature_path=settings.PAINSITE_FEATURE_PATH,
    )


def run_levels(config: dict[str, Any]) -> str:
    return config.get("pain_levels") or settings.PAINSITE_PAIN_LEVELS


def _usable_images(run: TrainingRun) -> list[dict[str, Any]]:
    """The run's snapshot, less patients who withdrew consent since it was taken."""
    images = TrainingSnapshot.objects.values_list("images", flat=True).get(run=run)
    withdrawn = selectors.withdrawn_patient_codes({item["patient"] for item in images})
    return [item for item in images if item["patient"] not in withdrawn]


def _records(images: list[dict[str, Any]], cohorts: list[str] | None, split: str) -> list[Record]:
    return evaluations.image_records(
        [item for item in images if item["split"] == split and (cohorts is None or item["cohort"] in cohorts)]
    )


class ProgressWriter:
    """Receives the ML core's progress events (one per batch: hundreds a second in a warm
    retrain) and writes them to the run row at the first event of every epoch, so the row's
    epoch never falls behind the last checkpoint a resumed attempt starts from, and otherwise
    at most once every PROGRESS_WRITE_INTERVAL; a warning is written at once. The Celery state
    is reported at most once every STATE_REPORT_INTERVAL. The last event is never lost to the
    throttle: `write_final` writes it.

    `seconds` is the time spent here: bookkeeping, which `ml_seconds` must not count."""

    def __init__(self, attempt: Attempt, *, epochs: int, report_state: StateReporter | None) -> None:
        self.attempt = attempt
        self.epochs = epochs
        self.report_state = report_state
        self.last_write = -PROGRESS_WRITE_INTERVAL
        self.last_report = -STATE_REPORT_INTERVAL
        self.last_epoch = -1
        self.warning = ""
        self.unwritten = None
        self.seconds = 0.0

    def __call__(self, event) -> None:
        started = time.perf_counter()
        warning = event.message.startswith("WARNING")
        if warning:
            self.warning = event.message  # shown with every later message: it must not scroll away
        if warning or event.epoch != self.last_epoch or started - self.last_write >= PROGRESS_WRITE_INTERVAL:
            fields = self._fields(event)
            self.attempt.update(**fields)
            self.last_write, self.last_epoch, self.unwritten = started, event.epoch, None
            if self.report_state is not None and started - self.last_report >= STATE_REPORT_INTERVAL:
                self.report_state(_state_of(fields))
                self.last_report = started
        else:
            self.unwritten = event
        self.seconds += time.perf_counter() - started

    def write_final(self, **fields: Any) -> None:
        """Write `fields` together with the last event if the throttle held it back."""
        if self.unwritten is not None:
            fields = {**self._fields(self.unwritten), **fields}
            self.unwritten = None
        self.attempt.update(**fields)
        if self.report_state is not None:
            self.report_state(_state_of(fields))

    def _fields(self, event) -> dict[str, Any]:
        loss = None if event.loss is None or event.loss != event.loss else float(event.loss)
        return {
            "progress": min(max(float(event.fraction), 0.0), 1.0) * TRAINING_SHARE,
            "epoch": int(event.epoch),
            "loss": loss,
            "eta_seconds": None if event.eta is None else max(float(event.eta), 0.0),
            "message": "; ".join(filter(None, [self.warning, _progress_message(event, loss)]))[:500],
            "heartbeat_at": timezone.now(),
        }


def _state_of(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if key != "heartbeat_at"}


def _progress_message(event, loss: float | None) -> str:
    if not event.epoch:
        return "" if event.message.startswith("WARNING") else event.message
    text = f"epoch {event.epoch}/{event.epochs}"
    if event.batches:
        text += f", batch {event.batch}/{event.batches}"
    if loss is not None:
        text += f", loss {loss:.4f}"
    return text
