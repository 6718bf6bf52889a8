"""No interval or p-value the test set cannot support: withheld with the reason, point values kept."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from modeling.ml import comparison, estimability, metrics
from modeling.ml.bootstrap import Interval

from .test_metrics import LEVELS, assert_plain_json, make_predictions


def few_severe_patients(n_patients: int = 30, severe_patients: int = 4, seed: int = 0):
    """Predictions where only ``severe_patients`` patients have any severe image."""
    data = make_predictions(n_patients=n_patients, images_per_patient=5, seed=seed, nrs_choices=[0, 2, 5])
    severe = np.isin(np.array(data.patients), [f"P{p:03d}" for p in range(severe_patients)])
    chosen = severe & (np.arange(len(severe)) % 5 < 3)  # three severe images each
    data.nrs[chosen] = 8
    data.levels[chosen] = 3
    return data


def test_a_level_with_four_positive_patients_keeps_its_auroc_but_gets_no_interval():
    data = few_severe_patients(severe_patients=4)
    result = metrics.evaluate_predictions(
        data.levels, data.nrs, data.probabilities, data.patients, LEVELS, n_bootstrap=200
    )
    severe = result["levels"]["severe"]
    assert severe["auroc"] == pytest.approx(roc_auc_score(data.levels == 3, data.probabilities[:, 3]), abs=1e-9)
    assert severe["ci"] is None and severe["f1_ci"] is None
    assert (
        severe["ci_not_estimable"]
        == "too few patients for an interval: 4 with a positive case, at least 5 of each needed"
    )
    assert severe["f1_ci_not_estimable"] == severe["ci_not_estimable"]
    assert result["binary"]["nrs_ge_7"]["ci"] is None
    assert "4 with a positive case" in result["binary"]["nrs_ge_7"]["ci_not_estimable"]
    # An average over a level without an interval has none either; the other levels keep theirs.
    assert result["macro_auroc_ci"] is None and "severe" in result["macro_auroc_ci_not_estimable"]
    assert result["macro_f1_ci"] is None and "severe" in result["macro_f1_ci_not_estimable"]
    assert result["levels"]["moderate"]["ci"] is not None and result["levels"]["moderate"]["ci_not_estimable"] is None
    assert result["ci_not_estimable"] is None
    assert_plain_json(result)


def test_five_positive_patients_are_enough():
    data = few_severe_patients(severe_patients=5)
    result = metrics.evaluate_predictions(
        data.levels, data.nrs, data.probabilities, data.patients, LEVELS, n_bootstrap=200
    )
    assert result["levels"]["severe"]["ci"] is not None
    assert result["levels"]["severe"]["ci_not_estimable"] is None


def test_the_comparison_withholds_the_interval_and_the_p_value_of_such_a_level():
    data = few_severe_patients(severe_patients=4)
    other = make_predictions(n_patients=30, images_per_patient=5, seed=9, skill=0.5)
    result = comparison.compare_predictions(
        data.levels, data.probabilities, other.probabilities, data.patients, LEVELS, n_bootstrap=200
    )
    severe = result["levels"]["severe"]
    assert severe["delta_auroc"] is not None
    assert severe["delta_ci"] is None and severe["delong_p"] is None
    assert "4 with a positive case" in severe["ci_not_estimable"]
    assert severe["p_not_estimable"] == severe["ci_not_estimable"]
    assert result["levels"]["mild"]["delong_p"] is not None
    assert result["macro"]["delta_ci"] is None and "severe" in result["macro"]["ci_not_estimable"]
    assert_plain_json(result)


def test_a_cohort_of_nine_patients_gets_no_interval_at_all():
    data = make_predictions(n_patients=9, images_per_patient=8, seed=2)
    result = metrics.evaluate_predictions(
        data.levels, data.nrs, data.probabilities, data.patients, LEVELS, n_bootstrap=100
    )
    flag = "too few patients for intervals: 9 test patients, at least 10 needed"
    assert result["ci_not_estimable"] == flag
    assert result["macro_auroc"] is not None and result["macro_auroc_ci"] is None
    for entry in result["levels"].values():
        assert entry["ci"] is None and entry["f1_ci"] is None
    assert {entry["ci_not_estimable"] for entry in result["levels"].values() if entry["auroc"] is not None} == {flag}
    compared = comparison.compare_predictions(
        data.levels, data.probabilities, data.probabilities[::-1], data.patients, LEVELS, n_bootstrap=100
    )
    assert compared["ci_not_estimable"] == flag
    assert all(entry["delong_p"] is None and entry["delta_ci"] is None for entry in compared["levels"].values())
    assert_plain_json(result)
    assert_plain_json(compared)


def test_a_perfectly_separating_level_gets_no_zero_width_interval():
    data = make_predictions(n_patients=20, images_per_patient=4, seed=3)
    probabilities = data.probabilities.copy()
    probabilities[:, 3] = np.where(data.levels == 3, 0.97, 0.01)
    probabilities[:, :3] = (
        (1 - probabilities[:, 3:]) * probabilities[:, :3] / probabilities[:, :3].sum(axis=1, keepdims=True)
    )
    result = metrics.evaluate_predictions(data.levels, data.nrs, probabilities, data.patients, LEVELS, n_bootstrap=100)
    severe = result["levels"]["severe"]
    assert severe["auroc"] == 1.0 and severe["ci"] is None
    assert "zero-width" in severe["ci_not_estimable"]


def test_the_rule_counts_patients_not_images():
    patient_of_image = np.array([0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5])
    many_images_one_patient = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    assert "1 with a positive case" in estimability.class_problem(many_images_one_patient, patient_of_image)
    assert estimability.interval_problem(Interval(0.5, 0.5), 0, 100).startswith("every bootstrap resample")
    assert estimability.interval_problem(None, 60, 100).startswith("60 of 100 bootstrap resamples")
    assert estimability.interval_problem(Interval(0.4, 0.6), 0, 100) is None
