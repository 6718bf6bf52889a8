"""Real photographs for the face detector and the heatmap: the ones scikit-image ships inside its
wheel (no network), in the encodings an upload can arrive in.

- `astronaut()`: Eileen Collins, 512x512, one frontal face at ASTRONAUT_FACE.
- `lfw_faces()` / `lfw_non_faces()`: scikit-image's LFW subset, 100 face crops and 100 non-face
  crops of 25x25 px, enlarged and set on a grey canvas so the face fills about half of it.
- `no_face_photos()`: scikit-image photos with no face large enough to assess.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import skimage
from PIL import Image
from skimage import data as skimage_data

# Hand-checked on the photo: her face, brow to chin.
ASTRONAUT_FACE = (166, 56, 116, 115)
NO_FACE_PHOTOS = (
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "brick",
    "grass",
    "coins",
    "horse",
    "immunohistochemistry",
    "moon",
    "text",
    "page",
)
LFW_SIDE = 120
LFW_MARGIN = 40


def astronaut() -> Image.Image:
    return Image.fromarray(skimage_data.astronaut())


def _reopened(picture: Image.Image, fmt: str, **options) -> Image.Image:
    buffer = io.BytesIO()
    picture.save(buffer, fmt, **options)
    return Image.open(io.BytesIO(buffer.getvalue()))


def encodings(picture: Image.Image) -> dict[str, Image.Image]:
    """The photo as Pillow returns it after decoding each kind of file a camera or a PACS sends."""
    rgba = picture.convert("RGBA")
    rgba.putalpha(255)
    transparent_corner = picture.convert("RGBA")
    alpha = np.full(picture.size[::-1], 255, dtype=np.uint8)
    alpha[:40, :40] = 0
    transparent_corner.putalpha(Image.fromarray(alpha))
    return {
        "png-rgb": _reopened(picture.convert("RGB"), "PNG"),
        "png-rgba": _reopened(rgba, "PNG"),
        "png-rgba-transparent-corner": _reopened(transparent_corner, "PNG"),
        "png-palette": _reopened(picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=256), "PNG"),
        "png-grayscale": _reopened(picture.convert("L"), "PNG"),
        "png-16-bit-grayscale": _reopened(
            Image.fromarray(np.asarray(picture.convert("L"), dtype=np.uint16) * 257), "PNG"
        ),
        "jpeg": _reopened(picture.convert("RGB"), "JPEG", quality=90),
        "jpeg-grayscale": _reopened(picture.convert("L"), "JPEG", quality=90),
        "webp": _reopened(picture.convert("RGB"), "WEBP", quality=90),
    }


def _lfw() -> np.ndarray:
    return np.load(Path(skimage_data.__file__).parent / "lfw_subset.npy")


def _on_canvas(crop: np.ndarray) -> Image.Image:
    face = Image.fromarray((crop * 255).round().astype(np.uint8)).resize((LFW_SIDE, LFW_SIDE), Image.BICUBIC)
    canvas = Image.new("L", (LFW_SIDE + 2 * LFW_MARGIN,) * 2, 128)
    canvas.paste(face, (LFW_MARGIN, LFW_MARGIN))
    return canvas


def lfw_faces() -> list[Image.Image]:
    return [_on_canvas(crop) for crop in _lfw()[:100]]


def lfw_non_faces() -> list[Image.Image]:
    return [_on_canvas(crop) for crop in _lfw()[100:]]


def no_face_photos() -> dict[str, Image.Image]:
    photos = {}
    for name in NO_FACE_PHOTOS:
        pixels = getattr(skimage_data, name)()
        if pixels.dtype != np.uint8:
            pixels = (pixels * 255).round().astype(np.uint8)
        photos[name] = Image.fromarray(pixels)
    return photos


def overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, right - left) * max(0, bottom - top)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


SKIMAGE_VERSION = skimage.__version__
