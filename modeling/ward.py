"""Ward monitoring services: registering cameras, putting patients in beds, and alerts.

Every change an admin or clinician makes is one transaction with its audit event. The worker's
side (reading the cameras and assessing the frames) is modeling/ward_rounds.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from annotation.models import Patient
from modeling.ward_models import CameraSource, WardAlert
from painsite.core.notices import notify_admins
from painsite.core.services import record_event

SOURCE_FIELDS = ("name", "url", "bed", "patient", "interval_seconds", "active")


class SourceRefused(ValueError):
    """A camera registration or change that cannot be made; the message says why."""


def _check(fields: dict[str, Any], *, instance: CameraSource | None = None) -> None:
    unknown = sorted(set(fields) - set(SOURCE_FIELDS))
    if unknown:
        raise SourceRefused(_("unknown fields: %(fields)s") % {"fields": ", ".join(unknown)})
    if "url" in fields and not str(fields["url"]).strip():
        raise SourceRefused(_("the camera URL is empty"))
    if "interval_seconds" in fields:
        interval = fields["interval_seconds"]
        if not isinstance(interval, int) or not 1 <= interval <= 3600:
            raise SourceRefused(_("the interval must be a whole number of seconds from 1 to 3600"))
    for unique in ("name", "bed"):
        if unique in fields:
            if not str(fields[unique]).strip():
                raise SourceRefused(_("the %(field)s is empty") % {"field": unique})
            clash = CameraSource.objects.filter(**{unique: fields[unique]})
            if instance is not None:
                clash = clash.exclude(pk=instance.pk)
            if clash.exists():
                raise SourceRefused(
                    _("another camera already has %(field)s %(value)s") % {"field": unique, "value": fields[unique]}
                )


def _described(source: CameraSource) -> dict[str, Any]:
    return {
        "name": source.name,
        "bed": source.bed,
        "url": source.url,
        "patient": source.patient.code if source.patient else None,
        "interval_seconds": source.interval_seconds,
        "active": source.active,
    }


def register_source(*, actor: User, **fields: Any) -> CameraSource:
    """A new camera (name, url, bed, [patient], [interval_seconds], [active])."""
    _check(fields)
    for required in ("name", "url", "bed"):
        if required not in fields:
            raise SourceRefused(_("%(field)s is required") % {"field": required})
    with transaction.atomic():
        source = CameraSource.objects.create(**fields)
        record_event(actor=actor, action="ward.source.create", target=source, details=_described(source))
    return source


def change_source(*, source: CameraSource, actor: User, **fields: Any) -> CameraSource:
    """Change a camera. A new patient in the bed, a new interval or switching it off starts its
    slots afresh: what the camera showed before belongs to the previous setting. A change of
    patient is audited with both codes."""
    _check(fields, instance=source)
    with transaction.atomic():
        source = CameraSource.objects.select_for_update().get(pk=source.pk)
        before = _described(source)
        for name, value in fields.items():
            setattr(source, name, value)
        after = _described(source)
        changed = {name: [before[name], after[name]] for name in after if before[name] != after[name]}
        if not changed:
            return source
        if {"patient", "interval_seconds", "active"} & set(changed):
            source.last_slot = None
            source.severe_run = 0
            source.last_face_slot = None
        if "patient" in changed:
            source.last_assessment = None
            source.last_reading = None
        source.save()
        if "patient" in changed:
            record_event(
                actor=actor,
                action="ward.source.patient",
                target=source,
                details={"bed": source.bed, "from": before["patient"], "to": after["patient"]},
            )
        record_event(actor=actor, action="ward.source.change", target=source, details={"changed": changed})
    return source


def put_patient_in_bed(*, source: CameraSource, patient: Patient | None, actor: User) -> CameraSource:
    return change_source(source=source, actor=actor, patient=patient)


def remove_source(*, source: CameraSource, actor: User) -> None:
    """Delete a camera. Its assessments and alerts stay on the patients' records (they keep the bed)."""
    with transaction.atomic():
        record_event(actor=actor, action="ward.source.delete", target=source, details=_described(source))
        source.delete()


class AlertAlreadyAcknowledged(Exception):
    def __init__(self, alert: WardAlert) -> None:
        self.alert = alert
        who = alert.acknowledged_by.get_username() if alert.acknowledged_by else "?"
        super().__init__(
            _("this alert was already acknowledged by %(who)s at %(when)s")
            % {"who": who, "when": alert.acknowledged_at.isoformat() if alert.acknowledged_at else "?"}
        )


def acknowledge_alert(*, alert: WardAlert, actor: User) -> WardAlert:
    """A clinician has seen the alert and takes it from here. The bed's severe run starts again,
    so the same episode does not raise a new alert at the next assessment."""
    with transaction.atomic():
        now = timezone.now()
        updated = WardAlert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=now, acknowledged_by=actor
        )
        alert.refresh_from_db()
        if not updated:
            raise AlertAlreadyAcknowledged(alert)
        if alert.source_id is not None:
            CameraSource.objects.filter(pk=alert.source_id, patient=alert.patient).update(severe_run=0, updated_at=now)
        record_event(
            actor=actor,
            action="ward.alert.acknowledge",
            target=alert,
            details={
                "bed": alert.bed,
                "patient": alert.patient.code,
                "raised_at": alert.raised_at.isoformat(),
                "seconds_open": round((now - alert.raised_at).total_seconds(), 1),
                "escalated": alert.escalated_at is not None,
            },
        )
    return alert


def escalate_overdue_alerts(*, now: datetime | None = None) -> list[WardAlert]:
    """Alerts open longer than PAINSITE_WARD_ESCALATE_SECONDS: marked escalated (shown on the
    board) and told to the admins by notice and e-mail, once each."""
    now = now or timezone.now()
    deadline = now - timedelta(seconds=settings.PAINSITE_WARD_ESCALATE_SECONDS)
    escalated = []
    overdue = WardAlert.objects.filter(
        acknowledged_at__isnull=True, escalated_at__isnull=True, raised_at__lte=deadline
    ).select_related("patient")
    for alert in overdue:
        with transaction.atomic():
            if not WardAlert.objects.filter(pk=alert.pk, escalated_at__isnull=True).update(escalated_at=now):
                continue  # another worker took it
            alert.escalated_at = now
            minutes = max(1, round((now - alert.raised_at).total_seconds() / 60))
            # Written in the site's language: a notice is stored once and read by every admin.
            with translation.override(settings.LANGUAGE_CODE):
                subject, body = _escalation_text(alert, minutes)
            notify_admins(
                kind="ward",
                subject=subject,
                body=body,
                link="/ward/",
                key=f"ward-alert-{alert.pk}",
            )
            record_event(
                actor=None,
                action="ward.alert.escalate",
                target=alert,
                details={"bed": alert.bed, "patient": alert.patient.code, "raised_at": alert.raised_at.isoformat()},
            )
            escalated.append(alert)
    return escalated


def _escalation_text(alert: WardAlert, minutes: int) -> tuple[str, str]:
    values = {"bed": alert.bed, "patient": alert.patient.code, "minutes": minutes}
    subject = _("Unacknowledged severe-pain alert at bed %(bed)s (patient %(patient)s)") % values
    body = (
        _(
            "Severe pain persisted at bed %(bed)s (patient %(patient)s) and nobody has acknowledged the alert "
            "for %(minutes)s min. Please check on the patient and acknowledge it on the ward board."
        )
        % values
    )
    return subject, body
