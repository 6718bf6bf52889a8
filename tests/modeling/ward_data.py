"""Bedside cameras for the ward tests: real MJPG video files of synthetic faces (or of an empty
bed), read by the same OpenCV code as an RTSP camera, and the tiny production model."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from annotation.models import Patient
from modeling.models import ModelVersion, Stage
from modeling.ward import register_source
from modeling.ward_models import CameraSource
from painsite.synthetic_faces.video import blank_frames, face_frames, write_video
from tests.modeling.tiny_model import make_model_version, tiny_model

FACE_SEED = 1  # a seed whose faces OpenCV's cascade finds (tests/modeling/tiny_model.py)


@functools.cache
def _video_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="painsite-ward-videos-"))


@functools.cache
def face_video(seed: int = FACE_SEED, nrs: int = 8) -> Path:
    """Two seconds of one patient's face at `nrs` (the same picture in every frame, so the face is
    found in every frame whatever moment is read)."""
    return write_video(_video_folder() / f"face-{seed}-{nrs}.avi", face_frames(seed=seed, nrs=nrs), fps=2, repeat=4)


@functools.cache
def empty_bed_video() -> Path:
    return write_video(_video_folder() / "empty-bed.avi", blank_frames(), fps=2, repeat=4)


def production_model() -> ModelVersion:
    return make_model_version(tiny_model(feature_path="float32"), name="v1", stage=Stage.PRODUCTION)


def make_camera(actor, *, bed: str, url: str | Path, patient: Patient | None, interval: int = 10) -> CameraSource:
    return register_source(
        actor=actor, name=f"camera {bed}", url=str(url), bed=bed, patient=patient, interval_seconds=interval
    )
