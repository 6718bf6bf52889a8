"""Video files of synthetic faces, served as bedside cameras in the ward tests, demo and benchmark.

Motion JPEG in an AVI container: every OpenCV build writes and reads it, and every frame is a key
frame, so a reader can jump to any moment of the file cheaply (modeling/ward_frames.py reads a
file by wall-clock time, as if it were a live camera).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from painsite.synthetic_faces.identity import make_identity
from painsite.synthetic_faces.render import draw_face

BACKGROUND = (200, 204, 208)


def face_frames(*, seed: int, nrs: int, count: int = 1, size: tuple[int, int] = (320, 240)) -> list[Image.Image]:
    """`count` pictures of one synthetic patient at `nrs`, the face on the left of a grey room."""
    rng = np.random.default_rng(seed)
    identity = make_identity(rng, "clinical")
    frames = []
    for _ in range(count):
        face = draw_face(identity, nrs, rng, size=min(size))
        canvas = Image.new("RGB", size, BACKGROUND)
        canvas.paste(face, (0, 0))
        frames.append(canvas)
    return frames


def blank_frames(*, count: int = 1, size: tuple[int, int] = (320, 240)) -> list[Image.Image]:
    """An empty bed: frames with no face in them."""
    return [Image.new("RGB", size, BACKGROUND) for _ in range(count)]


def write_video(path: str | Path, pictures: Sequence[Image.Image], *, fps: float = 1.0, repeat: int = 1) -> Path:
    """Write `pictures` (each shown `repeat` frames) as an MJPG .avi at `fps` frames per second."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = pictures[0].size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write an MJPG video at {path}")
    try:
        for picture in pictures:
            bgr = cv2.cvtColor(np.asarray(picture.convert("RGB")), cv2.COLOR_RGB2BGR)
            for _ in range(repeat):
                writer.write(bgr)
    finally:
        writer.release()
    return path
