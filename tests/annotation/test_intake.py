"""store_image: what is accepted, how it is converted, and that a refusal leaves nothing behind."""

from __future__ import annotations

import hashlib
import io
import threading

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from PIL import Image as PILImage

from annotation.intake import DuplicateImage, ImageRejected, store_image
from annotation.models import Image
from painsite.core.models import AuditEvent
from tests.annotation.image_factories import (
    encode,
    make_bomb_png,
    make_face_jpeg,
    make_jpeg,
    make_patient,
    stored_files,
)

pytestmark = pytest.mark.django_db


def store(data: bytes, user=None, filename: str = "photo.jpg", **kwargs):
    patient = kwargs.pop("patient", None) or make_patient()
    return store_image(data=data, filename=filename, patient=patient, uploaded_by=user, **kwargs).image


def open_stored(image: Image) -> PILImage.Image:
    with image.file.open("rb") as handle:
        return PILImage.open(io.BytesIO(handle.read()))


def test_it_stores_a_face_image_with_its_face_box_thumbnail_and_an_audit_event(clinician, settings):
    image = store(make_face_jpeg(seed=1), clinician)

    assert (image.width, image.height) == (160, 120)
    x, y, w, h = image.face_box
    assert 20 < x + w / 2 < 140 and 10 < y + h / 2 < 110 and w >= 30
    assert image.uploaded_by == clinician
    stored = open_stored(image)
    assert stored.format == "JPEG" and stored.mode == "RGB"
    with image.file.open("rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == image.sha256
    with image.thumbnail.open("rb") as handle:
        assert max(PILImage.open(handle).size) <= 256
    event = AuditEvent.objects.get(action="image.upload")
    assert event.actor == clinician and event.object_id == str(image.pk)
    assert event.details["patient"] == "P001"
    assert sorted(stored_files(settings.MEDIA_ROOT)) == sorted([image.file.name, image.thumbnail.name])


def test_it_records_no_face_box_when_there_is_no_face():
    assert store(make_jpeg(seed=3)).face_box is None


def svg() -> bytes:
    return b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>'


BAD_UPLOADS = {
    "non-image bytes named .jpg": (lambda: b"this is a text file, not a photo\n" * 20, "not a readable image"),
    "truncated JPEG": (lambda: make_jpeg(seed=4, width=200, height=150)[:1500], "damaged or truncated"),
    "SVG": (svg, "not a readable image"),
    "HTML": (lambda: b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>", "not a readable image"),
    "decompression bomb": (make_bomb_png, "pixels"),
    "0-byte file": (lambda: b"", "empty"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS, ids=list(BAD_UPLOADS))
def test_it_rejects_bad_input_and_stores_nothing(case, settings):
    data, reason = BAD_UPLOADS[case]
    with pytest.raises(ImageRejected) as rejected:
        store(data(), filename="evil.jpg")

    assert rejected.value.filename == "evil.jpg"
    assert reason in rejected.value.reason
    assert Image.objects.count() == 0
    assert stored_files(settings.MEDIA_ROOT) == []


def test_it_rejects_a_file_over_the_byte_limit(settings):
    settings.PAINSITE_MAX_UPLOAD_BYTES = 1000
    with pytest.raises(ImageRejected, match="limit is 1,000 bytes"):
        store(make_jpeg(seed=5, width=120, height=90))
    assert Image.objects.count() == 0 and stored_files(settings.MEDIA_ROOT) == []


def test_it_rejects_an_image_over_the_pixel_limit_before_decoding_it(settings):
    settings.PAINSITE_MAX_IMAGE_PIXELS = 64 * 48 - 1
    with pytest.raises(ImageRejected, match="3,072 pixels"):
        store(make_jpeg(seed=6))


def test_it_converts_a_cmyk_jpeg_to_the_right_rgb_colours():
    cyan = PILImage.new("CMYK", (40, 30), (255, 0, 0, 0))
    pixel = open_stored(store(encode(cyan, "JPEG", quality=95))).getpixel((20, 15))
    assert np.allclose(pixel, (0, 255, 255), atol=6)


def test_it_scales_a_16_bit_png_to_8_bits_instead_of_clipping_it_to_white():
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (32, 1))
    stored = np.asarray(open_stored(store(encode(PILImage.fromarray(ramp), "PNG"))))
    assert stored.shape == (32, 64, 3)
    assert abs(int(stored[16, 0, 0]) - 0) <= 4
    assert abs(int(stored[16, 32, 0]) - 130) <= 6
    assert abs(int(stored[16, 63, 0]) - 255) <= 4


def test_it_converts_a_palette_png_keeping_its_colours():
    picture = PILImage.new("RGB", (40, 20), (200, 30, 30))
    picture.paste((30, 30, 200), (20, 0, 40, 20))
    stored = open_stored(store(encode(picture.convert("P", palette=PILImage.ADAPTIVE, colors=4), "PNG")))
    assert np.allclose(stored.getpixel((5, 10)), (200, 30, 30), atol=8)
    assert np.allclose(stored.getpixel((35, 10)), (30, 30, 200), atol=8)


def test_it_converts_grayscale_to_rgb_with_equal_channels():
    stored = np.asarray(open_stored(store(encode(PILImage.new("L", (32, 32), 90), "PNG"))))
    assert stored.shape == (32, 32, 3)
    assert np.all(np.abs(stored.astype(int) - 90) <= 2)


def test_it_puts_transparent_areas_on_white():
    picture = PILImage.new("RGBA", (32, 32), (0, 0, 0, 0))
    assert np.allclose(open_stored(store(encode(picture, "PNG"))).getpixel((5, 5)), (255, 255, 255), atol=2)


def test_it_stores_an_exif_rotated_jpeg_upright():
    # Camera sensor layout: 60 wide, red left half, blue right half, tagged "rotate 90 clockwise".
    sensor = PILImage.new("RGB", (60, 40), (220, 20, 20))
    sensor.paste((20, 20, 220), (30, 0, 60, 40))
    exif = PILImage.Exif()
    exif[0x0112] = 6
    stored = open_stored(store(encode(sensor, "JPEG", quality=95, exif=exif.tobytes())))

    assert stored.size == (40, 60)
    assert np.allclose(stored.getpixel((20, 10)), (220, 20, 20), atol=25)
    assert np.allclose(stored.getpixel((20, 50)), (20, 20, 220), atol=25)
    assert not stored.getexif()


def test_it_strips_gps_and_all_other_exif():
    exif = PILImage.Exif()
    exif[0x010F] = "CameraMaker"
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    data = encode(PILImage.fromarray(np.full((30, 40, 3), 120, np.uint8)), "JPEG", exif=exif.tobytes())
    assert PILImage.open(io.BytesIO(data)).getexif().get_ifd(0x8825)

    image = store(data)
    with image.file.open("rb") as handle:
        raw = handle.read()
    stored = PILImage.open(io.BytesIO(raw))
    assert not stored.getexif()
    assert "exif" not in stored.info and "icc_profile" not in stored.info
    assert b"Exif" not in raw and b"CameraMaker" not in raw


def test_it_reports_a_duplicate_and_keeps_one_copy(settings):
    first = store(make_jpeg(seed=7))
    with pytest.raises(DuplicateImage) as duplicate:
        store_image(data=make_jpeg(seed=7), filename="again.jpg", patient=first.patient, uploaded_by=None)

    assert duplicate.value.existing_image == first
    assert Image.objects.count() == 1
    assert len(stored_files(settings.MEDIA_ROOT)) == 2


def test_a_failure_while_saving_the_row_deletes_the_written_files(settings):
    patient = make_patient()
    with pytest.raises(ValidationError):
        store_image(
            data=make_jpeg(seed=8), filename="a.jpg", patient=patient, uploaded_by=None, captured_at="not a date"
        )

    assert Image.objects.count() == 0
    assert stored_files(settings.MEDIA_ROOT) == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_of_the_same_image_store_it_once(settings):
    patient = make_patient()
    data = make_face_jpeg(seed=9)
    outcomes: list[str] = []
    start = threading.Barrier(3)

    def upload() -> None:
        start.wait()
        try:
            store_image(data=data, filename="same.jpg", patient=patient, uploaded_by=None)
            outcomes.append("stored")
        except DuplicateImage:
            outcomes.append("duplicate")
        finally:
            connection.close()

    threads = [threading.Thread(target=upload) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["duplicate", "duplicate", "stored"]
    assert Image.objects.count() == 1
    assert len(stored_files(settings.MEDIA_ROOT)) == 2
