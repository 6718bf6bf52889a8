"""Who may see which patients' images and labels, and the audit record of identifiable views.

The one rule: a patient's images, scores and raters are shown only while their consent is
granted, except to holders of `annotation.view_withdrawn_images` (admins). Pages, the API and the
patient timeline all ask the functions below, so the rule cannot differ between them.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.utils import timezone

from annotation.models import Cohort, Consent, Image, PainLabel, Patient
from annotation.selectors import label_history
from painsite.core.models import AuditEvent
from painsite.core.services import record_event

VIEW_WITHDRAWN = "annotation.view_withdrawn_images"
# A clinician labeling one patient opens many images of that patient in a few minutes. The audit
# question is "who looked at whose face, and when", so one `image.view` event per user per patient
# per window answers it without one row per click. Thumbnails are too small to identify anyone
# reliably and are not logged.
VIEW_AUDIT_WINDOW = timedelta(minutes=10)


def sees_every_patient(user: User | AnonymousUser) -> bool:
    return user.has_perm(VIEW_WITHDRAWN)


def may_view_patient_data(user: User | AnonymousUser, patient: Patient) -> bool:
    """Whether `user` may see the patient's images, scores and who gave them."""
    return patient.consent == Consent.GRANTED or sees_every_patient(user)


def visible_images(user: User | AnonymousUser) -> QuerySet[Image]:
    """Images `user` may see: withdrawn-consent patients' images only for admins."""
    images = Image.objects.select_related("patient")
    if not sees_every_patient(user):
        images = images.filter(patient__consent=Consent.GRANTED)
    return images


def visible_label_history(user: User | AnonymousUser, *, image_id: int | None = None) -> QuerySet[PainLabel]:
    """Label rows `user` may see, superseded ones included, newest first."""
    return label_history(image_id=image_id, include_withdrawn=sees_every_patient(user))


def filter_images(
    images: QuerySet[Image], *, patient: str = "", cohort: str = "", labeled: bool | None = None
) -> QuerySet[Image]:
    if patient:
        images = images.filter(patient__code=patient)
    if cohort in Cohort.values:
        images = images.filter(patient__cohort=cohort)
    if labeled is True:
        images = images.filter(label_count__gt=0)
    elif labeled is False:
        images = images.filter(label_count=0)
    return images


def parse_labeled(value: str | None) -> bool | None:
    return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get((value or "").lower())


def may_view_image(user: User | AnonymousUser, image: Image) -> bool:
    return may_view_patient_data(user, image.patient)


def record_image_view(*, user: User, image: Image) -> bool:
    """Audit one full-size view; True when an event was written, False when the user's recent
    event for this patient already covers it (see VIEW_AUDIT_WINDOW)."""
    patient: Patient = image.patient
    recent = AuditEvent.objects.filter(
        actor=user,
        action="image.view",
        object_type=Patient._meta.label_lower,
        object_id=str(patient.pk),
        created_at__gte=timezone.now() - VIEW_AUDIT_WINDOW,
    )
    if recent.exists():
        return False
    record_event(
        actor=user,
        action="image.view",
        target=patient,
        details={"image": image.pk, "patient": patient.code, "window_minutes": VIEW_AUDIT_WINDOW.seconds // 60},
    )
    return True
