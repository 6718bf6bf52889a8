"""Image intake: every face image enters PainSite through `store_image`.

The bytes a user sends are never stored. They are decoded with Pillow (the file name and content
type are not trusted), checked against the byte and pixel limits, turned upright, converted to
RGB and re-encoded as a fresh JPEG without EXIF, GPS or any other metadata. The sha256 of that
stored JPEG identifies the image: the same picture uploaded twice is reported, not stored twice.
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext
from PIL import Image as PILImage
from PIL import ImageCms, ImageOps, UnidentifiedImageError

from annotation.faces import FaceBox, detect_face
from annotation.models import Consent, Image, Patient
from painsite.core.services import record_event

logger = logging.getLogger(__name__)

JPEG_QUALITY = 92
THUMBNAIL_SIZE = (256, 256)
THUMBNAIL_QUALITY = 80
# Raster formats a camera, phone or research data set produces. Anything else (SVG, HTML, PDF,
# exotic formats with a history of decoder bugs) is refused before a decoder sees it.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF")

_SRGB = ImageCms.createProfile("sRGB")


class ImageRejected(ValueError):
    """The upload is not an image PainSite will store; `reason` says why, in plain words."""

    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason


def _too_many_bytes(size: int, limit: int) -> str:
    return gettext("the file is %(size)s bytes; the limit is %(limit)s bytes") % {
        "size": f"{size:,}",
        "limit": f"{limit:,}",
    }


class ConsentNotGranted(ImageRejected):
    """The patient's consent is not granted (not recorded yet, or withdrawn): nothing is stored."""


def require_consent(*, patient: Patient, filename: str = "") -> None:
    """Refuse a new image of a patient whose consent is not granted.

    store_image calls it first, so every way in (upload, bulk import, assessment, seed_demo) is
    covered; a caller that does costly work before storing (assessment runs the model) calls it
    up front too, so the refusal comes before that work.
    """
    if patient.consent == Consent.GRANTED:
        return
    if patient.consent == Consent.WITHDRAWN:
        reason = gettext("patient %(code)s withdrew consent: no new images are stored") % {"code": patient.code}
    else:
        reason = gettext("patient %(code)s has no consent recorded yet: record it on the patient's page first") % {
            "code": patient.code
        }
    raise ConsentNotGranted(filename or gettext("image"), reason)


class DuplicateImage(Exception):
    """The same picture is already stored (same sha256 of the stored JPEG)."""

    def __init__(self, existing_image: Image) -> None:
        # Named, so a picture filed under a second patient code is caught for what it is.
        self.existing_patient = existing_image.patient.code
        super().__init__(
            gettext("this image is already stored as image %(id)s of patient %(code)s")
            % {"id": existing_image.pk, "code": self.existing_patient}
        )
        self.existing_image = existing_image


@dataclass(frozen=True)
class StoredImage:
    image: Image


@dataclass(frozen=True)
class PreparedImage:
    """An upload after decoding and re-encoding, before anything is written."""

    jpeg: bytes
    sha256: str
    width: int
    height: int
    picture: PILImage.Image


def prepare_image(*, data: bytes, filename: str) -> PreparedImage:
    """Decode, check, turn upright, convert to RGB and re-encode; raise ImageRejected if unusable."""
    max_bytes = settings.PAINSITE_MAX_UPLOAD_BYTES
    if not data:
        raise ImageRejected(filename, gettext("the file is empty (0 bytes)"))
    if len(data) > max_bytes:
        raise ImageRejected(filename, _too_many_bytes(len(data), max_bytes))
    picture = _decode(data, filename)
    buffer = io.BytesIO()
    # No exif=, icc_profile= or comment: the stored JPEG carries pixels and nothing else.
    picture.save(buffer, "JPEG", quality=JPEG_QUALITY)
    jpeg = buffer.getvalue()
    return PreparedImage(
        jpeg=jpeg,
        sha256=hashlib.sha256(jpeg).hexdigest(),
        width=picture.width,
        height=picture.height,
        picture=picture,
    )


@dataclass(frozen=True)
class ProcessedImage:
    """An upload ready to store: the stored JPEG, its face box and thumbnail. Computing it touches
    neither the database nor the storage, so a bulk import computes the next rows' on other threads
    while it stores this one."""

    jpeg: bytes
    sha256: str
    width: int
    height: int
    face_box: FaceBox | None
    thumbnail: bytes


def process_image(*, data: bytes, filename: str) -> ProcessedImage:
    """prepare_image, face detection and thumbnail: all the CPU work of an intake, nothing stored.
    Raises ImageRejected if unusable."""
    prepared = prepare_image(data=data, filename=filename)
    return _finish_processing(prepared)


def _finish_processing(prepared: PreparedImage) -> ProcessedImage:
    return ProcessedImage(
        jpeg=prepared.jpeg,
        sha256=prepared.sha256,
        width=prepared.width,
        height=prepared.height,
        face_box=detect_face(prepared.picture),
        thumbnail=make_thumbnail(prepared.picture),
    )


def check_image_limits(*, data: bytes, filename: str) -> tuple[int, int]:
    """The byte and pixel limits of every upload, for an image kept byte for byte (a restored
    backup cannot be re-encoded without changing its sha256). Returns (width, height); raises
    ImageRejected like an upload."""
    max_bytes = settings.PAINSITE_MAX_UPLOAD_BYTES
    if len(data) > max_bytes:
        raise ImageRejected(
            filename, gettext("the file is more than %(limit)s bytes, the limit") % {"limit": f"{max_bytes:,}"}
        )
    picture = _decode(data, filename)
    return picture.width, picture.height


def read_upload(upload: UploadedFile) -> bytes:
    """The uploaded file's bytes, refusing an oversize file before reading any of it."""
    max_bytes = settings.PAINSITE_MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > max_bytes:
        raise ImageRejected(upload.name or gettext("upload"), _too_many_bytes(upload.size, max_bytes))
    return upload.read(max_bytes + 1)


def _decode(data: bytes, filename: str) -> PILImage.Image:
    max_pixels = settings.PAINSITE_MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            # Pillow only warns below its own bomb limit; ours is stricter and checked below.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            opened = PILImage.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
            # Image.open reads only the header: the pixel count is checked before any decoding.
            pixels = opened.width * opened.height
            if pixels > max_pixels:
                raise ImageRejected(
                    filename,
                    gettext("the image is %(width)sx%(height)s (%(pixels)s pixels); the limit is %(limit)s pixels")
                    % {
                        "width": opened.width,
                        "height": opened.height,
                        "pixels": f"{pixels:,}",
                        "limit": f"{max_pixels:,}",
                    },
                )
            if pixels == 0:
                raise ImageRejected(filename, gettext("the image has no pixels"))
            opened.load()
            upright = ImageOps.exif_transpose(opened)
            return _to_rgb(upright)
    except ImageRejected:
        raise
    except PILImage.DecompressionBombError:
        raise ImageRejected(
            filename, gettext("the image has more than %(limit)s pixels") % {"limit": f"{max_pixels:,}"}
        ) from None
    except UnidentifiedImageError:
        raise ImageRejected(
            filename,
            gettext("not a readable image; accepted formats: %(formats)s") % {"formats": ", ".join(ACCEPTED_FORMATS)},
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        # Truncated or corrupt data surfaces from the decoder as one of these.
        raise ImageRejected(
            filename, gettext("the image data is damaged or truncated (%(error)s)") % {"error": error}
        ) from None


def _to_rgb(picture: PILImage.Image) -> PILImage.Image:
    """8-bit sRGB, whatever the source: CMYK, 16-bit, palette, grayscale, with or without alpha."""
    icc = picture.info.get("icc_profile")
    if icc and picture.mode in ("RGB", "CMYK", "L"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(picture, source, _SRGB, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            logger.warning("ignoring an unusable embedded colour profile")
    if picture.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit samples: Pillow's convert() would clip everything above 255 to white; scale
        # the 0-65535 range to 0-255 instead.
        samples = np.asarray(picture, dtype=np.uint32)
        picture = PILImage.fromarray((samples // 257).clip(0, 255).astype(np.uint8), mode="L")
    elif picture.mode == "F":
        picture = PILImage.fromarray(np.asarray(picture).clip(0, 255).astype(np.uint8), mode="L")
    if picture.mode == "P":
        picture = picture.convert("RGBA")
    if picture.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        # Transparent areas become white, not whatever colour hides under alpha 0.
        rgba = picture.convert("RGBA")
        background = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PILImage.alpha_composite(background, rgba).convert("RGB")
    return picture.convert("RGB")


def make_thumbnail(picture: PILImage.Image) -> bytes:
    small = picture.copy()
    small.thumbnail(THUMBNAIL_SIZE)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=THUMBNAIL_QUALITY)
    return buffer.getvalue()


def store_image(
    *,
    data: bytes,
    filename: str,
    patient: Patient,
    uploaded_by: User | None,
    captured_at: datetime | None = None,
) -> StoredImage:
    """Validate, re-encode and store one image with its face box and thumbnail.

    Raises ConsentNotGranted (an ImageRejected) unless the patient's consent is granted,
    ImageRejected for unusable input and DuplicateImage when the stored JPEG's sha256 is already
    known. Either way nothing is left behind: no row and no file.
    """
    require_consent(patient=patient, filename=filename)
    prepared = prepare_image(data=data, filename=filename)
    # Cheap early answer for the common case, before face detection is spent on a known picture.
    _refuse_duplicate(prepared.sha256)
    return store_processed_image(
        processed=_finish_processing(prepared),
        filename=filename,
        patient=patient,
        uploaded_by=uploaded_by,
        captured_at=captured_at,
    )


def store_processed_image(
    *,
    processed: ProcessedImage,
    filename: str,
    patient: Patient,
    uploaded_by: User | None,
    captured_at: datetime | None = None,
) -> StoredImage:
    """Store an image that process_image prepared: the storing half of store_image, with the same
    consent check, duplicate answer and guarantee that a failure leaves no row and no file."""
    require_consent(patient=patient, filename=filename)
    # The unique constraint below settles races.
    _refuse_duplicate(processed.sha256)
    face_box = processed.face_box

    # Names come from the content hash, never from the user's file name.
    month = timezone.now().strftime("%Y/%m")
    written: list[str] = []
    try:
        written.append(_save_file(f"images/{month}/{processed.sha256}.jpg", processed.jpeg))
        written.append(_save_file(f"thumbnails/{month}/{processed.sha256}.jpg", processed.thumbnail))
        with transaction.atomic():
            image = Image.objects.create(
                patient=patient,
                file=written[0],
                thumbnail=written[1],
                sha256=processed.sha256,
                width=processed.width,
                height=processed.height,
                face_box=list(face_box) if face_box else None,
                captured_at=captured_at,
                uploaded_by=uploaded_by,
            )
            record_event(
                actor=uploaded_by,
                action="image.upload",
                target=image,
                details={"patient": patient.code, "sha256": processed.sha256, "face_found": face_box is not None},
            )
    except IntegrityError:
        _delete_files(written)
        existing = Image.objects.filter(sha256=processed.sha256).first()
        if existing is not None:
            raise DuplicateImage(existing) from None
        raise
    except BaseException:
        _delete_files(written)
        raise
    return StoredImage(image=image)


def _refuse_duplicate(sha256: str) -> None:
    existing = Image.objects.filter(sha256=sha256).first()
    if existing is not None:
        raise DuplicateImage(existing)


def _save_file(name: str, data: bytes) -> str:
    """Save `data` under `name`. When the disk fails mid-write (full, over quota), the storage
    leaves a truncated file behind; it is removed before the error goes on. A complete file of
    the same name belongs to a concurrent upload of the same picture and is left alone."""
    try:
        return default_storage.save(name, ContentFile(data))
    except OSError:
        try:
            if default_storage.exists(name) and default_storage.size(name) < len(data):
                default_storage.delete(name)
        except OSError:
            logger.exception("could not remove the partial file %s", name)
        raise


def _delete_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.exception("could not delete %s after a failed upload", name)
