"""DeLong's nonparametric variance of AUROC, and his test for two correlated AUROCs.

DeLong, DeLong & Clarke-Pearson (1988), Biometrics 44:837-845, computed with the midrank algorithm
of Sun & Xu (2014), IEEE Signal Processing Letters 21:1389-1393: the structural components come
from three rankings (positives alone, negatives alone, all together) in O(n log n) instead of
comparing every positive with every negative.

Images are treated as independent here; the patient-cluster bootstrap in ``bootstrap.py`` is what
accounts for several images per patient. The p-value is reported next to that interval, not
instead of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr
from scipy.stats import rankdata


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
    # Sun & Xu: a positive's midrank among all cases minus its midrank among positives is the
    # number of negatives below it (ties counted 1/2); likewise for each negative.
    rank_positives = rankdata(positives, axis=1)
    rank_negatives = rankdata(negatives, axis=1)
    rank_all = rankdata(np.concatenate([positives, negatives], axis=1), axis=1)
    aurocs = (rank_all[:, :m].sum(axis=1) / m - (m + 1) / 2) / n
    # V10: share of negatives each positive beats; V01: share of positives each negative loses to.
    v10 = (rank_all[:, :m] - rank_positives) / n
    v01 = 1.0 - (rank_all[:, m:] - rank_negatives) / m
    covariance = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return DelongComponents(aurocs=aurocs, covariance=covariance)


def variance(y_true: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(AUROC, DeLong variance of that AUROC) for one score vector."""
    result = components(y_true, scores)
    return float(result.aurocs[0]), float(result.covariance[0, 0])


def paired_test(y_true: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> DelongTest:
    """Two-sided DeLong test of AUROC(b) - AUROC(a) = 0 on the same cases.

    When the difference has no variance (identical rankings, or both separate the classes
    perfectly), the p-value is 1 for a zero difference and 0 otherwise.
    """
    result = components(y_true, np.vstack([scores_a, scores_b]))
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
