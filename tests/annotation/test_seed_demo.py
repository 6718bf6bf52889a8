"""manage.py seed_demo: synthetic patients, faces and labels, the same every time for a seed."""

from __future__ import annotations

from io import StringIO

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import transaction
from scipy.stats import pearsonr, spearmanr

from annotation.models import Image, LabelKind, PainLabel, Patient
from annotation.services import withdraw_consent
from painsite.core.models import AuditEvent
from painsite.core.roles import CLINICIAN, role_of
from painsite.synthetic_faces import plan_patients

pytestmark = pytest.mark.django_db

RATERS = ("demo-rater-1", "demo-rater-2")


def seed(patients: int = 3, images_per_patient: int = 2, seed: int = 1, size: int = 64) -> str:
    out = StringIO()
    call_command(
        "seed_demo", patients=patients, images_per_patient=images_per_patient, seed=seed, size=size, stdout=out
    )
    return out.getvalue()


def seeded_state() -> tuple[list[tuple[str, str]], list[tuple[str, str, int, str]]]:
    images = sorted(Image.objects.values_list("patient__code", "sha256"))
    labels = sorted(PainLabel.objects.values_list("image__sha256", "rater__username", "nrs", "kind"))
    return images, labels


class Discard(Exception):
    pass


def seed_and_discard(**arguments) -> tuple[list, list]:
    """Seed, read what was stored, then roll the database back for the next run."""
    try:
        with transaction.atomic():
            seed(**arguments)
            state = seeded_state()
            raise Discard
    except Discard:
        return state


def observer_pairs(username_a: str, username_b: str) -> list[tuple[int, int]]:
    scores: dict[int, dict[str, int]] = {}
    for image_id, username, nrs in PainLabel.objects.filter(
        rater__username__in=(username_a, username_b), kind=LabelKind.OBSERVER
    ).values_list("image_id", "rater__username", "nrs"):
        scores.setdefault(image_id, {})[username] = nrs
    return [(pair[username_a], pair[username_b]) for pair in scores.values() if len(pair) == 2]


def test_it_creates_patients_of_both_cohorts_with_their_faces_and_labels():
    output = seed(patients=4, images_per_patient=2)

    assert list(Patient.objects.values_list("code", "cohort")) == [
        ("DEMO-C-0001", "clinical"),
        ("DEMO-C-0002", "clinical"),
        ("DEMO-C-0003", "clinical"),
        ("DEMO-S-0001", "simulated"),
    ]
    assert Image.objects.count() == 8
    assert Image.objects.filter(width=64, height=64).count() == 8
    assert PainLabel.objects.filter(kind=LabelKind.SELF_REPORT, rater__username="demo-clinician").exists()
    observers = PainLabel.objects.filter(kind=LabelKind.OBSERVER).values_list("rater__username", flat=True)
    assert set(observers) == set(RATERS)
    assert "Patients: 4 created" in output and "Images:   8 created" in output
    assert "Faces found in" in output
    # It went through the real services: uploads and labels are in the audit log.
    assert AuditEvent.objects.filter(action="image.upload").count() == 8
    assert AuditEvent.objects.filter(action="label.create").count() == PainLabel.objects.count()


def test_self_reports_are_the_planned_patients_scores():
    seed(patients=3, images_per_patient=3, seed=2)

    for planned in plan_patients(3, 3, seed=2):
        # A patient's images are captured a few hours apart, in plan order.
        images = Image.objects.filter(patient__code=f"DEMO-{planned.code}").order_by("captured_at")
        assert images.count() == 3
        for image, nrs in zip(images, planned.nrs):
            reported = image.labels.filter(kind=LabelKind.SELF_REPORT).values_list("nrs", flat=True)
            assert list(reported) in ([], [nrs])
    assert PainLabel.objects.filter(kind=LabelKind.SELF_REPORT).count() >= 6  # most of the 9 images


def test_demo_raters_are_clinicians_who_cannot_log_in():
    seed(patients=2, images_per_patient=1)

    for username in ("demo-clinician", *RATERS):
        user = User.objects.get(username=username)
        assert not user.has_usable_password()
        assert role_of(user) == CLINICIAN


def test_a_second_run_with_the_same_seed_creates_nothing_new_and_says_so():
    seed(patients=3, images_per_patient=2)
    before = seeded_state()

    output = seed(patients=3, images_per_patient=2)

    assert seeded_state() == before
    assert "Nothing new" in output
    assert "Images:   0 created, 6 already there." in output


def test_it_is_deterministic_for_a_seed():
    first = seed_and_discard(patients=3, images_per_patient=2, seed=5)
    second = seed_and_discard(patients=3, images_per_patient=2, seed=5)
    other = seed_and_discard(patients=3, images_per_patient=2, seed=6)

    assert first == second
    assert len(first[0]) == 6 and len(first[1]) > 6
    assert {sha for _, sha in first[0]}.isdisjoint(sha for _, sha in other[0])


def test_more_images_per_patient_keep_the_earlier_ones():
    seed(patients=2, images_per_patient=1)
    earlier = set(Image.objects.values_list("sha256", flat=True))

    output = seed(patients=2, images_per_patient=2)

    assert Image.objects.count() == 4
    assert earlier < set(Image.objects.values_list("sha256", flat=True))
    assert "Images:   2 created, 2 already there." in output


def test_patients_who_withdrew_consent_get_no_new_images_or_labels(clinician):
    seed(patients=2, images_per_patient=1)
    withdraw_consent(patient=Patient.objects.get(code="DEMO-C-0001"), actor=clinician, reason="asked to leave")
    labels_before = PainLabel.objects.filter(image__patient__code="DEMO-C-0001").count()

    output = seed(patients=2, images_per_patient=2)

    assert Image.objects.filter(patient__code="DEMO-C-0001").count() == 1
    assert PainLabel.objects.filter(image__patient__code="DEMO-C-0001").count() == labels_before
    assert Image.objects.filter(patient__code="DEMO-S-0001").count() == 2
    assert "Skipped (consent withdrawn): DEMO-C-0001" in output


def test_raters_disagree_realistically_and_follow_the_face():
    seed(patients=12, images_per_patient=4, seed=3)
    pairs = np.array(observer_pairs(*RATERS))

    assert len(pairs) >= 10
    agreement = pearsonr(pairs[:, 0], pairs[:, 1]).statistic
    assert 0.5 < agreement < 0.98
    assert np.mean(pairs[:, 0] == pairs[:, 1]) < 0.6
    assert pairs[:, 0].mean() < pairs[:, 1].mean()  # demo-rater-1 scores lower than demo-rater-2

    # Observers score the drawn expression, which follows the self-reported NRS.
    self_reports = dict(PainLabel.objects.filter(kind=LabelKind.SELF_REPORT).values_list("image_id", "nrs"))
    observed = PainLabel.objects.filter(kind=LabelKind.OBSERVER, image_id__in=self_reports)
    reported, seen = zip(*[(self_reports[image_id], nrs) for image_id, nrs in observed.values_list("image_id", "nrs")])
    assert spearmanr(reported, seen).statistic > 0.6


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"patients": 0}, "at least 1"),
        ({"images_per_patient": 0}, "at least 1"),
        ({"size": 32}, "between 64 and 1024"),
        ({"seed": -1}, "must not be negative"),
    ],
)
def test_it_refuses_unusable_arguments(arguments, message):
    with pytest.raises(CommandError, match=message):
        seed(**arguments)
    assert not Patient.objects.exists()
