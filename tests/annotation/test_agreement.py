"""Rater agreement equals reference computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from annotation.agreement import StandingScore, agreement_statistics, icc_2_1
from annotation.services import withdraw_consent
from tests.annotation.factories import make_image, make_label, make_patient
from tests.conftest import api_client_for

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], dtype=float
)


def reference_icc_2_1(table: np.ndarray) -> float:
    """ICC(2,1) from the two-way ANOVA, written out term by term."""
    n, k = table.shape
    grand = table.mean()
    bms = k * sum((row.mean() - grand) ** 2 for row in table) / (n - 1)
    jms = n * sum((column.mean() - grand) ** 2 for column in table.T) / (k - 1)
    residual = table - table.mean(axis=1, keepdims=True) - table.mean(axis=0, keepdims=True) + grand
    ems = (residual**2).sum() / ((n - 1) * (k - 1))
    return (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n)


def test_icc_2_1_matches_the_shrout_fleiss_example():
    result = icc_2_1(SHROUT_FLEISS)
    assert round(result["icc"], 2) == 0.29
    assert result["icc"] == pytest.approx(reference_icc_2_1(SHROUT_FLEISS), abs=1e-12)
    # The F-based interval published for this example (e.g. pingouin's ICC2 row): [0.02, 0.76].
    assert [round(bound, 2) for bound in result["ci"]] == [0.02, 0.76]
    assert result["ci"][0] < result["icc"] < result["ci"][1]


def test_icc_2_1_of_random_tables_matches_the_reference():
    rng = np.random.default_rng(3)
    for _ in range(5):
        table = rng.integers(0, 11, size=(12, 3)).astype(float)
        assert icc_2_1(table)["icc"] == pytest.approx(reference_icc_2_1(table), abs=1e-12)


def test_icc_needs_two_targets_and_two_raters():
    assert icc_2_1([[1, 2]]) is None
    assert icc_2_1([[1], [2]]) is None


def score(image: int, rater: str, nrs: int, kind: str = "observer", order: int = 0) -> StandingScore:
    return StandingScore(image, f"P{image}", rater, kind, nrs, order, image * 100 + order)


def test_pair_statistics_match_scikit_learn_and_numpy():
    rng = np.random.default_rng(7)
    ann = rng.integers(0, 11, size=30)
    bob = np.clip(ann + rng.integers(-2, 3, size=30), 0, 10)
    scores = [score(i, "ann", int(a), order=0) for i, a in enumerate(ann)]
    scores += [score(i, "bob", int(b), order=1) for i, b in enumerate(bob)]
    report = agreement_statistics(scores)
    pair = report["rater_pairs"][0]
    assert pair["raters"] == ["ann", "bob"] and pair["n"] == 30
    expected_kappa = cohen_kappa_score(ann, bob, weights="quadratic", labels=list(range(11)))
    assert pair["kappa_quadratic"] == pytest.approx(expected_kappa, abs=1e-12)
    assert pair["mean_absolute_difference"] == pytest.approx(np.abs(ann - bob).mean(), abs=1e-12)
    assert pair["icc"] == pytest.approx(reference_icc_2_1(np.column_stack([ann, bob]).astype(float)), abs=1e-12)
    assert report["observers"]["icc"] == pytest.approx(pair["icc"], abs=1e-12)


def test_kappa_weights_follow_nrs_distance_not_the_ranks_of_seen_values():
    # Scores 0, 5 and 10 only: ranking them 0, 1, 2 would understate the 0-vs-10 disagreement.
    first, second = [0, 5, 10, 10], [0, 10, 10, 5]
    report = agreement_statistics(
        [score(i, "ann", a) for i, a in enumerate(first)] + [score(i, "bob", b, order=1) for i, b in enumerate(second)]
    )
    assert report["rater_pairs"][0]["kappa_quadratic"] == pytest.approx(
        cohen_kappa_score(first, second, weights="quadratic", labels=list(range(11)))
    )


def test_observer_vs_self_report_and_adjudication():
    scores = [
        score(1, "ann", 2, order=0),
        score(1, "bob", 6, order=1),
        score(1, "pat", 7, "self_report", order=2),
        score(2, "ann", 4, order=0),
        score(2, "bob", 5, order=1),
        score(3, "ann", 3, order=0),
        score(3, "pat", 3, "self_report", order=1),
    ]
    report = agreement_statistics(scores)
    versus = report["observer_vs_self_report"]
    observers, reported = np.array([2, 6, 3]), np.array([7, 7, 3])
    assert versus["n"] == 3
    assert versus["mean_absolute_difference"] == pytest.approx(np.abs(observers - reported).mean())
    assert versus["mean_difference"] == pytest.approx((observers - reported).mean())
    assert versus["kappa_quadratic"] == pytest.approx(
        cohen_kappa_score(observers, reported, weights="quadratic", labels=list(range(11)))
    )
    assert [item["image"] for item in report["adjudication"]] == [1]
    assert report["adjudication"][0]["spread"] == 4


@pytest.mark.django_db
def test_the_api_and_page_use_standing_scores_of_consenting_patients(
    clinician, clinician2, researcher, outsider, client
):
    patient, withdrawn = make_patient("P001"), make_patient("P002")
    for nrs_one, nrs_two in ((1, 5), (3, 3), (8, 9)):
        image = make_image(patient)
        make_label(image, clinician, nrs=0)
        make_label(image, clinician, nrs=nrs_one)  # the correction is what counts
        make_label(image, clinician2, nrs=nrs_two)
    hidden = make_image(withdrawn)
    make_label(hidden, clinician, nrs=0)
    make_label(hidden, clinician2, nrs=10)
    withdraw_consent(patient=withdrawn, actor=clinician)

    body = api_client_for(researcher).get("/api/agreement/").json()
    expected = cohen_kappa_score([1, 3, 8], [5, 3, 9], weights="quadratic", labels=list(range(11)))
    assert body["images_with_two_observers"] == 3
    assert body["observers"]["kappa_quadratic"] == pytest.approx(expected)
    assert [item["patient"] for item in body["adjudication"]] == ["P001"]
    assert api_client_for(None).get("/api/agreement/").status_code == 401
    assert api_client_for(outsider).get("/api/agreement/").status_code == 403
    client.force_login(clinician)
    page = client.get("/agreement/")
    assert page.status_code == 200 and b"Observer vs observer" in page.content
