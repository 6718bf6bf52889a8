"""Copying a large file into place atomically, checked as it is written."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class CopyMismatch(OSError):
    """The bytes copied do not have the expected sha256: nothing was put in place."""


def copy_checked(source: str | os.PathLike[str], target: Path, *, expected_sha256: str) -> None:
    """Copy `source` to `target`, hashing the bytes as they are written (a VGG16 file is half a
    gigabyte: reading it back would double the cost), and rename the copy into place only when
    its sha256 is `expected_sha256`. A failed or interrupted copy leaves `target` as it was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as writer, open(source, "rb") as reader:
            for chunk in iter(lambda: reader.read(1 << 22), b""):
                digest.update(chunk)
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        if digest.hexdigest() != expected_sha256:
            raise CopyMismatch(f"the copy of {source} does not match its sha256 {expected_sha256}")
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)
