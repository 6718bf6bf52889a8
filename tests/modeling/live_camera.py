"""A network camera for the ward tests: HTTP motion JPEG (`multipart/x-mixed-replace`), the stream
most IP cameras serve, from a real socket on 127.0.0.1, read by OpenCV's FFmpeg back end exactly as
a camera on the hospital network would be.

Frame k carries k in two grey squares beside the face (one per base-16 digit), so a test can tell
which frame a reader got. The camera can stall (keep the connection open and send nothing, like a
camera that froze) and be unplugged and plugged back on the same port.
"""

from __future__ import annotations

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image, ImageDraw

BOUNDARY = b"painsiteframe"
SQUARES = ((260, 20), (260, 100))  # top-left corners, right of the face
SQUARE = 40


def stamp(picture: Image.Image, number: int) -> Image.Image:
    stamped = picture.convert("RGB").copy()
    draw = ImageDraw.Draw(stamped)
    digits = (number // 16 % 16, number % 16)
    for (x, y), digit in zip(SQUARES, digits):
        grey = 8 + 16 * digit
        draw.rectangle((x, y, x + SQUARE - 1, y + SQUARE - 1), fill=(grey, grey, grey))
    return stamped


def frame_number(pixels: np.ndarray) -> int:
    """The number `stamp` put on a frame (an RGB array), read back through JPEG's losses."""
    digits = []
    for x, y in SQUARES:
        centre = pixels[y + 10 : y + SQUARE - 10, x + 10 : x + SQUARE - 10].astype(float).mean()
        digits.append(int(round((centre - 8) / 16)))
    return digits[0] * 16 + digits[1]


class MJPEGCamera:
    """Serves `picture`, stamped with a frame number, at `fps` frames per second."""

    def __init__(self, picture: Image.Image, *, fps: float = 10.0) -> None:
        self.picture = picture
        self.fps = fps
        self.sent = -1  # the number of the newest frame written to a socket
        self.stalled = threading.Event()
        self._stopped = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"

    def plug_in(self) -> MJPEGCamera:
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                try:
                    camera._stream(self.wfile)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args) -> None:
                pass

        self._stopped.clear()
        # The first time on a port the system picks; plugged back, on the same port (HTTPServer
        # reuses the address), so the camera's URL does not change.
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port or 0), Handler)
        self.port = self._server.server_address[1]
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def unplug(self) -> None:
        """Close the listening socket and every open stream, as a camera losing power does."""
        self._stopped.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        time.sleep(2 / self.fps)  # the streaming threads see the flag and close their sockets

    def _stream(self, out) -> None:
        while not self._stopped.is_set():
            if self.stalled.is_set():
                time.sleep(0.05)
                continue
            number = self.sent + 1
            buffer = io.BytesIO()
            stamp(self.picture, number).save(buffer, format="JPEG", quality=92)
            jpeg = buffer.getvalue()
            out.write(
                b"--"
                + BOUNDARY
                + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                + str(len(jpeg)).encode()
                + b"\r\n\r\n"
                + jpeg
                + b"\r\n"
            )
            out.flush()
            self.sent = number
            time.sleep(1 / self.fps)

    def __enter__(self) -> MJPEGCamera:
        return self.plug_in()

    def __exit__(self, *exc) -> None:
        self.unplug()
