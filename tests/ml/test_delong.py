"""DeLong's test against the O(m*n) structural-components definition of DeLong et al. (1988)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from modeling.ml import delong


def reference_components(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong 1988, written out: psi(X, Y) for every positive X and negative Y, then S10/m + S01/n."""
    y_true = np.asarray(y_true, dtype=bool)
    scores = np.atleast_2d(scores)
    aurocs, v10_rows, v01_rows = [], [], []
    for row in scores:
        positives, negatives = row[y_true], row[~y_true]
        psi = (positives[:, None] > negatives[None, :]) + 0.5 * (positives[:, None] == negatives[None, :])
        aurocs.append(psi.mean())
        v10_rows.append(psi.mean(axis=1))
        v01_rows.append(psi.mean(axis=0))
    v10, v01 = np.array(v10_rows), np.array(v01_rows)
    aurocs = np.array(aurocs)
    m, n = v10.shape[1], v01.shape[1]
    s10 = (v10 - aurocs[:, None]) @ (v10 - aurocs[:, None]).T / (m - 1)
    s01 = (v01 - aurocs[:, None]) @ (v01 - aurocs[:, None]).T / (n - 1)
    return aurocs, s10 / m + s01 / n


def make_two_models(n: int = 120, seed: int = 0, *, ties: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.4
    shared = rng.normal(size=n)
    scores_a = shared + 0.8 * y + rng.normal(scale=0.7, size=n)
    scores_b = shared + 1.2 * y + rng.normal(scale=0.7, size=n)
    if ties:
        # Coarse scores, as from a model that outputs rounded probabilities, create many ties.
        scores_a, scores_b = np.round(scores_a, 1), np.round(scores_b, 1)
    return y, scores_a, scores_b


@pytest.mark.parametrize("ties", [False, True])
def test_it_matches_the_structural_components_definition_for_one_auroc(ties):
    y, scores, _ = make_two_models(ties=ties)
    auroc, variance = delong.variance(y, scores)
    reference_auroc, reference_covariance = reference_components(y, scores)
    assert auroc == pytest.approx(reference_auroc[0], abs=1e-12)
    assert variance == pytest.approx(reference_covariance[0, 0], rel=1e-10)


def test_its_auroc_equals_scikit_learns():
    y, scores_a, scores_b = make_two_models(seed=3)
    result = delong.components(y, np.vstack([scores_a, scores_b]))
    assert result.aurocs[0] == pytest.approx(roc_auc_score(y, scores_a), abs=1e-12)
    assert result.aurocs[1] == pytest.approx(roc_auc_score(y, scores_b), abs=1e-12)


def test_it_matches_the_reference_covariance_of_two_correlated_aurocs():
    y, scores_a, scores_b = make_two_models(seed=5)
    result = delong.components(y, np.vstack([scores_a, scores_b]))
    _, reference_covariance = reference_components(y, np.vstack([scores_a, scores_b]))
    np.testing.assert_allclose(result.covariance, reference_covariance, rtol=1e-10)
    assert result.covariance[0, 1] > 0, "models sharing a latent score should have correlated AUROCs"


def test_its_paired_p_value_follows_from_the_reference_variance_of_the_difference():
    y, scores_a, scores_b = make_two_models(seed=7)
    aurocs, covariance = reference_components(y, np.vstack([scores_a, scores_b]))
    z = (aurocs[1] - aurocs[0]) / np.sqrt(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    result = delong.paired_test(y, scores_a, scores_b)
    assert result.delta == pytest.approx(aurocs[1] - aurocs[0], abs=1e-12)
    assert result.z == pytest.approx(z, rel=1e-9)
    assert result.p_value == pytest.approx(2 * norm.sf(abs(z)), rel=1e-9)


def test_it_finds_a_clearly_better_model_significant_and_a_copy_not():
    rng = np.random.default_rng(11)
    y = rng.random(400) < 0.5
    noise = rng.normal(size=400)
    weak, strong = noise + 0.3 * y, noise + 2.0 * y + 0.3 * rng.normal(size=400)
    assert delong.paired_test(y, weak, strong).p_value < 1e-6
    same = delong.paired_test(y, weak, weak.copy())
    assert same.delta == 0.0
    assert same.p_value == 1.0


def test_it_rejects_fewer_than_two_cases_of_a_class():
    y = np.array([True, False, False, False])
    with pytest.raises(ValueError, match="at least 2 positive and 2 negative"):
        delong.variance(y, np.array([0.9, 0.1, 0.2, 0.3]))
