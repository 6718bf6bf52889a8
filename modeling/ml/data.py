"""Images as plain records, a manifest reader, and the torch Dataset over them."""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import Dataset

from modeling.ml.levels import PainLevels

FaceBox = tuple[int, int, int, int]
MANIFEST_COLUMNS = ("path", "patient", "cohort", "nrs")


class UnreadableImage(ValueError):
    """An image file is missing or cannot be decoded. The message names the file."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read image {self.path}: {reason}")


@dataclass(frozen=True)
class Record:
    """One labelled image. `face_box` is (x, y, w, h) in the image's pixels, or None."""

    path: str
    sha256: str
    face_box: FaceBox | None
    nrs: float | None
    level: int
    patient: str
    cohort: str = "clinical"
    image_id: int | str | None = None


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Decode an image fully, as RGB with its EXIF orientation applied."""
    try:
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image).convert("RGB")
    except FileNotFoundError:
        raise UnreadableImage(path, "file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise UnreadableImage(path, f"not a decodable image ({error})") from None


def parse_face_box(text: str) -> FaceBox | None:
    text = text.strip()
    if not text:
        return None
    parts = text.replace(",", " ").split()
    if len(parts) != 4:
        raise ValueError(f"face_box must be 'x y w h', got {text!r}")
    x, y, w, h = (int(float(part)) for part in parts)
    return (x, y, w, h)


def read_manifest(
    manifest: str | os.PathLike[str], *, data_dir: str | os.PathLike[str], levels: PainLevels
) -> list[Record]:
    """Records from a CSV with columns path,patient,cohort,nrs (optional: face_box "x y w h",
    image_id). Paths are relative to `data_dir`. The sha256 is of the file's bytes; a missing
    file gets an empty sha256 here and is reported by whoever reads it (see `check_readable`)."""
    data_dir = Path(data_dir)
    records: list[Record] = []
    with open(manifest, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in MANIFEST_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{manifest}: missing column(s) {', '.join(missing)}; expected {','.join(MANIFEST_COLUMNS)}"
            )
        for line, row in enumerate(reader, start=2):
            try:
                nrs = float(row["nrs"])
                level = levels.level_of(nrs)
                face_box = parse_face_box(row.get("face_box") or "")
            except ValueError as error:
                raise ValueError(f"{manifest}, line {line}: {error}") from None
            path = data_dir / row["path"]
            sha = sha256_file(path) if path.is_file() else ""
            records.append(
                Record(
                    path=str(path),
                    sha256=sha,
                    face_box=face_box,
                    nrs=nrs,
                    level=level,
                    patient=row["patient"],
                    cohort=row["cohort"] or "clinical",
                    image_id=row.get("image_id") or row["path"],
                )
            )
    return records


def check_readable(records: Sequence[Record], *, skip_unreadable: bool) -> tuple[list[Record], list[str]]:
    """Decode every record's file. An unreadable one raises `UnreadableImage` naming the file,
    or, with `skip_unreadable`, is left out and listed in the second return value."""
    readable: list[Record] = []
    skipped: list[str] = []
    for record in records:
        try:
            load_image(record.path)
        except UnreadableImage as error:
            if not skip_unreadable:
                raise
            skipped.append(str(error))
            continue
        readable.append(record)
    return readable, skipped


class PainImageDataset(Dataset):
    """(preprocessed image tensor, level) pairs for fine-tuning and prediction."""

    def __init__(self, records: Sequence[Record], transform: Callable[[Image.Image, FaceBox | None], torch.Tensor]):
        self.records = list(records)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        record = self.records[index]
        return self.transform(load_image(record.path), record.face_box), record.level
