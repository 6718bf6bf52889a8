"""Face detection with the Haar frontal-face cascade that ships with opencv-python-headless.

Pure OpenCV, NumPy and Pillow (no Django): a face box belongs to a stored image, so detection lives
with the images, and modeling (assessment) and the ML core's tests use the same function.

Used on upload (the stored face box), for training crops and for assessment, so it must be cheap:
the image is searched at a reduced size and the box is scaled back to the caller's pixels.

The cascade often returns more than one candidate on a real photo: the face, and now and then a
patch of background that passed the stages by a small margin. Taking the largest candidate picked
such a patch on scikit-image's astronaut photo (the background beside the shuttle is larger than
her face); the JPEG copy of the same photo happened to lose that candidate to compression noise.
So each candidate carries the cascade's confidence (the summed weights of its last stage,
`detectMultiScale3(..., outputRejectLevels=True)`), the most confident one is the face, and a
best candidate below MIN_CONFIDENCE counts as no face at all. The figures behind the threshold
are in bench/results/face_detector.json (bench/face_detector.py; docs/ml.md).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

CASCADE_FILE = "haarcascade_frontalface_default.xml"

# Faces in clinical photos fill a good part of the frame; searching at 320 px on the long side
# finds them as reliably as full size at a fraction of the cost (~20 ms of CPU for 640x480).
DETECTION_LONG_SIDE = 320
# A face smaller than a fifth of the short side would be blown up more than twice to reach the
# model's 224 px input: too little detail to assess, and usually a bystander, not the patient.
# Not searching for smaller faces also halves the detection time.
MIN_FACE_FRACTION = 0.2
# The cascade's last-stage weight sum for a candidate. Real and synthetic faces score about 6
# (median); the background patches and coin textures it took for faces scored 1.2-1.7. Below
# this a candidate is not trusted as a face (bench/face_detector.py measures both sides).
MIN_CONFIDENCE = 2.0
# Transparent pixels are shown on this grey, not on whatever colour they happen to store.
BACKGROUND_GREY = 128

FaceBox = tuple[int, int, int, int]


@dataclass(frozen=True)
class FaceDetection:
    box: FaceBox
    confidence: float

    @property
    def trusted(self) -> bool:
        return self.confidence >= MIN_CONFIDENCE


# OpenCV does not promise that one CascadeClassifier may be used from several threads at once
# (web servers run threads, a bulk import detects on several), so each thread loads its own
# (about 1 MB, a few milliseconds once); detections on different threads then run side by side.
_per_thread = threading.local()


def _load_cascade() -> cv2.CascadeClassifier:
    cascade = getattr(_per_thread, "cascade", None)
    if cascade is None:
        path = Path(cv2.data.haarcascades) / CASCADE_FILE
        cascade = cv2.CascadeClassifier(str(path))
        if cascade.empty():
            raise RuntimeError(f"could not load the OpenCV face cascade from {path}")
        _per_thread.cascade = cascade
    return cascade


def _grayscale(pil_image: Image.Image) -> Image.Image:
    """Luminance as a viewer sees it: transparency flattened onto grey, 16-bit samples scaled."""
    mode = pil_image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        samples = np.asarray(pil_image, dtype=np.uint32)
        return Image.fromarray((samples // 257).clip(0, 255).astype(np.uint8), mode="L")
    if mode == "F":
        return Image.fromarray(np.asarray(pil_image).clip(0, 255).astype(np.uint8), mode="L")
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in pil_image.info):
        rgba = pil_image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (BACKGROUND_GREY,) * 3 + (255,))
        return Image.alpha_composite(background, rgba).convert("L")
    return pil_image.convert("L")


def find_faces(pil_image: Image.Image) -> list[FaceDetection]:
    """Every candidate the cascade returns, most confident first (the larger one on a tie),
    in the image's own pixels. Candidates below MIN_CONFIDENCE are included: callers decide."""
    width, height = pil_image.size
    if width == 0 or height == 0:
        return []
    scale = min(1.0, DETECTION_LONG_SIDE / max(width, height))
    small = _grayscale(pil_image)
    if scale < 1.0:
        small = small.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.BILINEAR)
    gray = cv2.equalizeHist(np.asarray(small))
    min_side = max(24, int(min(gray.shape) * MIN_FACE_FRACTION))
    if min(gray.shape) < min_side:
        return []
    faces, _, weights = _load_cascade().detectMultiScale3(
        gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side), outputRejectLevels=True
    )
    detections = []
    for (x, y, w, h), weight in zip(faces, np.ravel(weights)):
        left, top = round(x / scale), round(y / scale)
        right, bottom = min(width, round((x + w) / scale)), min(height, round((y + h) / scale))
        box = (int(left), int(top), int(right - left), int(bottom - top))
        detections.append(FaceDetection(box=box, confidence=round(float(weight), 3)))
    return sorted(detections, key=lambda found: (found.confidence, found.box[2] * found.box[3]), reverse=True)


def detect_face_with_confidence(pil_image: Image.Image) -> FaceDetection | None:
    """The most plausible face and the cascade's confidence in it, or None when no candidate
    reaches MIN_CONFIDENCE."""
    candidates = find_faces(pil_image)
    if not candidates or not candidates[0].trusted:
        return None
    return candidates[0]


def detect_face(pil_image: Image.Image) -> FaceBox | None:
    """The most plausible frontal face as (x, y, w, h) in the image's own pixels, or None."""
    found = detect_face_with_confidence(pil_image)
    return found.box if found is not None else None
