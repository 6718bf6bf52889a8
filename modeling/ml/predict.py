"""Loading a trained model and predicting pain-level probabilities.

Prediction uses the eval preset the model was trained with. A head-mode weights file holds only
the head plus the backbone's identity; the backbone is rebuilt and its sha256 checked, so a
random-init backbone is re-created from its seed exactly (or the load fails saying why).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.models import vgg16

from modeling.ml.backbone import Backbone, BackboneIdentity, WeightsFileError, backbone_for_identity
from modeling.ml.data import FaceBox, Record, UnreadableImage, load_image, sha256_file
from modeling.ml.device import DeviceChoice, choose_device, configure_threads
from modeling.ml.feature_paths import INT8_ONNXRUNTIME, int8_choice, onnxruntime_version, path_extractor
from modeling.ml.features import Extractor, FeatureCache, compute_vectors, extract_features
from modeling.ml.levels import PainLevels
from modeling.ml.network import FrozenFeatures, PainHead, PainNet, for_inference, trainable_copy_for_finetune
from modeling.ml.training import WEIGHTS_FORMAT
from modeling.ml.transforms import EvalPreset

logger = logging.getLogger(__name__)

REQUIRED_KEYS = ("format", "mode", "levels", "image_size", "preprocessing", "backbone", "head")


def read_weights_file(path: Path, expected_sha256: str | None = None) -> dict[str, Any]:
    if not path.is_file():
        raise WeightsFileError(f"model weights file {path} does not exist")
    if expected_sha256 is not None:
        found = sha256_file(path)
        if found != expected_sha256:
            raise WeightsFileError(
                f"model weights file {path} has sha256 {found[:12]}, expected {expected_sha256[:12]}: "
                f"it was changed or damaged after training"
            )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged zip or pickle raises many unrelated types
        raise WeightsFileError(f"cannot read model weights file {path}: {error}") from None
    if not isinstance(payload, dict) or payload.get("format") != WEIGHTS_FORMAT:
        raise WeightsFileError(f"{path} is not a PainSite model weights file (format {WEIGHTS_FORMAT})")
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing or ("head_state" not in payload and "model_state" not in payload):
        raise WeightsFileError(f"model weights file {path} is incomplete: missing {missing or ['weights']}")
    return payload


class LoadedModel:
    """A trained model ready to assess images. `network` is the whole classifier in float32
    (`network.features` is VGG16's conv stack, for Grad-CAM); `preset` its preprocessing.

    In head mode the VGG16 under the head is built on first use only: predicting records whose
    features are cached needs the head alone.
    """

    def __init__(
        self,
        *,
        payload: dict[str, Any],
        head: PainHead,
        backbone: Backbone | None,
        network: PainNet | None,
        identity: BackboneIdentity,
        choice: DeviceChoice,
        model_root: str | os.PathLike[str] | None = None,
    ) -> None:
        self.levels = PainLevels.parse(payload["levels"])
        self.mode: str = payload["mode"]
        self.image_size: int = int(payload["image_size"])
        self.preset = EvalPreset(self.image_size)
        self.backbone = identity
        self.choice = choice
        self.device = choice.describe()
        self.trained_precision: str = payload.get("precision", "float32")
        self.trained_feature_path: str = trained_feature_path(payload)
        # The path this model computes features on here (the head was trained on trained_feature_path).
        self.feature_path = choice.path
        self._model_root = model_root
        self._head = head
        self._lazy_backbone = backbone
        self._network = network
        self._network_lock = threading.Lock()
        self._fast_backbone: Extractor | None = None
        self._fast_network: PainNet | None = None

    @property
    def level_names(self) -> list[str]:
        return self.levels.names

    @property
    def network(self) -> PainNet:
        if self._network is None:
            with self._network_lock:
                if self._network is None:
                    assert self._lazy_backbone is not None
                    network = PainNet(FrozenFeatures(self._lazy_backbone.build()), self._head, round_features=True)
                    network.eval()
                    network.requires_grad_(False)
                    self._network = network.to(self.choice.device)
        return self._network

    def _head_backbone(self) -> Extractor:
        if self._fast_backbone is None:
            self._fast_backbone = path_extractor(
                self.choice, lambda: self.network.backbone, self.backbone, self.image_size, self._model_root
            )
        return self._fast_backbone

    @torch.inference_mode()
    def _probabilities_from_vectors(self, vectors: np.ndarray) -> np.ndarray:
        inputs = torch.from_numpy(np.asarray(vectors, dtype=np.float32)).to(self.choice.device)
        return torch.softmax(self._head(inputs), dim=1).cpu().numpy().astype(np.float64)

    @torch.inference_mode()
    def _probabilities_from_images(self, images: torch.Tensor) -> np.ndarray:
        if self.mode == "head":
            return self._probabilities_from_vectors(compute_vectors(self._head_backbone(), images, self.choice))
        if self._fast_network is None:
            self._fast_network = for_inference(
                self.network,
                device=self.choice.device,
                dtype=self.choice.dtype,
                channels_last=self.choice.channels_last,
            )
        batch = images.to(self.choice.device, dtype=self.choice.dtype)
        if self.choice.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with self.choice.autocast():
            logits = self._fast_network(batch).float()
        return torch.softmax(logits, dim=1).cpu().numpy().astype(np.float64)

    def predict_records(
        self, records: Sequence[Record], cache_dir: str | os.PathLike[str] | None = None, batch_size: int = 32
    ) -> np.ndarray:
        """Level probabilities, one row per record, in order. In head mode `cache_dir` reuses
        (and fills) the feature cache that training used. An unreadable image raises
        `UnreadableImage` naming the file."""
        if not records:
            return np.zeros((0, len(self.levels)))
        if self.mode == "head":
            cache = None
            if cache_dir is not None:
                # The int8 model, like the features, is kept beside the feature cache.
                self._model_root = self._model_root or cache_dir
                cache = FeatureCache(
                    cache_dir,
                    backbone_sha256=self.backbone.sha256,
                    preprocessing=self.preset.version,
                    precision=self.choice.cache_tag,
                )
            features = extract_features(
                records,
                extractor=self._head_backbone,
                choice=self.choice,
                preset=self.preset,
                cache=cache,
                batch_size=batch_size,
            )
            return self._probabilities_from_vectors(features.vectors)
        rows = []
        for start in range(0, len(records), batch_size):
            chunk = records[start : start + batch_size]
            images = torch.stack([self.preset(load_image(record.path), record.face_box) for record in chunk])
            rows.append(self._probabilities_from_images(images))
        return np.concatenate(rows)

    def predict_images(
        self, pil_images: Sequence[Image.Image], face_boxes: Sequence[FaceBox | None], batch_size: int = 32
    ) -> np.ndarray:
        """Level probabilities for many images at once, one row per image, in order: the network
        runs on batches of `batch_size` (a ward round assesses every due bed in one pass)."""
        if len(pil_images) != len(face_boxes):
            raise ValueError(f"{len(pil_images)} images but {len(face_boxes)} face boxes")
        if not pil_images:
            return np.zeros((0, len(self.levels)))
        rows = []
        for start in range(0, len(pil_images), batch_size):
            chunk = zip(pil_images[start : start + batch_size], face_boxes[start : start + batch_size])
            rows.append(self._probabilities_from_images(torch.stack([self.preset(image, box) for image, box in chunk])))
        return np.concatenate(rows)

    def predict_image(self, pil_image: Image.Image, face_box: FaceBox | None = None) -> np.ndarray:
        """Level probabilities for one image (face box (x, y, w, h) or None for the whole image)."""
        return self._probabilities_from_images(self.preset(pil_image, face_box).unsqueeze(0))[0]


def load_model(
    weights_path: str | os.PathLike[str],
    device: str = "auto",
    *,
    expected_sha256: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    precision: str = "auto",
) -> LoadedModel:
    """Load a weights file written by `training.train`. Corrupt, foreign or unreproducible files
    raise `WeightsFileError` naming the file and the reason.

    A head model's backbone is checked against this machine's at once: from the backbone
    fingerprints this process knows or finds in `cache_dir` (the feature cache training used),
    else by building it. `precision` as in `device.choose_device` (auto: bf16 where the hardware
    has it natively). A head trained on int8 features (`int8-onnxruntime`) is scored on int8
    features again, from the int8 model kept under `cache_dir`; where ONNX Runtime cannot run
    (no package, a GPU, an explicit `precision`) it gets float32/bf16 features, with a warning.
    """
    path = Path(weights_path)
    payload = read_weights_file(path, expected_sha256)
    configure_threads()
    choice = choose_device(device, precision)
    trained_path = trained_feature_path(payload)
    if payload.get("mode") == "head" and trained_path == INT8_ONNXRUNTIME and precision == "auto":
        # The head is scored on features from the path it was trained on.
        if choice.device.type == "cpu" and onnxruntime_version() is not None:
            choice = int8_choice()
        else:
            logger.warning(
                "%s was trained on %s features, which cannot be computed on %s here: using %s "
                "features (cosine >= 0.995 to int8's, docs/ml.md)",
                path,
                trained_path,
                choice.device,
                choice.path,
            )
    backbone = network = None
    try:
        identity = BackboneIdentity(**payload["backbone"])
        levels = PainLevels.parse(payload["levels"])
        head = PainHead(len(levels), hidden=int(payload["head"]["hidden"]), dropout=float(payload["head"]["dropout"]))
        if payload["mode"] == "head":
            head.load_state_dict(payload["head_state"])
            backbone = backbone_for_identity(identity, fingerprint_dir=cache_dir)
        else:
            with torch.device("meta"):
                vgg = vgg16(weights=None)
            network = PainNet(trainable_copy_for_finetune(vgg), head, round_features=False)
            network.load_state_dict(payload["model_state"], assign=True)
            network.eval()
            network.requires_grad_(False)
            network.to(choice.device)
    except WeightsFileError as error:
        raise WeightsFileError(f"{path}: {error}") from None
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise WeightsFileError(f"model weights file {path} is damaged or from another version: {error}") from None
    head.eval()
    head.requires_grad_(False)
    head.to(choice.device)
    if payload["mode"] == "head" and choice.path != trained_path:
        logger.info(
            "%s was trained with %s features; this machine computes %s: probabilities may differ slightly",
            path,
            trained_path,
            choice.path,
        )
    return LoadedModel(
        payload=payload,
        head=head,
        backbone=backbone,
        network=network,
        identity=identity,
        choice=choice,
        model_root=cache_dir,
    )


def trained_feature_path(payload: dict[str, Any]) -> str:
    """The feature path a weights file's head was trained on (files from before feature paths
    name only the precision)."""
    recorded = payload.get("feature_path")
    if isinstance(recorded, str) and recorded:
        return recorded
    return "bf16" if payload.get("precision") == "bfloat16" else "float32"


__all__ = ["LoadedModel", "UnreadableImage", "WeightsFileError", "load_model", "read_weights_file"]
