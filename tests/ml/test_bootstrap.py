"""The vectorised patient-cluster bootstrap, checked resample by resample against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import f1_score, roc_auc_score

from modeling.ml import bootstrap


def make_clustered_scores(
    rng: np.random.Generator, *, n_patients: int = 30, images_per_patient: int = 5, separation: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Correlated images: each patient has an offset shared by all their images' scores, and is
    either mostly in pain (70% positive images) or mostly not (10%)."""
    patients = np.repeat(np.arange(n_patients), images_per_patient)
    share_positive = rng.choice([0.1, 0.7], n_patients)[patients]
    y = rng.random(patients.size) < share_positive
    patient_offset = rng.normal(size=n_patients)[patients]
    scores = patient_offset + separation * y + rng.normal(size=patients.size)
    return patients, y, scores


def drawn_images(resamples: bootstrap.ClusterResamples, resample: int) -> np.ndarray:
    """Indices of the images resample ``resample`` contains, each repeated as often as its patient was drawn."""
    counts = resamples.counts[:, resample].astype(int)[resamples.patient_of_image]
    return np.repeat(np.arange(counts.size), counts)


def test_it_draws_whole_patients_with_replacement_reproducibly():
    patients = ["P3", "P1", "P1", "P2", "P3", "P3"]
    first = bootstrap.ClusterResamples.draw(patients, n_resamples=50, seed=4)
    again = bootstrap.ClusterResamples.draw(patients, n_resamples=50, seed=4)
    other = bootstrap.ClusterResamples.draw(patients, n_resamples=50, seed=5)
    assert first.counts.shape == (3, 50)
    assert np.all(first.counts.sum(axis=0) == 3)
    np.testing.assert_array_equal(first.counts, again.counts)
    assert not np.array_equal(first.counts, other.counts)
    # Images of one patient always carry the same weight.
    assert first.patient_of_image[1] == first.patient_of_image[2]
    assert first.patient_of_image[0] == first.patient_of_image[4] == first.patient_of_image[5]


def test_each_resampled_auroc_equals_scikit_learns_on_the_images_it_drew():
    rng = np.random.default_rng(0)
    patients, y, scores = make_clustered_scores(rng)
    scores = np.round(scores, 1)  # ties, within and across patients
    resamples = bootstrap.ClusterResamples.draw(patients, n_resamples=40, seed=1)
    values = bootstrap.auroc(resamples, y, scores)
    for resample in range(resamples.n_resamples):
        images = drawn_images(resamples, resample)
        assert values[resample] == pytest.approx(roc_auc_score(y[images], scores[images]), abs=1e-12)


def test_each_resampled_f1_equals_scikit_learns_on_the_images_it_drew():
    rng = np.random.default_rng(2)
    patients = np.repeat(np.arange(25), 4)
    y_true = rng.integers(0, 4, patients.size)
    y_pred = np.where(rng.random(patients.size) < 0.6, y_true, rng.integers(0, 4, patients.size))
    resamples = bootstrap.ClusterResamples.draw(patients, n_resamples=30, seed=3)
    per_level = bootstrap.f1_per_level(resamples, y_true, y_pred, 4)
    macro = bootstrap.macro_f1(resamples, y_true, y_pred, 4)
    for resample in range(resamples.n_resamples):
        images = drawn_images(resamples, resample)
        expected = f1_score(y_true[images], y_pred[images], labels=[0, 1, 2, 3], average=None, zero_division=0)
        present = np.isin([0, 1, 2, 3], y_true[images])
        np.testing.assert_allclose(per_level[resample][present], expected[present], atol=1e-12)
        assert np.all(np.isnan(per_level[resample][~present]))
        assert macro[resample] == pytest.approx(
            f1_score(y_true[images], y_pred[images], average="macro", zero_division=0), abs=1e-12
        )


def test_resamples_without_a_positive_case_are_dropped_and_counted():
    # Only one of twenty patients has positive images, so some resamples leave that patient out.
    patients = np.repeat(np.arange(20), 3)
    y = patients == 7
    scores = np.linspace(0, 1, patients.size)
    resamples = bootstrap.ClusterResamples.draw(patients, n_resamples=500, seed=0)
    values = bootstrap.auroc(resamples, y, scores)
    missing = resamples.counts[resamples.patient_of_image[y][0]] == 0
    assert missing.any()
    assert np.all(np.isnan(values[missing]))
    assert np.all(np.isfinite(values[~missing]))
    interval, dropped = bootstrap.percentile_interval(values)
    assert dropped == int(missing.sum())
    assert interval is not None and interval.low <= interval.high


def test_it_gives_no_interval_when_most_resamples_are_unusable():
    values = np.array([0.7, 0.8] + [np.nan] * 8)
    interval, dropped = bootstrap.percentile_interval(values)
    assert interval is None
    assert dropped == 8


def test_the_percentile_interval_is_numpys_2_5_and_97_5_percentiles():
    values = np.random.default_rng(9).normal(size=2000)
    interval, dropped = bootstrap.percentile_interval(values)
    assert dropped == 0
    assert interval.as_list() == pytest.approx(list(np.percentile(values, [2.5, 97.5])), abs=0)


def test_its_95_percent_interval_covers_the_true_auroc_in_at_least_90_percent_of_simulated_studies():
    # Offsets and noise are standard normal and independent of the label, so for a positive and a
    # negative image of different patients the score difference is N(separation, 4): the
    # population AUROC is Phi(separation / 2).
    separation = 1.2
    true_auroc = norm.cdf(separation / 2)
    rng = np.random.default_rng(2024)
    n_studies = 200
    covered_by_patients = covered_by_images = 0
    for study in range(n_studies):
        patients, y, scores = make_clustered_scores(rng, n_patients=40, images_per_patient=5, separation=separation)
        for unit in ("patients", "images"):
            # Resampling images as if independent is the mistake the patient clusters avoid.
            clusters = patients if unit == "patients" else np.arange(patients.size)
            resamples = bootstrap.ClusterResamples.draw(clusters, n_resamples=1000, seed=study)
            interval, _ = bootstrap.percentile_interval(bootstrap.auroc(resamples, y, scores))
            covered = interval.low <= true_auroc <= interval.high
            if unit == "patients":
                covered_by_patients += covered
            else:
                covered_by_images += covered
    assert covered_by_patients / n_studies >= 0.90
    assert covered_by_images < covered_by_patients, "clustered images should make an image bootstrap too narrow"
