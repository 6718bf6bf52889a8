"""Face detection with the Haar frontal-face cascade that ships with opencv-python-headless.

Used on upload (the stored face box), for training crops and for assessment, so it must be cheap:
the image is searched at a reduced size and the box is scaled back to the caller's pixels.
"""

from __future__ import annotations

import threading
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

FaceBox = tuple[int, int, int, int]

_cascade: cv2.CascadeClassifier | None = None
# OpenCV does not promise that one CascadeClassifier may be used from several threads at once
# (web servers run threads); the lock keeps the single per-process instance safe.
_lock = threading.Lock()


def _load_cascade() -> cv2.CascadeClassifier:
    global _cascade
    if _cascade is None:
        path = Path(cv2.data.haarcascades) / CASCADE_FILE
        cascade = cv2.CascadeClassifier(str(path))
        if cascade.empty():
            raise RuntimeError(f"could not load the OpenCV face cascade from {path}")
        _cascade = cascade
    return _cascade


def detect_face(pil_image: Image.Image) -> FaceBox | None:
    """The largest frontal face as (x, y, w, h) in the image's own pixels, or None."""
    width, height = pil_image.size
    if width == 0 or height == 0:
        return None
    scale = min(1.0, DETECTION_LONG_SIDE / max(width, height))
    small = pil_image.convert("L")
    if scale < 1.0:
        small = small.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.BILINEAR)
    gray = cv2.equalizeHist(np.asarray(small))
    min_side = max(24, int(min(gray.shape) * MIN_FACE_FRACTION))
    with _lock:
        faces = _load_cascade().detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side)
        )
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda face: int(face[2]) * int(face[3]))
    left, top = round(x / scale), round(y / scale)
    right, bottom = min(width, round((x + w) / scale)), min(height, round((y + h) / scale))
    return (int(left), int(top), int(right - left), int(bottom - top))
