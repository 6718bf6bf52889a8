"""When the test set can support an interval or a p-value, and why not when it cannot.

Intervals and p-values on patient data are only as good as the number of independent patients
behind them. The patient-cluster bootstrap and the clustered DeLong variance are both
large-sample methods whose unit is the patient; with few patients (clusters) they are too
narrow and reject too often (Cameron, Gelbach & Miller 2008, "Bootstrap-based improvements for
inference with clustered errors", Review of Economics and Statistics 90:414-427). The platform's
rule, documented in docs/metrics.md:

- a cohort with fewer than ``MIN_COHORT_PATIENTS`` test patients gets no interval and no p-value;
- a one-vs-rest statistic (a level's AUROC or F1, an NRS threshold's AUROC, a paired difference)
  whose positive or negative cases come from fewer than ``MIN_PATIENTS_PER_CLASS`` patients gets
  none either: with four patients holding every positive case, a resample can only redraw those
  four, and the percentile interval describes those few faces rather than the model;
- an interval of zero width (every resample gave the same value) is a sign that the resamples
  could not vary the statistic, not a certainty, and is not reported.

The point value is always reported; only its interval and p-value are withheld, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .bootstrap import Interval

MIN_COHORT_PATIENTS = 10
MIN_PATIENTS_PER_CLASS = 5
# Percentile intervals come from sorted resample values; a width below this is rounding.
ZERO_WIDTH = 1e-12


def cohort_problem(n_patients: int) -> str | None:
    """Why a cohort of ``n_patients`` test patients gets no intervals at all, or None."""
    if n_patients < MIN_COHORT_PATIENTS:
        return f"too few patients for intervals: {n_patients} test patients, at least {MIN_COHORT_PATIENTS} needed"
    return None


def class_problem(y_binary: np.ndarray, patient_of_image: np.ndarray) -> str | None:
    """Why a one-vs-rest statistic gets no interval: too few patients with a positive or a
    negative case (a patient with both counts for both), or None."""
    y_binary = np.asarray(y_binary, dtype=bool)
    positive = np.unique(patient_of_image[y_binary]).size
    negative = np.unique(patient_of_image[~y_binary]).size
    short = [
        f"{count} with a {kind} case"
        for count, kind in ((positive, "positive"), (negative, "negative"))
        if count < MIN_PATIENTS_PER_CLASS
    ]
    if short:
        return (
            f"too few patients for an interval: {' and '.join(short)}, at least {MIN_PATIENTS_PER_CLASS} of each needed"
        )
    return None


def combined_problem(problems: Iterable[tuple[str, str | None]]) -> str | None:
    """Why an average over levels gets no interval: the levels in it that get none."""
    short = [name for name, problem in problems if problem]
    if short:
        return f"too few patients for an interval in level(s) {', '.join(short)} of the average"
    return None


def interval_problem(interval: Interval | None, dropped: int, n_resamples: int) -> str | None:
    """Why a bootstrap interval is withheld: too many resamples dropped, or zero width."""
    if interval is None:
        return (
            f"{dropped} of {n_resamples} bootstrap resamples drew no case of a class, "
            "more than half, so the rest would describe only the resamples that did"
        )
    if interval.high - interval.low <= ZERO_WIDTH:
        return "every bootstrap resample gave the same value; a zero-width interval is not a confidence interval"
    return None


def reported(
    interval: Interval | None, dropped: int, n_resamples: int, problem: str | None = None
) -> tuple[list[float] | None, str | None]:
    """(interval as [low, high], None) when it can be shown, else (None, the reason)."""
    problem = problem or interval_problem(interval, dropped, n_resamples)
    if problem or interval is None:
        return None, problem
    return interval.as_list(), None
