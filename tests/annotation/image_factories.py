"""Small images for intake tests: synthetic faces and the awkward formats clinics send."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from annotation.models import Cohort, Consent, Patient


def make_patient(code: str = "P001", cohort: str = Cohort.CLINICAL, **fields) -> Patient:
    return Patient.objects.create(code=code, cohort=cohort, **{"consent": Consent.GRANTED, **fields})


def make_face(width: int = 160, height: int = 120, *, seed: int = 0) -> Image.Image:
    """A drawn face the Haar cascade finds (skin oval, brows, eyes, nose, mouth), with noise so
    every seed gives different bytes."""
    rng = np.random.default_rng(seed)
    r = int(min(width, height) * 0.23)
    cx, cy = width // 2, height // 2
    picture = Image.new("RGB", (width, height), (70, 90, 110))
    draw = ImageDraw.Draw(picture)
    draw.ellipse([cx - r, cy - int(r * 1.3), cx + r, cy + int(r * 1.3)], fill=(225, 185, 160))
    eye_y, eye_x, eye_r = cy - int(r * 0.35), int(r * 0.42), r * 0.16
    for side in (-1, 1):
        x = cx + side * eye_x
        draw.rectangle([x - eye_r * 1.5, eye_y - eye_r * 2.2, x + eye_r * 1.5, eye_y - eye_r * 1.6], fill=(60, 40, 30))
        draw.ellipse([x - eye_r * 1.3, eye_y - eye_r * 0.7, x + eye_r * 1.3, eye_y + eye_r * 0.7], fill=(40, 30, 30))
    draw.polygon(
        [(cx, eye_y), (cx - int(r * 0.15), cy + int(r * 0.25)), (cx + int(r * 0.15), cy + int(r * 0.25))],
        fill=(190, 145, 125),
    )
    draw.rectangle([cx - int(r * 0.4), cy + int(r * 0.55), cx + int(r * 0.4), cy + int(r * 0.68)], fill=(120, 50, 50))
    picture = picture.filter(ImageFilter.GaussianBlur(max(1, r // 36)))
    noisy = np.asarray(picture).astype(np.int16) + rng.integers(-8, 9, size=(height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def encode(picture: Image.Image, image_format: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, image_format, **options)
    return buffer.getvalue()


def make_jpeg(*, seed: int = 0, width: int = 64, height: int = 48) -> bytes:
    """A small, unique JPEG (noise, no face)."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "JPEG", quality=90)


def make_face_jpeg(*, seed: int = 0, width: int = 160, height: int = 120) -> bytes:
    return encode(make_face(width, height, seed=seed), "JPEG", quality=92)


def make_bomb_png(side: int = 8_000) -> bytes:
    """A PNG of a few kilobytes that declares side x side pixels."""
    return encode(Image.new("1", (side, side)), "PNG", optimize=True)


def make_zip(members: dict[str, bytes], *, symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            archive.writestr(info, target)
    return buffer.getvalue()


DEFAULT_HEADER = "filename,patient,cohort,nrs,kind,captured_at"


def manifest(*rows: str, header: str = DEFAULT_HEADER, consent: str = "granted") -> bytes:
    """A manifest.csv; with the default header, each row also states `consent` for its patient
    ("" leaves the column out: new patients' consent is then not recorded)."""
    if header == DEFAULT_HEADER and consent:
        header += ",consent"
        rows = tuple(f"{row},{consent}" for row in rows)
    return ("\n".join([header, *rows]) + "\n").encode()


def stored_files(media_root) -> list[str]:
    """Every file under MEDIA_ROOT, relative: proof that nothing was left behind."""
    return sorted(str(path.relative_to(media_root)) for path in media_root.rglob("*") if path.is_file())
