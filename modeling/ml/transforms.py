"""Preprocessing presets, in the style of torchvision's references/classification/presets.py.

Both presets crop the face with a margin (the full image when no face box is known), resize to a
square `image_size` and normalise with the ImageNet statistics the VGG16 backbone was trained
with. Only the fine-tune preset augments; the eval preset is what features, validation and
assessment use, so a model sees at inference exactly what it saw in training.
"""

from __future__ import annotations

import torch
from PIL import Image
from torchvision.transforms import v2 as T
from torchvision.transforms.v2 import functional as F

from modeling.ml.data import FaceBox

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Share of the face box added on every side: the Haar box stops at the brows and the chin, and
# brow lowering and forehead wrinkles carry pain signal (the PSPI action units).
FACE_MARGIN = 0.2
# Part of every feature-cache key: bump it whenever the eval preset changes what pixels reach
# the network, so stale cached features are never reused.
PREPROCESSING_VERSION = "crop0.2-bilinear-imagenet-v1"


def face_crop_box(image_size: tuple[int, int], face_box: FaceBox | None, margin: float = FACE_MARGIN) -> FaceBox:
    """The (x, y, w, h) region that is cropped: the face box grown by `margin`, clipped to the
    image; the whole image when there is no usable face box."""
    width, height = image_size
    if face_box is None:
        return (0, 0, width, height)
    x, y, w, h = face_box
    left = max(0, int(round(x - margin * w)))
    top = max(0, int(round(y - margin * h)))
    right = min(width, int(round(x + w + margin * w)))
    bottom = min(height, int(round(y + h + margin * h)))
    if right - left < 2 or bottom - top < 2:
        return (0, 0, width, height)
    return (left, top, right - left, bottom - top)


def crop_face(image: Image.Image, face_box: FaceBox | None, margin: float = FACE_MARGIN) -> Image.Image:
    x, y, w, h = face_crop_box(image.size, face_box, margin)
    return image.crop((x, y, x + w, y + h))


class EvalPreset:
    """Face crop, resize, ImageNet normalisation. Deterministic."""

    def __init__(self, image_size: int = 224) -> None:
        self.image_size = image_size
        self.normalize = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)

    @property
    def version(self) -> str:
        return f"{PREPROCESSING_VERSION}-{self.image_size}px"

    def __call__(self, image: Image.Image, face_box: FaceBox | None = None) -> torch.Tensor:
        face = crop_face(image.convert("RGB"), face_box)
        face = face.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
        return self.normalize(F.to_dtype(F.pil_to_tensor(face), torch.float32, scale=True))


class FinetunePreset(EvalPreset):
    """The eval preset plus light augmentation: horizontal flip, a small rotation and scale,
    and colour jitter. Faces stay faces: no crops that could cut the brows or the mouth away."""

    def __init__(self, image_size: int = 224) -> None:
        super().__init__(image_size)
        self.augment = T.Compose(
            [
                T.RandomHorizontalFlip(),
                T.RandomAffine(degrees=10, scale=(0.9, 1.1)),
                T.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
            ]
        )

    def __call__(self, image: Image.Image, face_box: FaceBox | None = None) -> torch.Tensor:
        face = crop_face(image.convert("RGB"), face_box)
        face = face.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
        face = self.augment(face)
        return self.normalize(F.to_dtype(F.pil_to_tensor(face), torch.float32, scale=True))
