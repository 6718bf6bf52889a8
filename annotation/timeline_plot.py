"""The patient chart as a plot spec for static/js/plots.js, which draws every plot of the site.

Time on x (milliseconds since the epoch, labelled as dates), NRS 0-10 on y. Scores are markers;
a model assessment is a bar over the NRS range of its level. The three sources are drawn side by
side at one time (`offset`, in pixels), so a self-report, an observer score and an assessment of
the same image do not hide each other.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

# Okabe-Ito, as on the results pages; the sources also differ by marker shape.
SOURCES = {
    "self_report": {"label": "Self-report (NRS)", "colour": "#0072B2", "shape": "circle", "offset": -7},
    "observer": {"label": "Observer (NRS)", "colour": "#E69F00", "shape": "square", "offset": 0},
    "model": {"label": "Model assessment (NRS range of its level)", "colour": "#CC79A7", "offset": 7},
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
        source: {**style, "markers": True, "line": False, "points": [], "ranges": []} for source, style in SOURCES.items()
    }
    for point in shown:
        when = point["time"].strftime("%Y-%m-%d %H:%M")
        if point["source"] == "model":
            series["model"]["ranges"].append(
                [_ms(point["time"]), point["low"], point["high"], f"{when}: model {point['who']} says {point['level']}"]
            )
        else:
            kind = "self-report" if point["source"] == "self_report" else f"observer {point['who']}"
            series[point["source"]]["points"].append([_ms(point["time"]), point["nrs"], f"{when}: {kind} NRS {point['nrs']}"])
    start, end = min(point["time"] for point in shown), max(point["time"] for point in shown)
    if start == end:
        start, end = start - timedelta(hours=1), end + timedelta(hours=1)
    else:
        margin = (end - start) * 0.04  # keeps the first and last marks off the axes
        start, end = start - margin, end + margin
    return {
        "kind": "lines",
        "title": f"NRS scores and model assessments of patient {patient_code} over time",
        "x_label": "Time (UTC; capture time, else upload time)",
        "y_label": "NRS",
        "x_domain": [_ms(start), _ms(end)],
        "y_domain": [0, 10],
        "x_time": True,
        "series": [entry for entry in series.values() if entry["points"] or entry["ranges"]],
    }
