"""DeLong's nonparametric variance of AUROC, and his test for two correlated AUROCs.

DeLong, DeLong & Clarke-Pearson (1988), Biometrics 44:837-845, computed with the midrank algorithm
of Sun & Xu (2014), IEEE Signal Processing Letters 21:1389-1393: the structural components come
from three rankings (positives alone, negatives alone, all together) in O(n log n) instead of
comparing every positive with every negative.

Several images of one patient are correlated, so the paired test takes each image's patient:
``clustered_components`` is Obuchowski's (1997) extension of DeLong's structural-components
variance to clustered data (Biometrics 53:567-578), where the structural components are summed
within each patient and the patients, not the images, are the independent units. With one image
per patient it equals DeLong's variance exactly. ``components`` (images independent) is kept as
that special case and for one-image-per-patient data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr
from scipy.stats import rankdata

CLUSTERED_METHOD = "DeLong test, patient-clustered variance (Obuchowski 1997)"


@dataclass(frozen=True)
class DelongComponents:
    """AUROC of each score row and the covariance matrix of those AUROCs."""

    aurocs: np.ndarray  # (n_models,)
    covariance: np.ndarray  # (n_models, n_models)


@dataclass(frozen=True)
class DelongTest:
    auroc_a: float
    auroc_b: float
    delta: float  # auroc_b - auroc_a
    variance: float  # of the difference
    z: float | None
    p_value: float


def components(y_true: np.ndarray, scores: np.ndarray) -> DelongComponents:
    """DeLong AUROCs and covariance for ``scores`` of shape (n_images,) or (n_models, n_images).

    Needs at least two positive and two negative cases (the covariance divides by m - 1, n - 1).
    """
    y_true = np.asarray(y_true, dtype=bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    positives, negatives = scores[:, y_true], scores[:, ~y_true]
    m, n = positives.shape[1], negatives.shape[1]
    if m < 2 or n < 2:
        raise ValueError(f"DeLong's variance needs at least 2 positive and 2 negative cases, got {m} and {n}")
    v10, v01, aurocs = _structural_components(positives, negatives)
    covariance = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return DelongComponents(aurocs=aurocs, covariance=covariance)


def clustered_components(y_true: np.ndarray, scores: np.ndarray, clusters: np.ndarray) -> DelongComponents:
    """Obuchowski's clustered AUROCs and covariance for ``scores`` of shape (n_images,) or (n_models, n_images).

    ``clusters`` gives each image's patient (any labels). With M positive and N negative images,
    and per patient i its positives' summed V10 (V10_i.), negatives' summed V01 (V01_i.) and
    counts m_i, n_i, Obuchowski's covariance of the AUROCs of models r and s is

        S10[r,s]/M + S01[r,s]/N + (S11[r,s] + S11[s,r])/(M N), where
        S10 = I10 / ((I10 - 1) M) * sum_i (V10_i.^r - m_i A^r)(V10_i.^s - m_i A^s),
        S01 = I01 / ((I01 - 1) N) * sum_i (V01_i.^r - n_i A^r)(V01_i.^s - n_i A^s),
        S11 = I / (I - 1) * sum_i (V10_i.^r - m_i A^r)(V01_i.^s - n_i A^s),

    I10 and I01 being the numbers of patients with a positive and with a negative image, I all
    patients. Needs at least two patients with a positive and two with a negative image.
    """
    y_true = np.asarray(y_true, dtype=bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    _, cluster_of_image = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    if cluster_of_image.size != y_true.size:
        raise ValueError(f"{cluster_of_image.size} patients given for {y_true.size} images")
    n_clusters = int(cluster_of_image.max()) + 1
    positive_clusters, negative_clusters = cluster_of_image[y_true], cluster_of_image[~y_true]
    i10, i01 = np.unique(positive_clusters).size, np.unique(negative_clusters).size
    if i10 < 2 or i01 < 2:
        raise ValueError(
            f"the clustered DeLong variance needs at least 2 patients with a positive and 2 with a negative case, "
            f"got {i10} and {i01}"
        )
    v10, v01, aurocs = _structural_components(scores[:, y_true], scores[:, ~y_true])
    m, n = v10.shape[1], v01.shape[1]
    positives_per_cluster = np.bincount(positive_clusters, minlength=n_clusters)
    negatives_per_cluster = np.bincount(negative_clusters, minlength=n_clusters)
    # Per patient and model: summed components minus what the patient's case count predicts.
    v10_sums = np.stack([np.bincount(positive_clusters, weights=row, minlength=n_clusters) for row in v10])
    v01_sums = np.stack([np.bincount(negative_clusters, weights=row, minlength=n_clusters) for row in v01])
    d10 = v10_sums - positives_per_cluster[None, :] * aurocs[:, None]
    d01 = v01_sums - negatives_per_cluster[None, :] * aurocs[:, None]
    s10 = i10 / ((i10 - 1) * m) * (d10 @ d10.T)
    s01 = i01 / ((i01 - 1) * n) * (d01 @ d01.T)
    s11 = n_clusters / (n_clusters - 1) * (d10 @ d01.T)
    covariance = s10 / m + s01 / n + (s11 + s11.T) / (m * n)
    return DelongComponents(aurocs=aurocs, covariance=covariance)


def _structural_components(positives: np.ndarray, negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """V10 (n_models, m), V01 (n_models, n) and the AUROCs, by Sun & Xu's midranks.

    A positive's midrank among all cases minus its midrank among positives is the number of
    negatives below it (ties counted 1/2): V10 is the share of negatives each positive beats, V01
    the share of positives each negative loses to.
    """
    m = positives.shape[1]
    n = negatives.shape[1]
    rank_positives = rankdata(positives, axis=1)
    rank_negatives = rankdata(negatives, axis=1)
    rank_all = rankdata(np.concatenate([positives, negatives], axis=1), axis=1)
    aurocs = (rank_all[:, :m].sum(axis=1) / m - (m + 1) / 2) / n
    v10 = (rank_all[:, :m] - rank_positives) / n
    v01 = 1.0 - (rank_all[:, m:] - rank_negatives) / m
    return v10, v01, aurocs


def variance(y_true: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(AUROC, DeLong variance of that AUROC) for one score vector."""
    result = components(y_true, scores)
    return float(result.aurocs[0]), float(result.covariance[0, 0])


def paired_test(
    y_true: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, clusters: np.ndarray | None = None
) -> DelongTest:
    """Two-sided DeLong test of AUROC(b) - AUROC(a) = 0 on the same cases; with ``clusters``
    (each image's patient), Obuchowski's patient-clustered variance of the difference.

    When the difference has no variance (identical rankings, or both separate the classes
    perfectly), the p-value is 1 for a zero difference and 0 otherwise.
    """
    stacked = np.vstack([scores_a, scores_b])
    result = components(y_true, stacked) if clusters is None else clustered_components(y_true, stacked, clusters)
    auroc_a, auroc_b = (float(value) for value in result.aurocs)
    delta = auroc_b - auroc_a
    cov = result.covariance
    difference_variance = max(float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]), 0.0)
    # Rounding leaves ~1e-17 where the exact variance is zero; a real variance is far larger.
    if difference_variance <= 1e-15:
        return DelongTest(auroc_a, auroc_b, delta, difference_variance, None, 1.0 if abs(delta) < 1e-12 else 0.0)
    z = delta / np.sqrt(difference_variance)
    p_value = float(2 * ndtr(-abs(z)))
    return DelongTest(auroc_a, auroc_b, delta, difference_variance, float(z), p_value)
