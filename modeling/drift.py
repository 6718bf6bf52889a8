"""Drift watch: is the production model seeing a different mix of pain levels than on its test set?

The production version's predicted-level distribution on recent assessments and uploads (a window
of PAINSITE_DRIFT_WINDOW_DAYS; uploads count through the queue's predictions of never-labeled faces) is compared with its predicted-level distribution on the test snapshot
it was last evaluated on, by the population stability index:

    PSI = Σ_levels (recent − reference) · ln(recent / reference)

with each share floored at PSI_FLOOR so an empty level does not make it infinite. Each level's term
is shown too. The usual reading, used for the verdict: below 0.10 stable, 0.10 to 0.25 a moderate
shift, PAINSITE_DRIFT_PSI_WARN (0.25) or more a major shift, which is sent to admins. The PSI is
descriptive: it has no interval, and with fewer than PAINSITE_DRIFT_MIN_ASSESSMENTS recent
assessments it is not estimable (said with the reason). A shift can come from the ward (sicker
patients) as well as from the camera or the model: the verdict says "look", not "broken".
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from annotation.models import ImagePrediction
from modeling.models import Assessment, Evaluation, EvaluationStatus, ModelVersion, Stage
from modeling.results import pain_level_names
from modeling.stored_text import translated_reason
from modeling.vocabulary import level_word
from painsite.core.notices import notify_admins

PSI_FLOOR = 1e-4
STABLE_BELOW = 0.10


def population_stability_index(reference: list[float], recent: list[float]) -> tuple[float, list[float]]:
    """(PSI, each level's term) of two distributions over the same levels (shares summing to 1)."""
    terms = []
    for expected, actual in zip(reference, recent, strict=True):
        expected, actual = max(expected, PSI_FLOOR), max(actual, PSI_FLOOR)
        terms.append((actual - expected) * math.log(actual / expected))
    return sum(terms), terms


def shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [count / total for count in counts] if total else [0.0 for _ in counts]


@dataclass
class DriftReport:
    version: ModelVersion | None
    window_days: float
    level_names: list[str] = field(default_factory=list)
    reference_counts: list[int] = field(default_factory=list)
    recent_counts: list[int] = field(default_factory=list)
    psi: float | None = None
    terms: list[float] = field(default_factory=list)
    verdict: str = "not_estimable"
    reason: str = ""

    @property
    def words(self) -> str:
        """The verdict in the active language (the reason is stored in English, see stored_text)."""
        if self.psi is None:
            return gettext("Not estimable: %(reason)s") % {"reason": translated_reason(self.reason)}
        if self.verdict == "stable":
            return gettext("Stable: recent assessments show the same mix of pain levels as the test set.")
        if self.verdict == "moderate":
            return gettext("A moderate shift in the mix of pain levels: worth watching.")
        return gettext(
            "A major shift in the mix of pain levels since the test set: check the cameras, the ward's "
            "patients and the model's recent assessments; consider labeling recent images and retraining."
        )

    @property
    def rows(self) -> list[dict[str, Any]]:
        reference, recent = shares(self.reference_counts), shares(self.recent_counts)
        return [
            {
                "level": name,
                "reference": reference[i],
                "recent": recent[i],
                "term": self.terms[i] if self.terms else None,
            }
            for i, name in enumerate(self.level_names)
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version.name if self.version else None,
            "window_days": self.window_days,
            "levels": self.rows,
            "reference_n": sum(self.reference_counts),
            "recent_n": sum(self.recent_counts),
            "psi": self.psi,
            "verdict": self.verdict,
            "reason": self.reason,
        }


def drift_report(*, now: datetime.datetime | None = None) -> DriftReport:
    now = now or timezone.now()
    window = settings.PAINSITE_DRIFT_WINDOW_DAYS
    version = ModelVersion.objects.filter(stage=Stage.PRODUCTION).only("id", "name", "pain_levels").first()
    report = DriftReport(version=version, window_days=window)
    if version is None:
        report.reason = "there is no production model"
        return report
    evaluation = (
        Evaluation.objects.filter(model_version=version, status=EvaluationStatus.SUCCEEDED)
        .order_by("-snapshot__created_at", "-id")
        .only("predictions", "metrics")
        .first()
    )
    if evaluation is None or not evaluation.predictions:
        report.reason = "the production model has no finished evaluation on a test snapshot"
        return report
    names = (evaluation.metrics.get("combined") or {}).get("level_names") or pain_level_names(version)
    report.level_names = list(names)
    reference = [0] * len(names)
    for prediction in evaluation.predictions:
        probabilities = prediction["probabilities"]
        reference[max(range(len(probabilities)), key=probabilities.__getitem__)] += 1
    recent = [0] * len(names)
    index = {name: i for i, name in enumerate(names)}
    since = now - datetime.timedelta(days=window)
    for level in Assessment.objects.filter(
        model_version=version, face_found=True, created_at__gte=since, created_at__lte=now
    ).values_list("level", flat=True):
        if level in index:
            recent[index[level]] += 1
    # Recent uploads the production model predicted for the labeling queue (never-labeled faces;
    # a prediction goes once the image is scored, and its label then feeds the next version).
    for level in ImagePrediction.objects.filter(
        model_version_id=version.pk, image__uploaded_at__gte=since, image__uploaded_at__lte=now
    ).values_list("predicted_level_name", flat=True):
        if level in index:
            recent[index[level]] += 1
    report.reference_counts, report.recent_counts = reference, recent
    minimum = settings.PAINSITE_DRIFT_MIN_ASSESSMENTS
    if sum(recent) < minimum:
        report.reason = (
            f"only {sum(recent)} assessments with a face in the last {window:g} days (at least {minimum} needed)"
        )
        return report
    report.psi, report.terms = population_stability_index(shares(reference), shares(recent))
    if report.psi < STABLE_BELOW:
        report.verdict = "stable"
    elif report.psi < settings.PAINSITE_DRIFT_PSI_WARN:
        report.verdict = "moderate"
    else:
        report.verdict = "major"
    return report


def warn_on_drift(*, now: datetime.datetime | None = None) -> DriftReport:
    """Compute the report; a major shift is sent to admins, once per production version a day."""
    now = now or timezone.now()
    report = drift_report(now=now)
    if report.verdict == "major" and report.version is not None:
        # Written in the site's language (PAINSITE_LANGUAGE), like what a background worker writes.
        with translation.override(settings.LANGUAGE_CODE):
            subject, body = _notice_text(report)
        notify_admins(
            kind="drift",
            subject=subject,
            body=body,
            link=reverse("dashboard"),
            key=f"drift:{report.version.pk}:{timezone.localtime(now).date().isoformat()}",
        )
    return report


def _notice_text(report: DriftReport) -> tuple[str, str]:
    lines = [
        report.words,
        gettext("PSI %(psi)s over the last %(days)s days.")
        % {"psi": f"{report.psi:.3f}", "days": f"{report.window_days:g}"},
    ]
    lines += [
        "  "
        + gettext("%(level)s: test set %(reference)s, recent %(recent)s")
        % {"level": level_word(row["level"]), "reference": f"{row['reference']:.1%}", "recent": f"{row['recent']:.1%}"}
        for row in report.rows
    ]
    subject = gettext("Drift: %(version)s sees a different mix of pain levels (PSI %(psi)s)") % {
        "version": report.version.name,
        "psi": f"{report.psi:.2f}",
    }
    return subject, "\n".join(lines)
