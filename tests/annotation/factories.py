"""Small builders for annotation tests: patients, stored images and labels."""

from __future__ import annotations

import io
import itertools

import numpy as np
from django.contrib.auth.models import User
from PIL import Image as PILImage

from annotation.intake import store_image
from annotation.models import Cohort, Consent, Image, PainLabel, Patient
from annotation.services import record_label

_image_numbers = itertools.count(1)


def make_patient(code: str = "P001", cohort: str = Cohort.CLINICAL, **fields) -> Patient:
    """A patient whose consent is granted unless `consent` says otherwise (the model's default is
    "not recorded", under which no image can be stored)."""
    return Patient.objects.create(code=code, cohort=cohort, **{"consent": Consent.GRANTED, **fields})


def make_jpeg(seed: int, size: int = 32) -> bytes:
    """A small noise picture; each seed gives different pixels, so a different sha256."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def make_image(patient: Patient, uploaded_by: User | None = None, **fields) -> Image:
    number = next(_image_numbers)
    image = store_image(
        data=make_jpeg(number), filename=f"face-{number}.jpg", patient=patient, uploaded_by=uploaded_by
    ).image
    if fields:
        Image.objects.filter(pk=image.pk).update(**fields)
        image.refresh_from_db()
    return image


def make_label(image: Image, rater: User, nrs: int = 5, kind: str = "observer") -> PainLabel:
    return record_label(image=image, rater=rater, nrs=nrs, kind=kind)
