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


# --- Patient-clustered variance: Obuchowski (1997), Biometrics 53:567-578 ---------------------


def reference_clustered(y_true: np.ndarray, scores: np.ndarray, clusters: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Obuchowski 1997, section 2, written out with loops: psi for every (positive, negative) pair,
    V10(X_ij) and V01(Y_ij), their sums within each cluster i, then S10, S01, S11 and
    cov(A_r, A_s) = S10/M + S01/N + (S11^{rs} + S11^{sr}) / (M N)."""
    y_true = np.asarray(y_true, dtype=bool)
    scores = np.atleast_2d(scores)
    names = sorted(set(clusters))
    positives = [k for k in range(len(y_true)) if y_true[k]]
    negatives = [k for k in range(len(y_true)) if not y_true[k]]
    M, N = len(positives), len(negatives)
    n_models = scores.shape[0]

    def psi(x: float, y: float) -> float:
        return 1.0 if x > y else 0.5 if x == y else 0.0

    aurocs = np.zeros(n_models)
    v10_cluster = np.zeros((n_models, len(names)))
    v01_cluster = np.zeros((n_models, len(names)))
    m_i = np.zeros(len(names))
    n_i = np.zeros(len(names))
    for index, name in enumerate(names):
        m_i[index] = sum(1 for k in positives if clusters[k] == name)
        n_i[index] = sum(1 for k in negatives if clusters[k] == name)
    for r in range(n_models):
        total = 0.0
        for k in positives:
            v10 = sum(psi(scores[r, k], scores[r, j]) for j in negatives) / N
            v10_cluster[r, names.index(clusters[k])] += v10
            total += v10
        aurocs[r] = total / M
        for j in negatives:
            v01 = sum(psi(scores[r, k], scores[r, j]) for k in positives) / M
            v01_cluster[r, names.index(clusters[j])] += v01
    i10 = int(np.sum(m_i > 0))
    i01 = int(np.sum(n_i > 0))
    n_clusters = len(names)
    covariance = np.zeros((n_models, n_models))
    for r in range(n_models):
        for s in range(n_models):
            s10 = s01 = s11_rs = s11_sr = 0.0
            for i in range(n_clusters):
                a10 = v10_cluster[r, i] - m_i[i] * aurocs[r]
                b10 = v10_cluster[s, i] - m_i[i] * aurocs[s]
                a01 = v01_cluster[r, i] - n_i[i] * aurocs[r]
                b01 = v01_cluster[s, i] - n_i[i] * aurocs[s]
                s10 += a10 * b10
                s01 += a01 * b01
                s11_rs += a10 * b01
                s11_sr += b10 * a01
            s10 *= i10 / ((i10 - 1) * M)
            s01 *= i01 / ((i01 - 1) * N)
            s11_rs *= n_clusters / (n_clusters - 1)
            s11_sr *= n_clusters / (n_clusters - 1)
            covariance[r, s] = s10 / M + s01 / N + (s11_rs + s11_sr) / (M * N)
    return aurocs, covariance


def make_clustered(
    n_patients: int = 25, seed: int = 0, *, ties: bool = True
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Patients with 1-6 images, a patient-level effect on both models' scores, mixed classes."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 7, n_patients)
    clusters = [f"P{p:02d}" for p, size in enumerate(sizes) for _ in range(size)]
    patient_effect = np.repeat(rng.normal(size=n_patients), sizes)
    prone = np.repeat(rng.random(n_patients), sizes)
    y = rng.random(len(clusters)) < prone
    scores = np.vstack([patient_effect + shift * y + rng.normal(scale=0.8, size=len(clusters)) for shift in (0.7, 1.1)])
    return y, (np.round(scores, 1) if ties else scores), clusters


@pytest.mark.parametrize(("seed", "ties"), [(0, True), (1, False), (2, True)])
def test_the_clustered_covariance_matches_obuchowskis_formulas_written_out(seed, ties):
    y, scores, clusters = make_clustered(seed=seed, ties=ties)
    result = delong.clustered_components(y, scores, clusters)
    reference_aurocs, reference_covariance = reference_clustered(y, scores, clusters)
    np.testing.assert_allclose(result.aurocs, reference_aurocs, atol=1e-12)
    np.testing.assert_allclose(result.covariance, reference_covariance, rtol=1e-10)
    assert result.aurocs[0] == pytest.approx(roc_auc_score(y, scores[0]), abs=1e-12)


def test_with_one_image_per_patient_it_is_plain_delong():
    y, scores_a, scores_b = make_two_models(seed=9)
    clusters = [f"P{i:03d}" for i in range(len(y))]
    clustered = delong.clustered_components(y, np.vstack([scores_a, scores_b]), clusters)
    plain = delong.components(y, np.vstack([scores_a, scores_b]))
    _, loop_covariance = reference_components(y, np.vstack([scores_a, scores_b]))
    np.testing.assert_allclose(clustered.covariance, plain.covariance, rtol=1e-12)
    np.testing.assert_allclose(clustered.covariance, loop_covariance, rtol=1e-10)
    assert delong.paired_test(y, scores_a, scores_b, clusters).p_value == pytest.approx(
        delong.paired_test(y, scores_a, scores_b).p_value, rel=1e-12
    )


def test_correlated_images_widen_the_variance_of_the_difference():
    y, scores, clusters = make_clustered(n_patients=40, seed=4)
    clustered = delong.paired_test(y, scores[0], scores[1], clusters)
    per_image = delong.paired_test(y, scores[0], scores[1])
    assert clustered.delta == per_image.delta
    assert clustered.variance > per_image.variance


def test_the_clustered_test_needs_two_patients_of_each_class():
    y = np.array([True, True, False, False, False])
    with pytest.raises(ValueError, match="at least 2 patients with a positive and 2 with a negative"):
        delong.clustered_components(y, np.array([0.9, 0.8, 0.1, 0.2, 0.3]), ["A", "A", "B", "C", "D"])
