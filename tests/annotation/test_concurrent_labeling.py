"""Clinicians labeling at the same time lose no label and are handed different images (PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from annotation.models import Image, PainLabel
from annotation.services import record_label, reserve_next_image
from painsite.core.roles import CLINICIAN
from tests.annotation.factories import make_image, make_patient
from tests.conftest import make_user

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL's row locks under real concurrency: set DATABASE_URL=postgres://...",
    ),
]

ROUNDS = 3


def label_all(images: list[Image], rater, barrier: threading.Barrier, errors: list[BaseException]) -> None:
    try:
        for round_number in range(ROUNDS):
            barrier.wait(timeout=30)
            for image in images:
                record_label(image=image, rater=rater, nrs=(image.pk + round_number) % 11, kind="observer")
    except BaseException as error:  # reported by the main thread
        errors.append(error)
    finally:
        connections.close_all()


def test_two_clinicians_labeling_concurrently_lose_no_label(clinician, clinician2):
    patient = make_patient("P001")
    images = [make_image(patient) for _ in range(6)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=label_all, args=(images, rater, barrier, errors)) for rater in (clinician, clinician2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert PainLabel.objects.count() == 2 * ROUNDS * len(images)
    for image in images:
        image.refresh_from_db()
        assert (image.label_count, image.observer_rater_count) == (2, 2)
        for rater in (clinician, clinician2):
            chain = list(PainLabel.objects.filter(image=image, rater=rater).order_by("id"))
            assert [label.supersedes_id for label in chain] == [None] + [label.pk for label in chain[:-1]]


def test_one_clinician_in_two_tabs_keeps_a_single_chain(clinician):
    image = make_image(make_patient("P001"))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    threads = [threading.Thread(target=label_all, args=([image], clinician, barrier, errors)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    chain = list(PainLabel.objects.filter(image=image).order_by("id"))
    assert len(chain) == 2 * ROUNDS
    assert [label.supersedes_id for label in chain] == [None] + [label.pk for label in chain[:-1]]
    image.refresh_from_db()
    assert (image.label_count, image.observer_rater_count) == (1, 1)


def test_clinicians_asking_at_the_same_moment_are_handed_different_images():
    patient = make_patient("P001")
    images = [make_image(patient) for _ in range(12)]
    raters = [make_user(f"rater{number}", CLINICIAN) for number in range(8)]
    barrier = threading.Barrier(len(raters))
    handed: dict[str, int | None] = {}
    errors: list[BaseException] = []

    def ask(rater) -> None:
        try:
            barrier.wait(timeout=30)
            image = reserve_next_image(rater=rater)
            handed[rater.username] = image.pk if image else None
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ask, args=(rater,)) for rater in raters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(set(handed.values())) == len(raters) and set(handed.values()) <= {image.pk for image in images}
    reserved = dict(Image.objects.filter(reserved_by__isnull=False).values_list("reserved_by__username", "pk"))
    assert reserved == handed
