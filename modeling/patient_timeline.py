"""A patient's timeline: their standing scores and the model's assessments in time order, and the
chart of it as a plot spec for static/js/plots.js, which draws every plot of the site.

It joins both apps (labels from annotation, assessments from modeling), so it lives here, in the
higher one. Time on x (milliseconds since the epoch, labelled as dates), NRS 0-10 on y. Scores are markers;
a model assessment is a bar over the NRS range of its level. The three sources are drawn side by
side at one time (`offset`, in pixels), so a self-report, an observer score and an assessment of
the same image do not hide each other.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.utils.translation import gettext, gettext_lazy

from annotation.image_access import may_view_patient_data
from annotation.models import PainLabel, Patient
from modeling.ml.levels import PainLevels
from modeling.models import Assessment, ReadingKind, StreamAssessment
from modeling.vocabulary import level_word

# Okabe-Ito, as on the results pages; the sources also differ by marker shape.
SOURCES = {
    "self_report": {"label": gettext_lazy("Self-report (NRS)"), "colour": "#0072B2", "shape": "circle", "offset": -7},
    "observer": {"label": gettext_lazy("Observer (NRS)"), "colour": "#E69F00", "shape": "square", "offset": 0},
    "model": {
        "label": gettext_lazy("Model assessment (NRS range of its level)"),
        "colour": "#CC79A7",
        "offset": 7,
    },
}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def timeline_spec(points: list[dict[str, Any]], *, patient_code: str) -> dict[str, Any] | None:
    """None when there is nothing to draw. An assessment without a level range (no face found)
    is left out: no face, no pain level on a timeline."""
    shown = [point for point in points if point["source"] != "model" or point["low"] is not None]
    if not shown:
        return None
    series: dict[str, dict[str, Any]] = {
        source: {**style, "label": str(style["label"]), "markers": True, "line": False, "points": [], "ranges": []}
        for source, style in SOURCES.items()
    }
    for point in shown:
        when = point["time"].strftime("%Y-%m-%d %H:%M")
        if point["source"] == "model":
            note = gettext("%(when)s: model %(version)s says %(level)s") % {
                "when": when,
                "version": point["who"],
                "level": level_word(point["level"]),
            }
            series["model"]["ranges"].append([_ms(point["time"]), point["low"], point["high"], note])
        else:
            if point["source"] == "self_report":
                note = gettext("%(when)s: self-report NRS %(nrs)s") % {"when": when, "nrs": point["nrs"]}
            else:
                note = gettext("%(when)s: observer %(rater)s NRS %(nrs)s") % {
                    "when": when,
                    "rater": point["who"],
                    "nrs": point["nrs"],
                }
            series[point["source"]]["points"].append([_ms(point["time"]), point["nrs"], note])
    start, end = min(point["time"] for point in shown), max(point["time"] for point in shown)
    if start == end:
        start, end = start - timedelta(hours=1), end + timedelta(hours=1)
    else:
        margin = (end - start) * 0.04  # keeps the first and last marks off the axes
        start, end = start - margin, end + margin
    return {
        "kind": "lines",
        "title": gettext("NRS scores and model assessments of patient %(code)s over time") % {"code": patient_code},
        "x_label": gettext("Time (UTC; capture time, else upload time)"),
        "y_label": "NRS",
        "x_domain": [_ms(start), _ms(end)],
        "y_domain": [0, 10],
        "x_time": True,
        "series": [entry for entry in series.values() if entry["points"] or entry["ranges"]],
    }


def patient_timeline(patient: Patient, *, viewer: User) -> list[dict[str, object]]:
    """The patient's standing scores and model assessments in time order, one dict per point.

    Empty when `viewer` may not see this patient's data (annotation.image_access decides). A score is placed at the time its image was captured (upload time when unknown); a model
    assessment at the image's capture time, else when it was made; a ward camera's assessment at
    the time of its frame (it has no image: `image_id` None, `bed` set). Assessments carry the NRS
    range of their level, so scores and assessments share one 0-10 axis.
    """
    if not may_view_patient_data(viewer, patient):
        return []
    level_ranges = dict(zip(*_level_table(PainLevels.parse(settings.PAINSITE_PAIN_LEVELS))))
    points: list[dict[str, object]] = []
    labels = PainLabel.objects.current().filter(image__patient=patient).select_related("image", "rater")
    for label in labels:
        points.append(
            {
                "time": label.image.captured_at or label.image.uploaded_at,
                "source": label.kind,
                "nrs": label.nrs,
                "low": label.nrs,
                "high": label.nrs,
                "image_id": label.image_id,
                "who": label.rater.get_username(),
            }
        )
    # No face, no score: an assessment without a face (only rows written before that rule) is no point.
    assessments = Assessment.objects.filter(patient=patient, face_found=True).select_related("image", "model_version")
    for assessment in assessments:
        low, high = level_ranges.get(assessment.level, (None, None))
        points.append(
            {
                "time": assessment.image.captured_at or assessment.created_at,
                "source": "model",
                "level": assessment.level,
                "probability": (assessment.probabilities or {}).get(assessment.level),
                "low": low,
                "high": high,
                "image_id": assessment.image_id,
                "who": assessment.model_version.name,
            }
        )
    # Ward cameras (modeling/ward_rounds.py): only slots with a face carry a level; the frame is not kept.
    stream = StreamAssessment.objects.filter(patient=patient, kind=ReadingKind.ASSESSED).select_related("model_version")
    for reading in stream:
        low, high = level_ranges.get(reading.level, (None, None))
        points.append(
            {
                "time": reading.frame_at or reading.created_at,
                "source": "model",
                "level": reading.level,
                "probability": (reading.probabilities or {}).get(reading.level),
                "low": low,
                "high": high,
                "image_id": None,
                "bed": reading.bed,
                "who": reading.model_version.name,
            }
        )
    return sorted(points, key=lambda point: (point["time"], point["image_id"] or 0))


def _level_table(levels) -> tuple[list[str], list[tuple[int, int]]]:
    return levels.names, list(levels.ranges)
