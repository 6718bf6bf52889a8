"""Cohort metrics and paired comparisons: point values equal scikit-learn's, output is plain JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.metrics import (
    brier_score_loss,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from modeling.ml import bootstrap, comparison, delong, metrics

LEVELS = ["none", "mild", "moderate", "severe"]
N_RESAMPLES = 300  # enough for the intervals' shape; the full 2,000 is exercised by the benchmark


@dataclass
class Predictions:
    levels: np.ndarray
    nrs: np.ndarray
    probabilities: np.ndarray
    patients: list[str]


def level_of(nrs: np.ndarray) -> np.ndarray:
    return np.select([nrs == 0, nrs <= 3, nrs <= 6], [0, 1, 2], 3)


def make_predictions(
    *,
    n_patients: int = 30,
    images_per_patient: int = 6,
    skill: float = 1.5,
    seed: int = 0,
    nrs_choices: list[int] | None = None,
) -> Predictions:
    """A model whose probabilities lean towards the true level by ``skill``, on a few patients."""
    rng = np.random.default_rng(seed)
    n = n_patients * images_per_patient
    nrs = rng.choice(nrs_choices if nrs_choices else np.arange(11), n)
    levels = level_of(nrs)
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), levels] += skill
    # Rounded probabilities, as stored in JSON, produce tied scores.
    probabilities = np.round(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), 3)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    patients = [f"P{index // images_per_patient:03d}" for index in range(n)]
    return Predictions(levels, nrs, probabilities, patients)


def evaluate(predictions: Predictions, **kwargs) -> dict:
    return metrics.evaluate_predictions(
        predictions.levels.tolist(),
        predictions.nrs.tolist(),
        predictions.probabilities.tolist(),
        predictions.patients,
        LEVELS,
        n_bootstrap=kwargs.pop("n_bootstrap", N_RESAMPLES),
        **kwargs,
    )


def assert_plain_json(value: object) -> None:
    """Only dict/list/str/int/float/bool/None, no NaN or infinity: what json.dumps writes back unchanged."""
    text = json.dumps(value, allow_nan=False)
    assert json.loads(text) == value
    stack = [value]
    while stack:
        item = stack.pop()
        assert item is None or type(item) in (dict, list, str, int, float, bool), type(item)
        stack.extend(item.values() if isinstance(item, dict) else item if isinstance(item, list) else [])


def test_point_metrics_equal_scikit_learns():
    data = make_predictions()
    result = evaluate(data)
    predicted = data.probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        data.levels, predicted, labels=[0, 1, 2, 3], zero_division=0
    )
    for level, name in enumerate(LEVELS):
        entry = result["levels"][name]
        assert entry["auroc"] == pytest.approx(
            roc_auc_score(data.levels == level, data.probabilities[:, level]), abs=1e-9
        )
        assert entry["precision"] == pytest.approx(precision[level], abs=1e-9)
        assert entry["recall"] == pytest.approx(recall[level], abs=1e-9)
        assert entry["f1"] == pytest.approx(f1[level], abs=1e-9)
        assert entry["support"] == support[level]
    assert result["macro_auroc"] == pytest.approx(
        roc_auc_score(data.levels, data.probabilities, multi_class="ovr", average="macro"), abs=1e-9
    )
    assert result["macro_f1"] == pytest.approx(f1_score(data.levels, predicted, average="macro"), abs=1e-9)
    assert result["kappa_quadratic"] == pytest.approx(
        cohen_kappa_score(data.levels, predicted, weights="quadratic"), abs=1e-9
    )
    assert result["mae_level"] == pytest.approx(mean_absolute_error(data.levels, predicted), abs=1e-9)
    assert result["confusion_matrix"] == confusion_matrix(data.levels, predicted).tolist()
    assert result["n_images"] == 180 and result["n_patients"] == 30


def test_binary_aurocs_score_nrs_thresholds_with_the_probability_of_the_levels_above_them():
    data = make_predictions(seed=1)
    result = evaluate(data)
    moderate_or_severe = data.probabilities[:, 2] + data.probabilities[:, 3]
    assert result["binary"]["nrs_ge_4"]["auroc"] == pytest.approx(
        roc_auc_score(data.nrs >= 4, moderate_or_severe), abs=1e-9
    )
    assert result["binary"]["nrs_ge_7"]["auroc"] == pytest.approx(
        roc_auc_score(data.nrs >= 7, data.probabilities[:, 3]), abs=1e-9
    )
    assert result["binary"]["nrs_ge_7"]["unavailable"] is None


def test_brier_is_the_sum_over_levels_of_one_vs_rest_brier_scores():
    data = make_predictions(seed=2)
    brier = evaluate(data)["calibration"]["brier"]
    expected = sum(brier_score_loss(data.levels == level, data.probabilities[:, level]) for level in range(4))
    assert brier == pytest.approx(expected, abs=1e-9)


def test_ece_weighs_each_bin_gap_between_accuracy_and_confidence_by_its_share_of_images():
    levels = np.array([0, 0, 1, 1])
    probabilities = np.array([[0.95, 0.05], [0.91, 0.09], [0.35, 0.65], [0.62, 0.38]])
    result = metrics.calibration(levels, probabilities)
    # Bin (0.9, 1]: confidences 0.95, 0.91, both right. Bin (0.6, 0.7]: 0.65 right, 0.62 wrong.
    expected = 2 / 4 * abs(1.0 - 0.93) + 2 / 4 * abs(0.5 - 0.635)
    assert result["ece"] == pytest.approx(expected, abs=1e-12)
    filled = {(round(b["lower"], 1), round(b["upper"], 1)): b for b in result["bins"] if b["count"]}
    assert filled[(0.9, 1.0)]["accuracy"] == 1.0 and filled[(0.9, 1.0)]["count"] == 2
    assert filled[(0.6, 0.7)]["confidence"] == pytest.approx(0.635)
    assert len(result["bins"]) == 10
    assert all(b["confidence"] is None and b["accuracy"] is None for b in result["bins"] if not b["count"])


def test_every_auroc_and_f1_has_a_seeded_interval_around_it():
    data = make_predictions(seed=3)
    result = evaluate(data, seed=11)
    again = evaluate(data, seed=11)
    other_seed = evaluate(data, seed=12)
    for name in LEVELS:
        entry = result["levels"][name]
        assert entry["ci"][0] <= entry["auroc"] <= entry["ci"][1]
        assert entry["f1_ci"][0] <= entry["f1"] <= entry["f1_ci"][1]
    assert result["macro_auroc_ci"][0] <= result["macro_auroc"] <= result["macro_auroc_ci"][1]
    assert result["macro_f1_ci"][0] <= result["macro_f1"] <= result["macro_f1_ci"][1]
    for key in ("nrs_ge_4", "nrs_ge_7"):
        assert result["binary"][key]["ci"][0] <= result["binary"][key]["auroc"] <= result["binary"][key]["ci"][1]
    assert result == again
    assert result["levels"]["severe"]["ci"] != other_seed["levels"]["severe"]["ci"]
    assert result["bootstrap"]["resamples"] == N_RESAMPLES and result["bootstrap"]["seed"] == 11
    assert result["bootstrap"]["method"] == "patient-cluster percentile"


def test_the_interval_matches_an_independent_loop_over_the_same_patient_draws():
    data = make_predictions(n_patients=12, images_per_patient=4, seed=4)
    result = evaluate(data, n_bootstrap=200, seed=5)
    resamples = bootstrap.ClusterResamples.draw(data.patients, n_resamples=200, seed=5)
    severe = data.levels == 3
    values = []
    for resample in range(200):
        weights = resamples.counts[:, resample][resamples.patient_of_image].astype(int)
        images = np.repeat(np.arange(weights.size), weights)
        if severe[images].any() and not severe[images].all():
            values.append(roc_auc_score(severe[images], data.probabilities[images, 3]))
    assert result["levels"]["severe"]["ci"] == pytest.approx(list(np.percentile(values, [2.5, 97.5])), abs=1e-12)
    assert result["bootstrap"]["dropped"]["auroc"]["severe"] == 200 - len(values)


def test_a_level_without_positive_cases_has_a_null_auroc_with_a_reason_and_no_nan():
    data = make_predictions(seed=5, nrs_choices=[1, 2, 5, 8, 9])  # nobody scores 0
    result = evaluate(data)
    none = result["levels"]["none"]
    assert none["auroc"] is None and none["ci"] is None
    assert none["auroc_unavailable"] == "no positive cases in the test set"
    assert none["support"] == 0 and none["f1_ci"] is None
    assert none["roc"] == {"fpr": [], "tpr": []}
    assert result["macro_auroc_levels"] == ["mild", "moderate", "severe"]
    expected_macro = np.mean([roc_auc_score(data.levels == level, data.probabilities[:, level]) for level in (1, 2, 3)])
    assert result["macro_auroc"] == pytest.approx(expected_macro, abs=1e-9)
    assert_plain_json(result)


def test_a_level_without_negative_cases_has_a_null_auroc_with_a_reason():
    data = make_predictions(n_patients=4, images_per_patient=3, seed=6, nrs_choices=[8, 9, 10])
    result = evaluate(data)
    assert result["levels"]["severe"]["auroc"] is None
    assert result["levels"]["severe"]["auroc_unavailable"] == "no negative cases in the test set"
    assert result["macro_auroc"] is None and result["macro_auroc_ci"] is None
    assert result["binary"]["nrs_ge_7"]["unavailable"] == "no negative cases in the test set"
    assert_plain_json(result)


def test_everything_it_returns_is_plain_json():
    assert_plain_json(evaluate(make_predictions(seed=7)))


def test_a_cohort_without_test_images_is_reported_unavailable():
    result = metrics.evaluate_predictions([], [], [], [], LEVELS)
    assert result == {"n_images": 0, "n_patients": 0, "unavailable": "no test images in this cohort"}


def test_roc_points_are_at_most_101_points_of_scikit_learns_curve_from_corner_to_corner():
    data = make_predictions(n_patients=60, images_per_patient=8, skill=0.8, seed=8)
    probabilities = data.probabilities + np.random.default_rng(0).random(data.probabilities.shape) * 1e-6
    probabilities /= probabilities.sum(axis=1, keepdims=True)  # distinct scores: a curve of many points
    data.probabilities = probabilities
    roc = evaluate(data)["levels"]["moderate"]["roc"]
    fpr, tpr, _ = roc_curve(data.levels == 2, probabilities[:, 2])
    assert len(fpr) > 101
    assert 2 < len(roc["fpr"]) <= 101
    assert (roc["fpr"][0], roc["tpr"][0]) == (0.0, 0.0) and (roc["fpr"][-1], roc["tpr"][-1]) == (1.0, 1.0)
    full_curve = set(zip(fpr.tolist(), tpr.tolist()))
    assert all(point in full_curve for point in zip(roc["fpr"], roc["tpr"]))
    # Evenly spread along the curve: no step along it longer than 2/100 plus one original step.
    travelled = np.array(roc["fpr"]) + np.array(roc["tpr"])
    longest_original_step = np.max(np.diff(fpr + tpr))
    assert np.max(np.diff(travelled)) <= 0.02 + longest_original_step + 1e-12


def test_binary_aurocs_need_level_ranges_that_do_not_split_a_threshold():
    data = make_predictions(seed=9)
    names = ["low", "middle", "high", "worst"]
    without_ranges = metrics.evaluate_predictions(
        data.levels, data.nrs, data.probabilities, data.patients, names, n_bootstrap=50
    )
    assert without_ranges["binary"]["nrs_ge_4"]["unavailable"] == "the NRS range of each level was not given"
    # none 0, mild 1-2, moderate 3-6, severe 7-10: NRS >= 4 falls inside moderate.
    nrs = np.array([{0: 0, 1: 2, 2: 5, 3: 8}[level] for level in data.levels])
    split = metrics.evaluate_predictions(
        data.levels,
        nrs,
        data.probabilities,
        data.patients,
        LEVELS,
        n_bootstrap=50,
        level_ranges=[(0, 0), (1, 2), (3, 6), (7, 10)],
    )
    assert "splits level 'moderate' (3-6)" in split["binary"]["nrs_ge_4"]["unavailable"]
    assert split["binary"]["nrs_ge_7"]["auroc"] == pytest.approx(
        roc_auc_score(nrs >= 7, data.probabilities[:, 3]), abs=1e-9
    )


def test_it_rejects_predictions_that_do_not_fit_the_levels():
    data = make_predictions(n_patients=3, images_per_patient=2)
    with pytest.raises(ValueError, match="one column per level"):
        metrics.evaluate_predictions(data.levels, data.nrs, data.probabilities[:, :3], data.patients, LEVELS)
    with pytest.raises(ValueError, match="5 patients given for 6 images"):
        metrics.evaluate_predictions(data.levels, data.nrs, data.probabilities, data.patients[:5], LEVELS)
    with pytest.raises(ValueError, match="between 0 and 3"):
        metrics.evaluate_predictions(data.levels + 1, data.nrs, data.probabilities, data.patients, LEVELS)
    with pytest.raises(ValueError, match="sum to 1"):
        metrics.evaluate_predictions(data.levels, data.nrs, data.probabilities * 2, data.patients, LEVELS)
    with pytest.raises(ValueError, match="between 0 and 10"):
        metrics.evaluate_predictions(data.levels, data.nrs + 11, data.probabilities, data.patients, LEVELS)


def test_binary_aurocs_are_unavailable_when_nrs_scores_contradict_their_levels():
    data = make_predictions(n_patients=5, images_per_patient=4, seed=13)
    wrong = data.nrs.copy()
    wrong[data.levels == 0] = 9  # "none" images with NRS 9
    result = metrics.evaluate_predictions(data.levels, wrong, data.probabilities, data.patients, LEVELS, n_bootstrap=50)
    count = int((data.levels == 0).sum())
    assert result["binary"]["nrs_ge_4"]["unavailable"].startswith(f"the NRS scores of {count} images fall outside")
    assert result["levels"]["none"]["auroc"] is not None, "the per-level metrics stay"


def test_a_fractional_median_nrs_rounds_half_up_like_the_level_mapping():
    data = make_predictions(n_patients=10, images_per_patient=4, seed=14)
    nrs = data.nrs.astype(float)
    halves = (data.levels == 2) & (data.nrs == 4)
    nrs[halves] = 3.5  # the median of observer scores 3 and 4 is level moderate
    assert halves.any()
    result = metrics.evaluate_predictions(
        data.levels,
        nrs,
        data.probabilities,
        data.patients,
        LEVELS,
        n_bootstrap=50,
        level_ranges=[(0, 0), (1, 3), (4, 6), (7, 10)],
    )
    moderate_or_severe = data.probabilities[:, 2] + data.probabilities[:, 3]
    assert result["binary"]["nrs_ge_4"]["auroc"] == pytest.approx(
        roc_auc_score(data.levels >= 2, moderate_or_severe), abs=1e-9
    )


def test_comparison_reports_b_minus_a_with_a_paired_interval_and_delong_p_value():
    data = make_predictions(seed=10, skill=1.0)
    better = make_predictions(seed=10, skill=2.5)
    result = comparison.compare_predictions(
        data.levels, data.probabilities, better.probabilities, data.patients, LEVELS, n_bootstrap=N_RESAMPLES, seed=3
    )
    for level, name in enumerate(LEVELS):
        entry = result["levels"][name]
        is_level = data.levels == level
        auroc_a = roc_auc_score(is_level, data.probabilities[:, level])
        auroc_b = roc_auc_score(is_level, better.probabilities[:, level])
        assert entry["auroc_a"] == pytest.approx(auroc_a, abs=1e-9)
        assert entry["auroc_b"] == pytest.approx(auroc_b, abs=1e-9)
        assert entry["delta_auroc"] == pytest.approx(auroc_b - auroc_a, abs=1e-9)
        assert entry["delta_ci"][0] <= entry["delta_auroc"] <= entry["delta_ci"][1]
        assert entry["delta_ci"][0] > 0, "a much better model should be better in every resample's bulk"
        expected_p = delong.paired_test(
            is_level, data.probabilities[:, level], better.probabilities[:, level], np.array(data.patients)
        ).p_value
        assert entry["delong_p"] == pytest.approx(expected_p, rel=1e-12)
        assert entry["ci_not_estimable"] is None and entry["p_not_estimable"] is None
        f1_a = f1_score(is_level, data.probabilities.argmax(axis=1) == level)
        f1_b = f1_score(is_level, better.probabilities.argmax(axis=1) == level)
        assert entry["delta_f1"] == pytest.approx(f1_b - f1_a, abs=1e-9)
    assert result["macro"]["delta_auroc"] == pytest.approx(
        result["macro"]["auroc_b"] - result["macro"]["auroc_a"], abs=1e-12
    )
    assert result["macro"]["delta_ci"][0] > 0
    assert result["p_value_method"] == "DeLong test, patient-clustered variance (Obuchowski 1997)"
    assert_plain_json(result)


def test_a_model_compared_with_itself_differs_by_nothing():
    data = make_predictions(seed=11)
    result = comparison.compare_predictions(
        data.levels, data.probabilities, data.probabilities, data.patients, LEVELS, n_bootstrap=100
    )
    for entry in result["levels"].values():
        assert entry["delta_auroc"] == 0.0 and entry["delta_f1"] == 0.0
        # Every resample differs by exactly 0: a zero-width interval is withheld, not shown as certain.
        assert entry["delta_ci"] is None and "zero-width" in entry["ci_not_estimable"]
        assert entry["delong_p"] == 1.0


def test_comparison_marks_a_level_without_positive_cases_unavailable():
    data = make_predictions(seed=12, nrs_choices=[2, 5, 9])
    result = comparison.compare_predictions(
        data.levels, data.probabilities, data.probabilities[::-1], data.patients, LEVELS, n_bootstrap=100
    )
    none = result["levels"]["none"]
    assert none["unavailable"] == "no positive cases in the test set"
    assert none["auroc_a"] is None and none["delta_ci"] is None and none["delong_p"] is None
    assert result["macro"]["delta_auroc"] is not None
    assert_plain_json(result)


def test_kappa_is_null_when_truth_and_prediction_are_one_single_level():
    probabilities = np.tile([0.1, 0.1, 0.1, 0.7], (6, 1))
    result = metrics.evaluate_predictions(
        [3] * 6, [8] * 6, probabilities, ["P1", "P1", "P2", "P2", "P3", "P3"], LEVELS, n_bootstrap=50
    )
    assert result["kappa_quadratic"] is None
    assert result["mae_level"] == 0.0
    assert result["levels"]["severe"]["f1"] == 1.0
    assert_plain_json(result)
