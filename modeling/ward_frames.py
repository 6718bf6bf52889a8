"""Frames from bedside cameras: one open `cv2.VideoCapture` per camera, kept by each worker process.

Opening an RTSP or MJPEG stream costs a connection and a key frame, so a worker keeps its
captures open between rounds and reopens one only after it failed. Two kinds of URL:

- a live stream (rtsp://, http://, https://): the capture buffers frames while nobody reads it,
  so the buffered ones are skipped (`grab` without decoding) until a grab waits for the camera,
  which means the newest frame has been reached;
- a video file (tests, demos, the benchmark): read as if it were live, by wall-clock time: the
  frame shown at second t is frame (t × fps) modulo the file's length, so the file loops and two
  workers reading it at one moment see the same frame. A file removed or emptied gives no frame,
  like a camera that went away.

A live stream is opened with FFmpeg's open and read timeouts set to
PAINSITE_WARD_CAMERA_TIMEOUT_SECONDS: without them a camera that is switched off mid-stream, or
a host that never answers, holds its reader for FFmpeg's default 30 s (a camera named by host name
still waits for the name lookup, which these timeouts do not cover: give cameras IP addresses).
Each camera has its own lock, so a round reads its cameras side by side (modeling/ward_rounds.py)
and cameras that hang cost the round one timeout, not one each.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

LIVE_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://")
# A grab that returns faster than this came from the capture's buffer, not from the camera.
BUFFERED_GRAB_SECONDS = 0.005
MAX_SKIPPED_FRAMES = 250


def is_live(url: str) -> bool:
    return url.lower().startswith(LIVE_SCHEMES)


@dataclass(frozen=True)
class Frame:
    """An RGB frame as a (height, width, 3) uint8 array and the moment it was taken."""

    pixels: np.ndarray
    grabbed_at: float


class CameraReader:
    """The open captures of this process, by camera id. Threads may read different cameras at
    once; reads of one camera wait for each other."""

    def __init__(self, *, timeout_seconds: float | None = None) -> None:
        # None: PAINSITE_WARD_CAMERA_TIMEOUT_SECONDS, read when a stream is opened.
        self.timeout_seconds = timeout_seconds
        self._captures: dict[int, tuple[str, cv2.VideoCapture]] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()

    def read(self, camera_id: int, url: str, *, now: float | None = None) -> Frame | None:
        """The camera's current frame, or None when it gives none (the capture is then closed, so
        the next read reconnects)."""
        with self._camera_lock(camera_id):
            if not is_live(url) and not _file_readable(url):
                self.close(camera_id)
                return None
            capture = self._capture(camera_id, url)
            if capture is None:
                return None
            frame = _read_live(capture) if is_live(url) else _read_file(capture, time.time() if now is None else now)
            if frame is None:
                self.close(camera_id)
                return None
            return Frame(pixels=cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), grabbed_at=time.time())

    def _camera_lock(self, camera_id: int) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(camera_id, threading.Lock())

    def _capture(self, camera_id: int, url: str) -> cv2.VideoCapture | None:
        known = self._captures.get(camera_id)
        if known is not None and known[0] == url:
            return known[1]
        self.close(camera_id)
        capture = self._open_stream(url) if is_live(url) else cv2.VideoCapture(url)
        if not capture.isOpened():
            capture.release()
            return None
        with self._guard:
            self._captures[camera_id] = (url, capture)
        return capture

    def _open_stream(self, url: str) -> cv2.VideoCapture:
        timeout_ms = int(self._timeout_seconds() * 1000)
        capture = cv2.VideoCapture(
            url,
            cv2.CAP_FFMPEG,
            [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms],
        )
        if capture.isOpened():
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return capture

    def _timeout_seconds(self) -> float:
        if self.timeout_seconds is not None:
            return self.timeout_seconds
        from django.conf import settings

        return settings.PAINSITE_WARD_CAMERA_TIMEOUT_SECONDS

    def close(self, camera_id: int) -> None:
        with self._guard:
            known = self._captures.pop(camera_id, None)
        if known is not None:
            known[1].release()

    def close_all(self) -> None:
        """Close every capture, each once no read of that camera is under way."""
        with self._guard:
            camera_ids = list(self._captures)
        for camera_id in camera_ids:
            with self._camera_lock(camera_id):
                self.close(camera_id)

    def open_cameras(self) -> list[int]:
        with self._guard:
            return sorted(self._captures)


def _file_readable(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False


def _read_file(capture: cv2.VideoCapture, now: float) -> np.ndarray | None:
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    if frames <= 0:
        return None
    capture.set(cv2.CAP_PROP_POS_FRAMES, int(now * fps) % frames)
    ok, frame = capture.read()
    return frame if ok else None


def _read_live(capture: cv2.VideoCapture) -> np.ndarray | None:
    for _ in range(MAX_SKIPPED_FRAMES):
        started = time.monotonic()
        if not capture.grab():
            return None
        if time.monotonic() - started > BUFFERED_GRAB_SECONDS:
            break
    ok, frame = capture.retrieve()
    return frame if ok else None


# One reader per worker process: captures stay open from one round to the next.
cameras = CameraReader()
