"""Shared ML-core test data: one small synthetic face data set and one trained head-mode model
per test session (VGG16 costs seconds to build, so the process-wide backbone is reused too)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest

from annotation.faces import detect_face
from modeling.ml.config import TrainConfig
from modeling.ml.data import Record, load_image, read_manifest
from modeling.ml.levels import PainLevels
from modeling.ml.splits import assign_splits, patient_max_levels
from modeling.ml.training import TrainResult, train
from painsite.synthetic_faces import write_dataset

# Faces are drawn at 128 px so the Haar cascade finds them (as on upload); the network sees the
# face crop at 64 px.
DRAWN_SIZE = 128
IMAGE_SIZE = 64
N_PATIENTS = 40
IMAGES_PER_PATIENT = 6
DATA_SEED = 1


@dataclass
class SyntheticData:
    manifest: Path
    records: list[Record]
    splits: dict[str, str]

    def split(self, name: str) -> list[Record]:
        return [record for record in self.records if self.splits[record.patient] == name]


@dataclass
class TrainedHead:
    data: SyntheticData
    config: TrainConfig
    result: TrainResult
    cache_dir: Path


def make_config(**overrides: object) -> TrainConfig:
    values: dict[str, object] = {"image_size": IMAGE_SIZE, "seed": 0}
    values.update(overrides)
    return TrainConfig(**values)


def make_synthetic_data(folder: Path, n_patients: int) -> SyntheticData:
    manifest = write_dataset(folder, n_patients, IMAGES_PER_PATIENT, DATA_SEED, size=DRAWN_SIZE)
    records = [
        dataclasses.replace(record, face_box=detect_face(load_image(record.path)))
        for record in read_manifest(manifest, data_dir=manifest.parent, levels=PainLevels.parse())
    ]
    splits = assign_splits(patient_max_levels(records), {}, seed=0)
    return SyntheticData(manifest, records, splits)


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory: pytest.TempPathFactory) -> SyntheticData:
    return make_synthetic_data(tmp_path_factory.mktemp("faces"), N_PATIENTS)


@pytest.fixture(scope="session")
def feature_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("feature-cache")


@pytest.fixture(scope="session")
def trained_head(
    synthetic_data: SyntheticData, feature_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> TrainedHead:
    config = make_config()
    result = train(
        config,
        synthetic_data.split("train"),
        synthetic_data.split("val"),
        work_dir=tmp_path_factory.mktemp("run"),
        cache_dir=feature_cache_dir,
    )
    return TrainedHead(synthetic_data, config, result, feature_cache_dir)
