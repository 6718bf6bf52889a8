"""Training targets per label rule: the pure function and its bulk selector."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from annotation.services import undo_last_label, withdraw_consent
from modeling.label_rules import target_nrs, targets_for_images
from tests.annotation.factories import make_image, make_label, make_patient

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class FakeScore:
    rater_id: int
    nrs: int
    kind: str
    minutes: int
    is_retraction: bool = False

    @property
    def created_at(self) -> datetime:
        return T0 + timedelta(minutes=self.minutes)


def observer(rater: int, nrs: int, minutes: int = 0) -> FakeScore:
    return FakeScore(rater, nrs, "observer", minutes)


def self_report(rater: int, nrs: int, minutes: int = 0) -> FakeScore:
    return FakeScore(rater, nrs, "self_report", minutes)


def test_self_report_first_takes_the_latest_self_report():
    labels = [self_report(1, 3, 0), self_report(2, 6, 5), observer(3, 9)]
    assert target_nrs(labels, "self_report_first") == 6


def test_self_report_first_falls_back_to_the_observer_median():
    assert target_nrs([observer(1, 2), observer(2, 4), observer(3, 9)], "self_report_first") == 4


def test_an_even_number_of_observers_rounds_the_median_half_up():
    assert target_nrs([observer(1, 3), observer(2, 6)], "observer_median") == 5
    assert target_nrs([observer(1, 3), observer(2, 4)], "observer_median") == 4
    # 6.5 is severe, as the ML core's level mapping and command line have it (not round()'s 6).
    assert target_nrs([observer(1, 6), observer(2, 7)], "observer_median") == 7


def test_only_each_raters_latest_score_counts():
    labels = [observer(1, 9, 0), observer(1, 1, 10), observer(2, 3, 5)]
    assert target_nrs(labels, "observer_median") == 2


def test_a_retracted_score_counts_as_none():
    labels = [observer(1, 9, 0), FakeScore(1, 9, "observer", 10, is_retraction=True)]
    assert target_nrs(labels, "observer_median") is None


def test_self_report_only_ignores_observers_and_observer_median_ignores_self_reports():
    assert target_nrs([observer(1, 5)], "self_report_only") is None
    assert target_nrs([self_report(1, 5)], "observer_median") is None
    assert target_nrs([], "self_report_first") is None


def test_an_unknown_rule_names_the_valid_ones():
    with pytest.raises(ValueError, match="self_report_first"):
        target_nrs([], "mean")


@pytest.mark.django_db
def test_targets_for_many_images_take_one_query_and_skip_withdrawn_patients(
    clinician, clinician2, django_assert_num_queries
):
    patient, withdrawn = make_patient("P001"), make_patient("P002")
    images = [make_image(patient) for _ in range(3)]
    hidden = make_image(withdrawn)
    make_label(images[0], clinician, nrs=2)
    make_label(images[0], clinician2, nrs=7, kind="self_report")
    make_label(images[1], clinician, nrs=3)
    make_label(images[1], clinician2, nrs=5)
    make_label(images[2], clinician, nrs=8)
    undo_last_label(rater=clinician)  # takes image 2's only score back
    make_label(hidden, clinician, nrs=9)
    withdraw_consent(patient=withdrawn, actor=clinician)
    all_ids = [image.pk for image in images] + [hidden.pk]
    with django_assert_num_queries(1):
        targets = targets_for_images(all_ids, "self_report_first")
    assert targets == {images[0].pk: 7, images[1].pk: 4}
    assert targets_for_images(all_ids, "observer_median") == {images[0].pk: 2, images[1].pk: 4}
