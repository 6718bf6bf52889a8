"""Inter-rater agreement on the standing NRS scores.

- ICC(2,1): two-way random effects, absolute agreement, single rater (Shrout & Fleiss 1979,
  McGraw & Wong 1996 "ICC(A,1)"), from the ANOVA mean squares, with the F-based 95% CI.
- Quadratic-weighted kappa per rater pair: scikit-learn's cohen_kappa_score over the full
  0-10 scale (labels=0..10, so the weights follow NRS distance, not the ranks of the values seen).
- Mean absolute difference, and the same statistics for observer scores vs the self-report.
- Images whose observer scores differ by 3 points or more, for adjudication.

ICC needs a complete images x raters table. Most images are scored by different raters, so the
overall ICC uses each image's first two observers as the two "judges" (first and second rating);
per rater pair, the images both scored give the classic table.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from annotation.models import Consent, LabelKind, PainLabel

NRS_VALUES = list(range(11))
ADJUDICATION_SPREAD = 3
ADJUDICATION_LIMIT = 500


def _number(value: float) -> float | None:
    """JSON-safe: NaN and infinities become None."""
    value = float(value)
    return value if math.isfinite(value) else None


def icc_2_1(ratings: np.ndarray | Sequence[Sequence[float]], confidence: float = 0.95) -> dict | None:
    """ICC(2,1) of an n targets x k raters table with its F-based CI; None below 2 x 2."""
    table = np.asarray(ratings, dtype=float)
    if table.ndim != 2 or table.shape[0] < 2 or table.shape[1] < 2:
        return None
    n, k = table.shape
    grand = table.mean()
    ss_targets = k * ((table.mean(axis=1) - grand) ** 2).sum()
    ss_raters = n * ((table.mean(axis=0) - grand) ** 2).sum()
    ss_error = ((table - grand) ** 2).sum() - ss_targets - ss_raters
    bms = ss_targets / (n - 1)
    jms = ss_raters / (k - 1)
    ems = ss_error / ((n - 1) * (k - 1))
    denominator = bms + (k - 1) * ems + k * (jms - ems) / n
    icc = (bms - ems) / denominator if denominator > 0 else math.nan
    low, high = _icc_2_1_ci(icc, bms=bms, jms=jms, ems=ems, n=n, k=k, confidence=confidence)
    return {
        "icc": _number(icc),
        "ci": [low, high] if low is not None and high is not None else None,
        "n": n,
        "k": k,
        "bms": _number(bms),
        "jms": _number(jms),
        "ems": _number(ems),
    }


def _icc_2_1_ci(icc: float, *, bms: float, jms: float, ems: float, n: int, k: int, confidence: float):
    """Shrout & Fleiss (1979) eq. for ICC(2,1), with Satterthwaite's degrees of freedom."""
    if not math.isfinite(icc) or icc >= 1 or ems <= 0:
        return None, None
    alpha = 1 - confidence
    a = k * icc / (n * (1 - icc))
    b = 1 + k * icc * (n - 1) / (n * (1 - icc))
    v_denominator = (a * jms) ** 2 / (k - 1) + (b * ems) ** 2 / ((n - 1) * (k - 1))
    if v_denominator <= 0:
        return None, None
    v = (a * jms + b * ems) ** 2 / v_denominator
    f_upper = stats.f.ppf(1 - alpha / 2, n - 1, v)
    f_lower = stats.f.ppf(1 - alpha / 2, v, n - 1)
    spread = k * jms + (k * n - k - n) * ems
    low = n * (bms - f_upper * ems) / (f_upper * spread + n * bms)
    high = n * (f_lower * bms - ems) / (spread + n * f_lower * bms)
    return _number(low), _number(high)


def quadratic_kappa(first: Sequence[int], second: Sequence[int]) -> float | None:
    if len(first) < 2:
        return None
    # Undefined (0/0) when both raters give one and the same score to every image.
    if len(set(first) | set(second)) < 2:
        return None
    return _number(cohen_kappa_score(first, second, weights="quadratic", labels=NRS_VALUES))


def pair_statistics(first: Sequence[int], second: Sequence[int]) -> dict:
    """Agreement between two aligned score lists (same images, same order)."""
    a = np.asarray(first, dtype=float)
    b = np.asarray(second, dtype=float)
    icc = icc_2_1(np.column_stack([a, b])) if len(a) >= 2 else None
    return {
        "n": len(a),
        "icc": icc["icc"] if icc else None,
        "icc_ci": icc["ci"] if icc else None,
        "kappa_quadratic": quadratic_kappa(list(first), list(second)),
        "mean_absolute_difference": _number(np.abs(a - b).mean()) if len(a) else None,
        "mean_difference": _number((a - b).mean()) if len(a) else None,
    }


@dataclass(frozen=True)
class StandingScore:
    image_id: int
    patient_code: str
    rater: str
    kind: str
    nrs: int
    created_at: object
    label_id: int


def agreement_statistics(scores: Sequence[StandingScore], *, min_pair_images: int = 2) -> dict:
    """All agreement figures from standing scores (one per image and rater). Pure."""
    by_image: dict[int, list[StandingScore]] = defaultdict(list)
    for score in sorted(scores, key=lambda score: (score.image_id, score.created_at, score.label_id)):
        by_image[score.image_id].append(score)

    first_second: tuple[list[int], list[int]] = ([], [])
    pair_scores: dict[tuple[str, str], tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    observer_vs_self: tuple[list[int], list[int]] = ([], [])
    adjudication = []
    for image_id, image_scores in by_image.items():
        observers = [score for score in image_scores if score.kind == LabelKind.OBSERVER]
        self_reports = [score for score in image_scores if score.kind == LabelKind.SELF_REPORT]
        if len(observers) >= 2:
            first_second[0].append(observers[0].nrs)
            first_second[1].append(observers[1].nrs)
            for one, other in itertools.combinations(sorted(observers, key=lambda score: score.rater), 2):
                pair = pair_scores[(one.rater, other.rater)]
                pair[0].append(one.nrs)
                pair[1].append(other.nrs)
            spread = max(score.nrs for score in observers) - min(score.nrs for score in observers)
            if spread >= ADJUDICATION_SPREAD:
                adjudication.append(
                    {
                        "image": image_id,
                        "patient": image_scores[0].patient_code,
                        "spread": spread,
                        "scores": [
                            {"rater": score.rater, "kind": score.kind, "nrs": score.nrs} for score in image_scores
                        ],
                    }
                )
        if self_reports and observers:
            reported = self_reports[-1].nrs
            for observer in observers:
                observer_vs_self[0].append(observer.nrs)
                observer_vs_self[1].append(reported)

    adjudication.sort(key=lambda item: (-item["spread"], item["image"]))
    return {
        "images_with_two_observers": len(first_second[0]),
        "observers": pair_statistics(*first_second),
        "rater_pairs": [
            {"raters": list(raters), **pair_statistics(*values)}
            for raters, values in sorted(pair_scores.items())
            if len(values[0]) >= min_pair_images
        ],
        "observer_vs_self_report": pair_statistics(*observer_vs_self),
        "adjudication_threshold": ADJUDICATION_SPREAD,
        "adjudication_count": len(adjudication),
        "adjudication": adjudication[:ADJUDICATION_LIMIT],
    }


def standing_scores_for_agreement() -> list[StandingScore]:
    """Standing scores on images scored by two raters or more, consented patients only."""
    rows = (
        PainLabel.objects.current()
        .filter(image__patient__consent=Consent.GRANTED, image__label_count__gte=2)
        .values_list("image_id", "image__patient__code", "rater__username", "kind", "nrs", "created_at", "id")
    )
    return [StandingScore(*row) for row in rows]


def agreement_report() -> dict:
    return agreement_statistics(standing_scores_for_agreement())
