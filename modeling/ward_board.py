"""What the ward board shows: every bed's state, its trend and its open alerts, as plain JSON.

The board polls this every few seconds from many screens, so it is built in a fixed number of
queries whatever the number of beds, and `board_etag` (three small queries) answers most polls
with 304 before anything else is read. The trend is P(severe) per `TREND_BUCKET_SECONDS`
(the highest in each bucket: a spike must not be averaged away) over PAINSITE_WARD_TREND_HOURS.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, ExpressionWrapper, F, IntegerField, Max, Q
from django.utils import timezone

from modeling.inference import production_version, production_version_id
from modeling.ward_models import CameraSource, ReadingKind, SourceStatus, StreamAssessment, WardAlert

TREND_BUCKET_SECONDS = 300
# A camera whose newest slot is this many intervals old is shown as not monitored (no worker).
STALE_INTERVALS = 3
# The ETag changes at least this often, so "not monitored" appears when no worker writes anything.
ETAG_SECONDS = 15


def board_etag() -> str:
    sources = CameraSource.objects.aggregate(changed=Max("updated_at"), count=Count("id"))
    alerts = WardAlert.objects.aggregate(
        newest=Max("id"),
        acknowledged=Max("acknowledged_at"),
        escalated=Max("escalated_at"),
        open=Count("id", filter=Q(acknowledged_at__isnull=True)),
    )
    # A promotion or demotion changes what the board says ("no model in production") at once.
    text = f"{sources}|{alerts}|{production_version_id()}|{int(time.time() // ETAG_SECONDS)}"
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def _ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


def _reading(reading: StreamAssessment | None) -> dict[str, Any] | None:
    if reading is None:
        return None
    assessed = reading.kind == ReadingKind.ASSESSED
    return {
        "kind": reading.kind,
        "slot": reading.slot,
        "time": _ms(reading.frame_at or reading.assessed_at or reading.created_at),
        "level": reading.level if assessed else None,
        "probability": (reading.probabilities or {}).get(reading.level) if assessed else None,
        "severe_probability": reading.severe_probability if assessed else None,
    }


def _trends(sources: list[CameraSource], now: datetime) -> dict[int, list[list[float]]]:
    since = now - timedelta(hours=settings.PAINSITE_WARD_TREND_HOURS)
    bucket = ExpressionWrapper(F("slot") * F("interval_seconds") / TREND_BUCKET_SECONDS, output_field=IntegerField())
    rows = (
        StreamAssessment.objects.filter(source__in=sources, kind=ReadingKind.ASSESSED, frame_at__gte=since)
        .annotate(bucket=bucket)
        .values("source_id", "patient_id", "bucket")
        .annotate(severe=Max("severe_probability"))
        .order_by("source_id", "bucket")
    )
    patients = {source.pk: source.patient_id for source in sources}
    trends: dict[int, list[list[float]]] = {source.pk: [] for source in sources}
    for row in rows:
        if row["patient_id"] == patients[row["source_id"]]:
            trends[row["source_id"]].append([row["bucket"] * TREND_BUCKET_SECONDS * 1000, round(row["severe"], 3)])
    return trends


def _state(source: CameraSource, now: datetime) -> str:
    """off · no_patient · no_consent · not_monitored (no worker lately) · offline · no_face · assessed · waiting"""
    if not source.active:
        return "off"
    if source.patient is None:
        return "no_patient"
    if not source.patient.has_consent:
        return "no_consent"
    last = source.last_reading
    newest = last.assessed_at or last.created_at if last else None
    if newest is None or (now - newest).total_seconds() > STALE_INTERVALS * source.interval_seconds + 5:
        return "not_monitored" if source.status != SourceStatus.OFFLINE else "offline"
    if source.status == SourceStatus.OFFLINE:
        return "offline"
    if last.kind == ReadingKind.NO_FACE:
        return "no_face"
    if last.kind == ReadingKind.ASSESSED:
        return "assessed"
    return "waiting"


def ward_board() -> dict[str, Any]:
    now = timezone.now()
    sources = list(
        CameraSource.objects.select_related("patient", "last_reading", "last_assessment").order_by("bed", "id")
    )
    trends = _trends(sources, now)
    open_alerts: dict[int, list[WardAlert]] = {}
    for alert in WardAlert.objects.filter(acknowledged_at__isnull=True, source__isnull=False).select_related("patient"):
        open_alerts.setdefault(alert.source_id, []).append(alert)
    beds = []
    for source in sources:
        patient = source.patient
        # Whose consent is not granted: nothing of theirs is shown (nor, by the worker, assessed).
        hidden = patient is not None and not patient.has_consent
        beds.append(
            {
                "id": source.pk,
                "name": source.name,
                "bed": source.bed,
                "patient": patient.code if patient else None,
                "active": source.active,
                "status": source.status,
                "state": _state(source, now),
                "interval_seconds": source.interval_seconds,
                "last_frame_at": _ms(source.last_frame_at),
                "last_reading": None if hidden else _reading(source.last_reading),
                "last_assessment": None if hidden else _reading(source.last_assessment),
                "severe_run": 0 if hidden else source.severe_run,
                "trend": [] if hidden else trends.get(source.pk, []),
                "alerts": [
                    {
                        "id": alert.pk,
                        "patient": alert.patient.code,
                        "raised_at": _ms(alert.raised_at),
                        "severe_run": alert.severe_run,
                        "severe_probability": round(alert.severe_probability, 3),
                        "escalated": alert.escalated_at is not None,
                        "escalated_at": _ms(alert.escalated_at),
                    }
                    for alert in open_alerts.get(source.pk, [])
                ],
            }
        )
    production = production_version()
    return {
        "now": _ms(now),
        # None: rounds assess nothing (modeling/ward_rounds.py), and the board says so.
        "production_model": None if production is None else {"id": production.pk, "name": production.name},
        "trend_hours": settings.PAINSITE_WARD_TREND_HOURS,
        "alert_consecutive": settings.PAINSITE_MONITOR_ALERT_CONSECUTIVE,
        "escalate_seconds": settings.PAINSITE_WARD_ESCALATE_SECONDS,
        "beds": beds,
    }
