"""Vectorised patient-cluster bootstrap for AUROC and F1.

Images of one patient are correlated (same face, same stay), so a patient, not an image, is the
unit of resampling: each resample draws the test patients with replacement and every image of a
drawn patient enters with that patient's draw count as its weight. All resamples are evaluated
at once: a resample is a row of patient counts, so any per-image sum over a resample is a matrix
product ``counts @ per_patient_sums``. AUROC for every resample comes from one sort of the scores
(rank statistics with tied scores counted one half), never from a Python loop over resamples.

A resample in which a statistic is undefined (no positive or no negative case drawn) yields NaN
here; :func:`percentile_interval` drops those resamples and counts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

N_RESAMPLES = 2000
CONFIDENCE = 0.95
METHOD = "patient-cluster percentile"
# Below this share of usable resamples a percentile interval says more about the few resamples
# that happened to contain the rare class than about the model, so no interval is reported.
MIN_VALID_SHARE = 0.5


@dataclass(frozen=True)
class ClusterResamples:
    """Which patients every resample drew, and how often."""

    # (n_patients, n_resamples): column b holds how many times resample b drew each patient.
    # Patients along rows keeps the sparse-times-dense products below contiguous and fast.
    counts: np.ndarray
    # Index of each image's patient, in the order of the images passed to draw().
    patient_of_image: np.ndarray
    seed: int

    @property
    def n_resamples(self) -> int:
        return self.counts.shape[1]

    @property
    def n_patients(self) -> int:
        return self.counts.shape[0]

    @classmethod
    def draw(cls, patients: Sequence[object], *, n_resamples: int = N_RESAMPLES, seed: int = 0) -> ClusterResamples:
        """Draw ``n_resamples`` patient-cluster resamples of these images' patients, reproducibly."""
        if n_resamples < 1:
            raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
        if len(patients) == 0:
            raise ValueError("cannot resample an empty set of images")
        _, patient_of_image = np.unique(np.asarray([str(p) for p in patients]), return_inverse=True)
        n_patients = int(patient_of_image.max()) + 1
        drawn = np.random.default_rng(seed).integers(0, n_patients, size=(n_resamples, n_patients))
        # One bincount for all resamples: patient p of resample b lands in bin p * n_resamples + b.
        bins = (drawn * n_resamples + np.arange(n_resamples)[:, None]).ravel()
        counts = np.bincount(bins, minlength=n_patients * n_resamples).reshape(n_patients, n_resamples)
        return cls(counts=counts.astype(np.float64), patient_of_image=patient_of_image, seed=seed)

    def group_totals(self, group_of_image: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
        """Resampled sum of ``values`` within each group of images, shape (n_groups, n_resamples)."""
        by_group_and_patient = sparse.csr_array(
            (np.asarray(values, dtype=np.float64), (group_of_image, self.patient_of_image)),
            shape=(n_groups, self.n_patients),
        )
        return by_group_and_patient @ self.counts

    def totals(self, values: np.ndarray) -> np.ndarray:
        """Resampled sum of per-image ``values``, shape (n_resamples,)."""
        return self.group_totals(np.zeros(len(values), dtype=np.intp), values, 1)[0]


def auroc(resamples: ClusterResamples, y_true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of ``scores`` for the binary ``y_true`` in every resample; NaN where a class is absent.

    AUROC = sum over (positive, negative) pairs of w_pos * w_neg * [s_pos > s_neg] (ties count
    1/2), divided by (sum of w_pos) * (sum of w_neg), where w is an image's draw count. Only the
    distinct positive scores matter: each meets the negative weight strictly below it plus half of
    the negative weight tied with it. So the negatives are binned between consecutive positive
    scores, and one running sum over those bins, for all resamples at once, gives the numerator.
    """
    y_true = np.asarray(y_true, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    if y_true.sum() > (~y_true).sum():
        # AUROC(y, s) = AUROC(not y, -s); counting from the smaller class leaves fewer bins.
        y_true, scores = ~y_true, -scores
    distinct = np.unique(scores[y_true])
    n_distinct = distinct.size
    negative_scores = scores[~y_true]
    # Negative j lies strictly below the k-th distinct positive score for every k >= at_or_below[j].
    at_or_below = np.searchsorted(distinct, negative_scores, side="right")
    tied = (at_or_below > 0) & (distinct[np.maximum(at_or_below - 1, 0)] == negative_scores)

    # Rows 0..K-1: positive weight at each distinct positive score; rows K..2K: negative weight
    # per bin, bin b holding the negatives below exactly the distinct scores k >= b.
    row = np.empty(scores.size, dtype=np.intp)
    row[y_true] = np.searchsorted(distinct, scores[y_true])
    row[~y_true] = n_distinct + at_or_below
    weight = resamples.group_totals(row, np.ones(scores.size), 2 * n_distinct + 1)
    tie_row = np.zeros(scores.size, dtype=np.intp)
    tie_row[~y_true] = np.maximum(at_or_below - 1, 0)
    tie_value = np.zeros(scores.size)
    tie_value[~y_true] = tied
    tied_weight = resamples.group_totals(tie_row, tie_value, max(n_distinct, 1))[:n_distinct]

    positive = weight[:n_distinct]
    denominator = positive.sum(axis=0) * weight[n_distinct:].sum(axis=0)
    negative_below = weight[n_distinct : 2 * n_distinct]
    # Running sum row by row: NumPy's cumsum along the first axis is several times slower here.
    for k in range(1, n_distinct):
        negative_below[k] += negative_below[k - 1]
    negative_below += 0.5 * tied_weight
    numerator = np.einsum("kb,kb->b", positive, negative_below)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def confusion_totals(
    resamples: ClusterResamples, y_true: np.ndarray, y_pred: np.ndarray, n_levels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resampled true positives, false positives and false negatives, each (n_resamples, n_levels)."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    # Every image is exactly one of TP/FN (for its true level) and TP/FP (for its predicted level).
    hit = (y_true == y_pred).astype(np.float64)
    true_positive = resamples.group_totals(y_true, hit, n_levels).T
    false_negative = resamples.group_totals(y_true, 1 - hit, n_levels).T
    false_positive = resamples.group_totals(y_pred, 1 - hit, n_levels).T
    return true_positive, false_positive, false_negative


def f1_per_level(resamples: ClusterResamples, y_true: np.ndarray, y_pred: np.ndarray, n_levels: int) -> np.ndarray:
    """F1 per level in every resample, (n_resamples, n_levels); NaN where the level has no true case."""
    true_positive, false_positive, false_negative = confusion_totals(resamples, y_true, y_pred, n_levels)
    support = true_positive + false_negative
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * true_positive / (2 * true_positive + false_positive + false_negative)
    return np.where(support > 0, f1, np.nan)


def macro_f1(resamples: ClusterResamples, y_true: np.ndarray, y_pred: np.ndarray, n_levels: int) -> np.ndarray:
    """Macro F1 in every resample, over the levels that are true or predicted in it (scikit-learn's default)."""
    true_positive, false_positive, false_negative = confusion_totals(resamples, y_true, y_pred, n_levels)
    seen = (true_positive + false_positive + false_negative) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(seen, 2 * true_positive / (2 * true_positive + false_positive + false_negative), 0.0)
        return f1.sum(axis=1) / seen.sum(axis=1)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def as_list(self) -> list[float]:
        return [self.low, self.high]


def percentile_interval(values: np.ndarray, *, confidence: float = CONFIDENCE) -> tuple[Interval | None, int]:
    """Percentile interval of the finite resample values, and how many resamples were dropped.

    Returns no interval when fewer than ``MIN_VALID_SHARE`` of the resamples are usable.
    """
    values = np.asarray(values, dtype=np.float64)
    valid = values[np.isfinite(values)]
    dropped = int(values.size - valid.size)
    if valid.size == 0 or valid.size < MIN_VALID_SHARE * values.size:
        return None, dropped
    tail = round(50 * (1 - confidence), 10)  # 2.5 exactly, not 2.5000000000000027
    low, high = np.percentile(valid, [tail, 100 - tail])
    return Interval(float(low), float(high)), dropped
