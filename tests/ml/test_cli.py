"""The command line: train, evaluate and fill the feature cache from a folder and a manifest."""

from __future__ import annotations

import json

import pytest

from modeling.ml.cli import main

from .conftest import IMAGE_SIZE


def test_train_then_evaluate_from_the_command_line(synthetic_data, tmp_path, capsys):
    data_dir = synthetic_data.manifest.parent
    code = main(
        [
            "train",
            "--data-dir",
            str(data_dir),
            "--manifest",
            str(synthetic_data.manifest),
            "--work-dir",
            str(tmp_path / "run"),
            "--image-size",
            str(IMAGE_SIZE),
            "--epochs",
            "3",
            "--n-bootstrap",
            "50",
        ]
    )
    assert code == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["n_images"]["test"] > 0 and len(trained["history"]) == 3
    assert set(trained["metrics"]) >= {"combined", "clinical"}
    assert (tmp_path / "run" / "splits.json").exists()

    code = main(
        [
            "evaluate",
            "--data-dir",
            str(data_dir),
            "--manifest",
            str(synthetic_data.manifest),
            "--weights",
            trained["weights_path"],
            "--splits",
            str(tmp_path / "run" / "splits.json"),
            "--n-bootstrap",
            "50",
            "--output",
            str(tmp_path / "metrics.json"),
        ]
    )
    assert code == 0
    evaluated = json.loads((tmp_path / "metrics.json").read_text())
    assert evaluated["n_images"] == trained["n_images"]["test"]
    assert evaluated["metrics"]["combined"]["macro_auroc"] == trained["metrics"]["combined"]["macro_auroc"]


def test_features_fills_the_cache_once(synthetic_data, tmp_path, capsys):
    arguments = [
        "features",
        "--data-dir",
        str(synthetic_data.manifest.parent),
        "--manifest",
        str(synthetic_data.manifest),
        "--cache-dir",
        str(tmp_path),
        "--image-size",
        "32",
    ]
    assert main(arguments) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(arguments) == 0
    second = json.loads(capsys.readouterr().out)
    assert first["cache_misses"] == first["images"] and second["cache_hits"] == second["images"]


def test_a_bad_manifest_exits_with_a_clear_error(tmp_path, capsys):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("file,who\nx.jpg,P1\n")
    code = main(["features", "--data-dir", str(tmp_path), "--manifest", str(manifest), "--cache-dir", str(tmp_path)])
    assert code == 2
    assert "missing column" in capsys.readouterr().err


def test_a_bad_loader_workers_count_exits_with_a_clear_error(synthetic_data, tmp_path, capsys):
    code = main(
        [
            "train",
            "--data-dir",
            str(synthetic_data.manifest.parent),
            "--manifest",
            str(synthetic_data.manifest),
            "--work-dir",
            str(tmp_path),
            "--mode",
            "finetune",
            "--loader-workers",
            "-2",
        ]
    )
    assert code == 2
    assert "loader_workers must be -1 (auto) or at least 0" in capsys.readouterr().err
    assert not (tmp_path / "model.pt").exists()


@pytest.mark.slow
def test_a_new_training_seed_does_not_move_test_patients(synthetic_data, tmp_path, capsys):
    data_dir = synthetic_data.manifest.parent
    splits = {}
    for seed in (0, 1):
        code = main(
            [
                "train",
                "--data-dir",
                str(data_dir),
                "--manifest",
                str(synthetic_data.manifest),
                "--work-dir",
                str(tmp_path / f"seed{seed}"),
                "--cache-dir",
                str(tmp_path / "features"),
                "--image-size",
                str(IMAGE_SIZE),
                "--epochs",
                "1",
                "--no-evaluate",
                "--seed",
                str(seed),
            ]
        )
        assert code == 0
        trained = json.loads(capsys.readouterr().out)
        assert trained["split_seed"] == 0
        splits[seed] = json.loads((tmp_path / f"seed{seed}" / "splits.json").read_text())
    assert splits[0] == splits[1]
    assert {patient for patient, split in splits[0].items() if split == "test"}
