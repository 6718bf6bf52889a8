"""Drift watch: the population stability index against a hand computation, the window, the verdict
on the dashboard and the warning to admins."""

from __future__ import annotations

import datetime
import math

import pytest
from django.utils import timezone

from modeling import drift
from modeling.models import Assessment, Stage
from painsite.core.models import AdminNotice
from tests.annotation.factories import make_image, make_patient
from tests.modeling.factories import LEVEL_NAMES, make_model_version, make_test_set

pytestmark = pytest.mark.django_db

TEST_SET_MIX = (40, 30, 20, 10)  # predicted none, mild, moderate, severe on the test set
# Σ (recent − test) · ln(recent / test) for shares (.1 .2 .3 .4) against (.4 .3 .2 .1), by hand:
# (−.3)·ln(.25) + (−.1)·ln(2/3) + (.1)·ln(1.5) + (.3)·ln(4) = .415888 + .040547 + .040547 + .415888
HAND_PSI = 0.912869


def production_predicting(mix) -> object:
    """A production version whose test-set predictions fall on the levels in `mix`."""
    test_set = make_test_set(patients_per_cohort=10, images_per_patient=5)[: sum(mix)]
    predictions, index = [], 0
    for level, count in enumerate(mix):
        for _ in range(count):
            probabilities = [0.1] * 4
            probabilities[level] = 0.7
            predictions.append({**test_set[index], "probabilities": probabilities})
            index += 1
    return make_model_version(name="v1", predictions=predictions, stage=Stage.PRODUCTION, n_bootstrap=20)


def assess(version, counts, *, days_ago: float = 0, face_found: bool = True) -> None:
    patient = make_patient(f"W{Assessment.objects.count():04d}")
    image = make_image(patient)
    rows = []
    for level, count in zip(LEVEL_NAMES, counts, strict=True):
        rows += [
            Assessment(image=image, patient=patient, model_version=version, level=level, face_found=face_found)
            for _ in range(count)
        ]
    Assessment.objects.bulk_create(rows)
    if days_ago:
        moment = timezone.now() - datetime.timedelta(days=days_ago)
        Assessment.objects.filter(pk__in=[row.pk for row in rows]).update(created_at=moment)


def test_the_index_matches_a_hand_computation():
    psi, terms = drift.population_stability_index([0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4])
    assert psi == pytest.approx(HAND_PSI, abs=1e-6)
    assert terms[0] == pytest.approx(-0.3 * math.log(0.25))
    assert drift.population_stability_index([0.25] * 4, [0.25] * 4)[0] == 0


def test_an_empty_level_is_floored_not_infinite():
    psi, _ = drift.population_stability_index([0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25])
    assert math.isfinite(psi) and psi > 1


def test_recent_assessments_are_compared_with_the_test_set(settings):
    settings.PAINSITE_DRIFT_MIN_ASSESSMENTS = 30
    version = production_predicting(TEST_SET_MIX)
    assess(version, (10, 20, 30, 40))
    assess(version, (500, 0, 0, 0), days_ago=30)  # outside the 7-day window
    assess(version, (0, 0, 0, 500), face_found=False)  # no face, no level: never counted
    report = drift.drift_report()
    assert report.reference_counts == list(TEST_SET_MIX) and report.recent_counts == [10, 20, 30, 40]
    assert report.psi == pytest.approx(HAND_PSI, abs=1e-6)
    assert report.verdict == "major" and "major shift" in report.words


def test_the_same_mix_is_stable(settings):
    version = production_predicting(TEST_SET_MIX)
    assess(version, TEST_SET_MIX)
    report = drift.drift_report()
    assert report.psi == pytest.approx(0) and report.verdict == "stable"


def test_too_few_recent_assessments_are_not_estimable(settings):
    settings.PAINSITE_DRIFT_MIN_ASSESSMENTS = 30
    version = production_predicting(TEST_SET_MIX)
    assess(version, (5, 5, 5, 5))
    report = drift.drift_report()
    assert report.psi is None and report.verdict == "not_estimable"
    assert "only 20 assessments with a face in the last 7 days (at least 30 needed)" in report.words


def test_without_a_production_model_there_is_nothing_to_watch():
    assert drift.drift_report().reason == "there is no production model"


def test_a_major_shift_is_sent_to_admins_once_a_day(
    admin_user, researcher, client, mailoutbox, django_capture_on_commit_callbacks
):
    admin_user.email = "admin@example.org"
    admin_user.save()
    version = production_predicting(TEST_SET_MIX)
    assess(version, (10, 20, 30, 40))
    with django_capture_on_commit_callbacks(execute=True):
        drift.warn_on_drift()
        drift.warn_on_drift()
    assert AdminNotice.objects.filter(kind="drift").count() == 1
    [mail] = mailoutbox
    assert (
        "Drift: v1" in mail.subject
        and "PSI 0.91" in mail.subject
        and "severe: test set 10.0%, recent 40.0%" in mail.body
    )

    client.force_login(researcher)
    page = client.get("/").content.decode()
    assert 'data-verdict="major"' in page and "PSI 0.913" in page
    assert 'id="admin-notices"' not in page  # notices are the admins'


def test_recent_uploads_predicted_for_the_queue_count_with_the_assessments(settings):
    from annotation.models import ImagePrediction

    settings.PAINSITE_DRIFT_MIN_ASSESSMENTS = 30
    version = production_predicting(TEST_SET_MIX)
    assess(version, (10, 20, 30, 0))
    patient = make_patient("U0001")
    for _ in range(40):
        ImagePrediction.objects.create(
            image=make_image(patient), model_version_id=version.pk, predicted_level=3,
            predicted_level_name="severe", entropy=0.5, margin=0.2, level_rank=0, computed_at=timezone.now(),
        )  # fmt: skip
    old = make_image(patient)
    type(old).objects.filter(pk=old.pk).update(uploaded_at=timezone.now() - datetime.timedelta(days=30))
    ImagePrediction.objects.create(
        image=old, model_version_id=version.pk, predicted_level=0, predicted_level_name="none",
        entropy=0.5, margin=0.2, level_rank=0, computed_at=timezone.now(),
    )  # fmt: skip
    report = drift.drift_report()
    assert report.recent_counts == [10, 20, 30, 40] and report.psi == pytest.approx(HAND_PSI, abs=1e-6)
