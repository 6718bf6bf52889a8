"""Training: learns on held-out patients, resumes exactly, reports progress, fails clearly."""

from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest
import torch

from modeling.ml.backbone import IMAGENET
from modeling.ml.config import TrainConfig
from modeling.ml.data import Record
from modeling.ml.device import DeviceChoice, choose_device
from modeling.ml.metrics import evaluate_predictions
from modeling.ml.predict import load_model
from modeling.ml.splits import PatientLeakage
from modeling.ml.training import CHECKPOINT_NAME, CheckpointError, TrainingCancelled, loader_workers, macro_auroc, train

from .conftest import make_config, make_synthetic_data

# The held-out estimate needs many test patients: 300 patients give 60 (40 give 8, whose macro
# AUROC swings by more than 0.1 from one patient split to the next).
HELD_OUT_PATIENTS = 300
# ImageNet features: the requirement. A random-init backbone (no weights, as in CI) gave
# 0.583-0.700 on 15 data and split seeds at this size (float32 features: the same), the lower
# bound of the bootstrap 95% CI never below 0.528; this data set and split: 0.658 (docs/ml.md,
# bench/ml_heldout.py). Its features carry far less of the expression than ImageNet's.
IMAGENET_MIN_HELD_OUT_AUROC = 0.8
RANDOM_INIT_MIN_HELD_OUT_AUROC = 0.58


def test_a_head_model_learns_the_pain_levels_of_its_training_patients(trained_head):
    train_records = trained_head.data.split("train")
    model = load_model(trained_head.result.weights_path)
    probabilities = model.predict_records(train_records, cache_dir=trained_head.cache_dir)
    assert macro_auroc(np.array([r.level for r in train_records]), probabilities) > 0.9


def test_a_head_model_ranks_held_out_patients_well_above_chance(tmp_path):
    data = make_synthetic_data(tmp_path / "faces", HELD_OUT_PATIENTS)
    test = data.split("test")
    result = train(
        make_config(), data.split("train"), data.split("val"), work_dir=tmp_path / "run", cache_dir=tmp_path / "cache"
    )
    model = load_model(result.weights_path, cache_dir=tmp_path / "cache")
    probabilities = model.predict_records(test, cache_dir=tmp_path / "cache")
    metrics = evaluate_predictions(
        [r.level for r in test], [r.nrs for r in test], probabilities, [r.patient for r in test], model.level_names
    )
    assert metrics["n_patients"] >= 50
    low, _ = metrics["macro_auroc_ci"]
    assert low > 0.5, f"macro AUROC {metrics['macro_auroc']:.3f}, 95% CI from {low:.3f}: not above chance"
    least = IMAGENET_MIN_HELD_OUT_AUROC if result.backbone == IMAGENET else RANDOM_INIT_MIN_HELD_OUT_AUROC
    assert metrics["macro_auroc"] > least


def test_the_result_describes_the_run(trained_head):
    result = trained_head.result
    assert len(result.weights_sha256) == 64
    assert result.cache_misses + result.cache_hits == result.n_train_images + result.n_val_images
    assert 1 <= result.best_epoch <= len(result.history)
    assert [entry["epoch"] for entry in result.history] == list(range(1, len(result.history) + 1))


def test_a_warm_retrain_computes_no_features_and_gives_the_same_weights(trained_head, tmp_path):
    data = trained_head.data
    again = train(
        trained_head.config, data.split("train"), data.split("val"), work_dir=tmp_path, cache_dir=trained_head.cache_dir
    )
    assert again.cache_misses == 0
    first = torch.load(trained_head.result.weights_path, weights_only=True)["head_state"]
    second = torch.load(again.weights_path, weights_only=True)["head_state"]
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_resuming_from_a_checkpoint_gives_the_same_final_weights(trained_head, tmp_path):
    data = trained_head.data
    config = make_config(epochs=6, patience=100)
    uninterrupted = train(
        config, data.split("train"), data.split("val"), work_dir=tmp_path / "a", cache_dir=trained_head.cache_dir
    )
    events = []

    def stop_in_epoch_4() -> bool:
        return any(event.epoch == 4 for event in events)

    with pytest.raises(TrainingCancelled):
        train(
            config,
            data.split("train"),
            data.split("val"),
            work_dir=tmp_path / "b",
            cache_dir=trained_head.cache_dir,
            progress=events.append,
            should_stop=stop_in_epoch_4,
        )
    resumed = train(
        config, data.split("train"), data.split("val"), work_dir=tmp_path / "b", cache_dir=trained_head.cache_dir
    )
    assert resumed.resumed_from_epoch == 3
    a = torch.load(uninterrupted.weights_path, weights_only=True)["head_state"]
    b = torch.load(resumed.weights_path, weights_only=True)["head_state"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history == uninterrupted.history


def test_progress_events_move_forward_and_end_at_one(trained_head, tmp_path):
    data = trained_head.data
    events = []
    train(
        make_config(epochs=3, patience=100),
        data.split("train"),
        data.split("val"),
        work_dir=tmp_path,
        cache_dir=trained_head.cache_dir,
        progress=events.append,
    )
    fractions = [event.fraction for event in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {event.epoch for event in events} >= {1, 2, 3}
    assert all(event.epochs == 3 for event in events)
    assert any(event.eta is not None for event in events)


def test_the_last_progress_event_names_the_last_epoch_that_ran_when_early_stopping_ends_the_run(trained_head, tmp_path):
    data = trained_head.data
    events = []
    result = train(
        make_config(epochs=60, patience=1),
        data.split("train"),
        data.split("val"),
        work_dir=tmp_path,
        cache_dir=trained_head.cache_dir,
        progress=events.append,
    )
    ran = len(result.history)
    assert ran < 60, "patience 1 over 60 epochs should stop early"
    assert result.best_epoch < ran
    assert events[-1].epoch == ran == result.history[-1]["epoch"]
    assert f"best epoch {result.best_epoch}" in events[-1].message


def test_a_corrupt_checkpoint_is_a_clear_error(trained_head, tmp_path):
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"half a checkpoint")
    data = trained_head.data
    with pytest.raises(CheckpointError, match=CHECKPOINT_NAME):
        train(
            make_config(epochs=2),
            data.split("train"),
            data.split("val"),
            work_dir=tmp_path,
            cache_dir=trained_head.cache_dir,
        )


def test_unknown_mode_and_optimizer_list_the_valid_options():
    with pytest.raises(ValueError, match="valid options: head, finetune"):
        TrainConfig(mode="everything")
    with pytest.raises(ValueError, match="valid options: adamw, adam, sgd"):
        TrainConfig(optimizer="lbfgs")


def test_a_missing_image_fails_naming_it_or_is_skipped_with_a_count(trained_head, tmp_path):
    data = trained_head.data
    missing = Record(
        path=str(tmp_path / "gone.jpg"),
        sha256="",
        face_box=None,
        nrs=2,
        level=1,
        patient=data.split("train")[0].patient,
    )
    train_records = [*data.split("train"), missing]
    with pytest.raises(ValueError, match="gone.jpg"):
        train(
            make_config(epochs=1),
            train_records,
            data.split("val"),
            work_dir=tmp_path / "a",
            cache_dir=trained_head.cache_dir,
        )
    result = train(
        make_config(epochs=1, skip_unreadable=True),
        train_records,
        data.split("val"),
        work_dir=tmp_path / "b",
        cache_dir=trained_head.cache_dir,
    )
    assert len(result.skipped_images) == 1 and "gone.jpg" in result.skipped_images[0]


def test_a_patient_in_both_train_and_validation_is_refused(trained_head, tmp_path):
    data = trained_head.data
    with pytest.raises(PatientLeakage):
        train(
            make_config(epochs=1),
            data.split("train"),
            data.split("train")[:2],
            work_dir=tmp_path,
            cache_dir=trained_head.cache_dir,
        )


def test_fine_tuning_loads_images_in_processes_on_cuda_only_unless_told(monkeypatch):
    cpu, cuda = choose_device("cpu", "float32"), DeviceChoice(torch.device("cuda"), torch.float32, True)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(6)))
    assert loader_workers(make_config(mode="finetune"), cpu) == 0
    assert loader_workers(make_config(mode="finetune"), cuda) == 5
    assert loader_workers(make_config(mode="finetune", loader_workers=3), cpu) == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    assert loader_workers(make_config(mode="finetune"), cuda) == 16
    with pytest.raises(ValueError, match="loader_workers"):
        make_config(loader_workers=-2)


def test_fine_tuning_with_loading_processes_repeats_exactly(synthetic_data, tmp_path):
    records = synthetic_data.split("train")[:6]
    config = make_config(mode="finetune", epochs=1, image_size=32, batch_size=3, loader_workers=2, precision="float32")
    weights = [
        train(config, records, synthetic_data.split("val")[:2], work_dir=tmp_path / name, cache_dir=None).weights_sha256
        for name in ("first", "second")
    ]
    assert weights[0] == weights[1]


def _fine_tune_in_this_process(train_records, val_records, work_dir, answers) -> None:
    config = make_config(mode="finetune", epochs=1, image_size=32, batch_size=3, loader_workers=2, precision="float32")
    try:
        result = train(config, train_records, val_records, work_dir=work_dir, cache_dir=None)
        answers.put(("trained", loader_workers(config, choose_device("cpu", "float32")), result.weights_sha256))
    except Exception as error:  # reported to the test, which fails with it
        answers.put(("failed", repr(error), None))


def test_fine_tuning_in_a_daemonic_process_loads_its_images_itself(synthetic_data, tmp_path):
    """A task in Celery's prefork pool runs in a daemonic process, which may not start processes."""
    # spawn, not fork: a child forked from this process, whose OpenMP threads have run, can hang
    # in its first parallel region.
    context = multiprocessing.get_context("spawn")
    answers = context.Queue()
    child = context.Process(
        target=_fine_tune_in_this_process,
        daemon=True,
        args=(synthetic_data.split("train")[:6], synthetic_data.split("val")[:2], tmp_path, answers),
    )
    child.start()
    outcome, workers, sha256 = answers.get(timeout=300)
    child.join(timeout=60)
    assert outcome == "trained", workers
    assert workers == 0 and len(sha256) == 64


def test_finetune_mode_trains_the_last_block_and_saves_the_full_network(synthetic_data, tmp_path):
    records = synthetic_data.split("train")[:6]
    result = train(
        make_config(mode="finetune", epochs=1, image_size=32, batch_size=6),
        records,
        [],
        work_dir=tmp_path,
        cache_dir=None,
    )
    payload = torch.load(result.weights_path, weights_only=True)
    assert payload["mode"] == "finetune" and "model_state" in payload
    model = load_model(result.weights_path)
    probabilities = model.predict_records(records[:2])
    assert probabilities.shape == (2, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
