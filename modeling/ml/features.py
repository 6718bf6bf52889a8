"""The feature cache: the frozen backbone's 4096-d output, computed once per image.

A cached vector is keyed by (image sha256, backbone sha256, preprocessing version + image size,
feature path: float32, bf16 or int8 features differ), stored as float16 `.npy` files (8 KiB each) sharded by the first two hex
digits of the image sha256, written atomically (temp file + rename) so a crashed or concurrent
worker never leaves a half-written vector. A retrain after adding N images computes N vectors.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from modeling.ml.backbone import BackboneIdentity
from modeling.ml.data import Record, UnreadableImage, load_image
from modeling.ml.device import DeviceChoice
from modeling.ml.network import FEATURE_SIZE, FrozenFeatures, for_inference
from modeling.ml.transforms import EvalPreset

# Image batch -> (N, 4096) features: a float32/bf16 `FrozenFeatures` copy or the int8 model.
Extractor = Callable[[torch.Tensor], torch.Tensor]

logger = logging.getLogger(__name__)


class FeatureCache:
    """Float16 feature vectors on disk for one (backbone, preprocessing, feature path) key.
    `precision` is `DeviceChoice.cache_tag`: "float32", "bfloat16" or "int8-onnxruntime-<calibration>"."""

    def __init__(
        self, root: str | os.PathLike[str], *, backbone_sha256: str, preprocessing: str, precision: str
    ) -> None:
        self.root = Path(root)
        self.folder = self.root / backbone_sha256[:16] / f"{preprocessing}-{precision}"
        self.hits = 0
        self.misses = 0

    def path_for(self, image_sha256: str) -> Path:
        return self.folder / image_sha256[:2] / f"{image_sha256}.npy"

    def get(self, image_sha256: str) -> np.ndarray | None:
        path = self.path_for(image_sha256)
        try:
            vector = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, ValueError) as error:
            # A damaged entry is recomputed, not trusted and not fatal.
            logger.warning("ignoring damaged cached features %s: %s", path, error)
            self.misses += 1
            return None
        if vector.shape != (FEATURE_SIZE,) or vector.dtype != np.float16:
            logger.warning("ignoring cached features %s with shape %s, dtype %s", path, vector.shape, vector.dtype)
            self.misses += 1
            return None
        self.hits += 1
        return vector

    def put(self, image_sha256: str, vector: np.ndarray) -> None:
        path = self.path_for(image_sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
        try:
            with os.fdopen(handle, "wb") as out:
                np.save(out, np.asarray(vector, dtype=np.float16), allow_pickle=False)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


@dataclass
class ExtractedFeatures:
    """Float32 values of float16-rounded vectors, one row per kept record, in input order."""

    vectors: np.ndarray
    records: list[Record]
    skipped: list[str] = field(default_factory=list)
    hits: int = 0
    misses: int = 0


# The low-precision copy of the shared backbone, kept for the next extraction or assessment.
_inference_lock = threading.Lock()
_inference_copy: dict[tuple[str, str, torch.dtype, bool], FrozenFeatures] = {}


def forget_inference_copies() -> None:
    """Drop the low-precision backbone copy, as in a fresh process."""
    with _inference_lock:
        _inference_copy.clear()


def inference_extractor(backbone: FrozenFeatures, identity: BackboneIdentity, choice: DeviceChoice) -> FrozenFeatures:
    key = (identity.sha256, str(choice.device), choice.dtype, choice.channels_last)
    with _inference_lock:
        if key not in _inference_copy:
            _inference_copy.clear()
            _inference_copy[key] = for_inference(
                backbone, device=choice.device, dtype=choice.dtype, channels_last=choice.channels_last
            )
        return _inference_copy[key]


def _key(record: Record) -> str:
    # A record without a sha256 (its file was missing when the manifest was read) is tracked by
    # path, so two missing files are not mistaken for one image.
    return record.sha256 or f"path:{record.path}"


@torch.inference_mode()
def compute_vectors(extractor: Extractor, images: torch.Tensor, choice: DeviceChoice) -> np.ndarray:
    """Frozen features of a preprocessed batch, rounded to float16 like the cache stores them."""
    batch = images.to(choice.device, dtype=choice.dtype)
    if choice.channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    with choice.autocast():
        vectors = extractor(batch)
    return vectors.to(torch.float16).cpu().numpy()


def extract_features(
    records: Sequence[Record],
    *,
    extractor: Callable[[], Extractor],
    choice: DeviceChoice,
    preset: EvalPreset,
    cache: FeatureCache | None,
    batch_size: int = 32,
    skip_unreadable: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
) -> ExtractedFeatures:
    """Features for `records`, from the cache where present, computed (and cached) otherwise.

    `extractor` is called only if something must be computed, so a warm cache never builds the
    low-precision backbone copy. `on_batch(done, total)` runs after each computed batch (progress
    and cancellation). Unreadable images raise `UnreadableImage`, or are skipped and listed.
    """
    found: dict[str, np.ndarray] = {}
    todo: list[Record] = []
    queued: set[str] = set()
    for record in records:
        key = _key(record)
        if key in found or key in queued:
            continue
        vector = cache.get(record.sha256) if cache is not None and record.sha256 else None
        if vector is not None:
            found[key] = vector
        else:
            todo.append(record)
            queued.add(key)
    hits, misses = len(found), len(todo)

    skipped: list[str] = []
    unreadable: set[str] = set()
    model = extractor() if todo else None
    done = 0
    for start in range(0, len(todo), batch_size):
        chunk: list[Record] = []
        tensors: list[torch.Tensor] = []
        for record in todo[start : start + batch_size]:
            try:
                tensors.append(preset(load_image(record.path), record.face_box))
            except UnreadableImage as error:
                if not skip_unreadable:
                    raise
                skipped.append(str(error))
                unreadable.add(record.path)
                continue
            chunk.append(record)
        if chunk:
            assert model is not None
            vectors = compute_vectors(model, torch.stack(tensors), choice)
            for record, vector in zip(chunk, vectors):
                found[_key(record)] = vector
                if cache is not None and record.sha256:
                    cache.put(record.sha256, vector)
        done += len(todo[start : start + batch_size])
        if on_batch is not None:
            on_batch(done, len(todo))

    kept = [record for record in records if record.path not in unreadable]
    if kept:
        matrix = np.stack([found[_key(record)] for record in kept]).astype(np.float32)
    else:
        matrix = np.zeros((0, FEATURE_SIZE), dtype=np.float32)
    return ExtractedFeatures(matrix, kept, skipped, hits, misses)
