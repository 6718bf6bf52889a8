"""Tiny labelled data sets for training tests: synthetic faces at 64 px, a few patients."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
from django.contrib.auth.models import User

from annotation.intake import store_image
from annotation.models import Patient
from annotation.services import record_label
from modeling.models import SplitAssignment
from painsite.synthetic_faces import draw_face, encode_jpeg, make_identity

# Every patient shows every pain level, so each cohort's test patients cover all four levels.
EVERY_LEVEL = (0, 2, 5, 8)
# make_dataset's default: seven patients, one label on each of their four images.
LABELS_PER_DATASET = 7 * len(EVERY_LEVEL)
SMALL_CONFIG = {"epochs": 3, "image_size": 64, "batch_size": 8, "patience": 3, "seed": 1}


def make_labelled_patient(
    code: str, cohort: str, *, rater: User, nrs: Sequence[int] = EVERY_LEVEL, kind: str = "self_report", size: int = 64
) -> Patient:
    patient = Patient.objects.create(code=code, cohort=cohort, consent="granted")
    rng = np.random.default_rng(zlib.crc32(code.encode()))
    identity = make_identity(rng, cohort)
    for index, score in enumerate(nrs):
        data = encode_jpeg(draw_face(identity, score, rng, size=size))
        image = store_image(data=data, filename=f"{code}-{index}.jpg", patient=patient, uploaded_by=rater).image
        record_label(image=image, rater=rater, nrs=score, kind=kind)
    return patient


def make_dataset(
    rater: User, *, splits: dict[str, Sequence[str]] | None = None, nrs: Sequence[int] = EVERY_LEVEL
) -> list[Patient]:
    """Patients named after their cohort and split, e.g. C-train-1; with `splits` given
    ({"clinical": ["train", "train", "val", "test"], ...}) their splits are stored up front."""
    splits = splits or {"clinical": ["train", "train", "val", "test"], "simulated": ["train", "val", "test"]}
    patients = []
    for cohort, cohort_splits in splits.items():
        for number, split in enumerate(cohort_splits, start=1):
            code = f"{cohort[0].upper()}-{split}-{number}"
            patient = make_labelled_patient(code, cohort, rater=rater, nrs=nrs)
            SplitAssignment.objects.create(patient=patient, split=split, seed=0)
            patients.append(patient)
    return patients
