"""A tiny real model for the assessment tests, trained once per test process.

`modeling.ml.training.train` in head mode on a dozen synthetic faces at 64 px for two epochs:
seconds on a CPU, and every assessment code path (load, preprocess, predict, Grad-CAM) runs on it
exactly as on a full-size model.
"""

from __future__ import annotations

import atexit
import functools
import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from annotation.faces import detect_face
from modeling.ml.config import TrainConfig
from modeling.ml.data import Record, sha256_file
from modeling.ml.levels import PainLevels
from modeling.ml.training import TrainResult, train
from modeling.models import ModelVersion, RunStatus, Stage, TrainingRun
from painsite.synthetic_faces import draw_face, make_identity

IMAGE_SIZE = 64
TRAINING_NRS = (0, 2, 5, 8)


@functools.cache
def tiny_model(head_hidden: int = 32, image_size: int = IMAGE_SIZE, feature_path: str = "auto") -> TrainResult:
    """Weights trained on synthetic faces. Variants differ only in the head (or the input size),
    so they share the process-wide cached backbone and give different probabilities.
    `feature_path="float32"` spares a worker process building the int8 feature model (seconds)."""
    # No ImageNet weights in the test environment: do not spend time trying to download them.
    os.environ.setdefault("PAINSITE_OFFLINE", "1")
    folder = Path(tempfile.mkdtemp(prefix="painsite-tiny-model-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    levels = PainLevels.parse()
    rng = np.random.default_rng(7)
    records = []
    for patient in range(4):
        identity = make_identity(rng, "clinical")
        for nrs in TRAINING_NRS if patient < 3 else (0, 8):
            picture = draw_face(identity, nrs, rng, size=96)
            path = folder / f"p{patient}-{nrs}.jpg"
            picture.save(path, quality=90)
            records.append(
                Record(str(path), sha256_file(path), detect_face(picture), nrs, levels.level_of(nrs), f"p{patient}")
            )
    config = TrainConfig(
        mode="head",
        epochs=2,
        image_size=image_size,
        batch_size=8,
        seed=0,
        head_hidden=head_hidden,
        feature_path=feature_path,
    )
    train_records = [record for record in records if record.patient != "p3"]
    val_records = [record for record in records if record.patient == "p3"]
    return train(config, train_records, val_records, work_dir=folder / "run", cache_dir=None)


def make_face(*, nrs: int = 8, seed: int = 1, size: tuple[int, int] = (160, 120)) -> Image.Image:
    """A synthetic face (clearly marked SYNTHETIC) on a canvas of `size`, face left of centre.
    OpenCV's cascade finds the face for seeds 1, 3, 4, 6, 9, 11 and 14, not for 0, 2 or 7."""
    rng = np.random.default_rng(seed)
    face = draw_face(make_identity(rng, "clinical"), nrs, rng, size=min(size))
    canvas = Image.new("RGB", size, (200, 204, 208))
    canvas.paste(face, (0, 0))
    return canvas


def make_face_jpeg(*, nrs: int = 8, seed: int = 1, size: tuple[int, int] = (160, 120)) -> bytes:
    buffer = io.BytesIO()
    make_face(nrs=nrs, seed=seed, size=size).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def make_model_version(result: TrainResult, *, name: str = "v1", stage: str = Stage.PRODUCTION) -> ModelVersion:
    """Rows for a trained model, as the training runner writes them (only what assessment reads
    needs to be realistic)."""
    levels = PainLevels.parse()
    run = TrainingRun.objects.create(config={"mode": "head"}, status=RunStatus.SUCCEEDED, progress=1.0)
    return ModelVersion.objects.create(
        name=name,
        training_run=run,
        stage=stage,
        cohorts=["clinical"],
        mode="head",
        data_manifest={},
        data_manifest_sha256="0" * 64,
        split_sha256="0" * 64,
        label_rule="self_report_first",
        pain_levels=[{"name": name, "nrs": list(span)} for name, span in zip(levels.names, levels.ranges)],
        seed=0,
        device=result.device,
        backbone=result.backbone,
        backbone_sha256=result.backbone_sha256,
        weights_path=result.weights_path,
        weights_sha256=result.weights_sha256,
    )
