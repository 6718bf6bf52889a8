"""Label rules: how an image's scores become its training target.

The one definition of the rules, used by training runs (their form, API and command), the
training data snapshot and the test snapshots.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from annotation.models import Image, LabelKind
from annotation.selectors import current_labels_by_image
from modeling.ml.levels import whole_nrs

SELF_REPORT_FIRST = "self_report_first"
SELF_REPORT_ONLY = "self_report_only"
OBSERVER_MEDIAN = "observer_median"
LABEL_RULES = (SELF_REPORT_FIRST, SELF_REPORT_ONLY, OBSERVER_MEDIAN)
LABEL_RULE_DESCRIPTIONS = {
    SELF_REPORT_FIRST: _("the latest self-report, else the median of the raters' latest observer scores"),
    SELF_REPORT_ONLY: _("images with a self-report only"),
    OBSERVER_MEDIAN: _("the median of the raters' latest observer scores"),
}


class Score(Protocol):
    rater_id: int
    nrs: int
    kind: str
    created_at: datetime


def _latest_per_rater(image_labels: Iterable[Score]) -> list[Score]:
    latest: dict[int, Score] = {}
    for label in image_labels:
        key = (label.created_at, getattr(label, "id", 0) or 0)
        held = latest.get(label.rater_id)
        if held is None or key > (held.created_at, getattr(held, "id", 0) or 0):
            latest[label.rater_id] = label
    return [label for label in latest.values() if not getattr(label, "is_retraction", False)]


def _median_nrs(values: Sequence[int]) -> int:
    # With an even number of observers the median can fall between two scores; it is rounded
    # half up (the ML core's one rule), so a split between two raters never lowers the level.
    return whole_nrs(statistics.median(values))


def target_nrs(image_labels: Iterable[Score], rule: str = SELF_REPORT_FIRST) -> int | None:
    """The training target for one image under `rule`, or None when the rule finds no score.

    `image_labels` are the image's labels (its current ones, or its whole history: only each
    rater's latest row counts, and a retracted score counts as none).
    - self_report_first: the latest self-report, else the median of the observers' scores;
    - self_report_only: the latest self-report;
    - observer_median: the median of the observers' scores.
    """
    if rule not in LABEL_RULES:
        raise ValueError(f"unknown label rule {rule!r}; valid rules: {', '.join(LABEL_RULES)}")
    standing = _latest_per_rater(image_labels)
    self_reports = [label for label in standing if label.kind == LabelKind.SELF_REPORT]
    observer_scores = [label.nrs for label in standing if label.kind == LabelKind.OBSERVER]
    if rule in (SELF_REPORT_FIRST, SELF_REPORT_ONLY) and self_reports:
        latest = max(self_reports, key=lambda label: (label.created_at, getattr(label, "id", 0) or 0))
        return latest.nrs
    if rule in (SELF_REPORT_FIRST, OBSERVER_MEDIAN) and observer_scores:
        return _median_nrs(observer_scores)
    return None


def targets_for_images(images: QuerySet[Image] | Iterable[int], rule: str = SELF_REPORT_FIRST) -> dict[int, int]:
    """{image id: target NRS} for every given image that has a target under `rule`, in one query.

    Images of patients who withdrew consent never get a target, so no training run can use them.
    """
    if rule not in LABEL_RULES:
        raise ValueError(f"unknown label rule {rule!r}; valid rules: {', '.join(LABEL_RULES)}")
    targets = {}
    for image_id, labels in current_labels_by_image(images).items():
        target = target_nrs(labels, rule)
        if target is not None:
            targets[image_id] = target
    return targets
