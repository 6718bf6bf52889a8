"""Writes for patients and pain labels: one transaction each, every change audit-logged.

Labels are append-only. Each (image, rater) pair has one chain of rows linked by `supersedes`;
its last row is the rater's standing score for the image. A correction, an undo and a retraction
are all new rows at the end of the chain, so the history is never lost and the queue counters on
Image (label_count, observer_rater_count) follow from the chain heads alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from annotation.models import (
    RECORDABLE_CONSENT,
    Cohort,
    Consent,
    Image,
    ImagePrediction,
    LabelKind,
    PainLabel,
    Patient,
)
from annotation.selectors import next_image_for
from painsite.core.services import record_event

NRS_MIN, NRS_MAX = 0, 10
# Pseudonymous codes only: letters, digits, '.', '_' and '-', no spaces, so "Jane Doe" cannot be
# typed in as a code by mistake.
PATIENT_CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class LabelingError(ValueError):
    """A label that cannot be recorded; the message says why."""


class ConsentWithdrawnError(LabelingError):
    """The image belongs to a patient who withdrew consent."""


class PatientError(ValueError):
    """A patient that cannot be created or changed; the message says why."""


def validate_nrs(nrs: object) -> int:
    # bool is an int subclass: True must not be stored as NRS 1.
    if isinstance(nrs, bool) or not isinstance(nrs, int):
        raise LabelingError(
            gettext("nrs must be a whole number from %(low)s to %(high)s, not %(nrs)s")
            % {"low": NRS_MIN, "high": NRS_MAX, "nrs": repr(nrs)}
        )
    if not NRS_MIN <= nrs <= NRS_MAX:
        raise LabelingError(
            gettext("nrs must be a whole number from %(low)s to %(high)s, not %(nrs)s")
            % {"low": NRS_MIN, "high": NRS_MAX, "nrs": nrs}
        )
    return nrs


def validate_kind(kind: object) -> str:
    if kind not in LabelKind.values:
        raise LabelingError(
            gettext("kind must be one of %(kinds)s, not %(kind)s")
            % {"kinds": ", ".join(LabelKind.values), "kind": repr(kind)}
        )
    return str(kind)


def _chain_head(*, image_id: int, rater: User) -> PainLabel | None:
    # Rows are only ever appended at the head of a chain, so the head is the pair's newest row:
    # an index lookup, no join to find the row nothing supersedes.
    return PainLabel.objects.filter(image_id=image_id, rater=rater).order_by("-id").first()


def _standing_kind(head: PainLabel | None) -> str | None:
    """The kind of the score a chain head stands for, or None when the rater holds no score."""
    if head is None or head.is_retraction:
        return None
    return head.kind


def _update_queue_state(*, image: Image, rater: User, before: str | None, after: str | None) -> None:
    """Move Image's counters from the rater's old standing score to the new one, and end the
    rater's reservation of the image, in one UPDATE (and drop the queue's prediction of an image
    that got its first score).

    F() expressions make the change relative, so two raters labeling the same image at the same
    moment both count; the caller also holds the image row lock, so the chain read and
    `image.reserved_by_id` are current.
    """
    changes = {}
    label_delta = (after is not None) - (before is not None)
    observer_delta = (after == LabelKind.OBSERVER) - (before == LabelKind.OBSERVER)
    if label_delta or observer_delta:
        changes.update(
            label_count=F("label_count") + label_delta,
            observer_rater_count=F("observer_rater_count") + observer_delta,
        )
    if image.reserved_by_id is not None and image.reserved_by_id == rater.pk:
        changes.update(reserved_by=None, reserved_until=None)
    if changes:
        Image.objects.filter(pk=image.pk).update(**changes)
    if label_delta > 0 and image.label_count == 0:
        # The first score: the image leaves the never-labeled step, and with it the queue's
        # prediction, so the ordered scans over the predictions never pass labeled images.
        ImagePrediction.objects.filter(image_id=image.pk).delete()


def reserve_next_image(*, rater: User, skip: Iterable[int] = ()) -> Image | None:
    """Hand `rater` the next image of their queue (annotation.selectors.next_image_for) and reserve
    it for them for PAINSITE_QUEUE_RESERVATION_SECONDS; None when their queue is empty.

    While the reservation lasts, other clinicians' queues pass the image over, so clinicians
    labeling at the same time spread over the backlog instead of scoring the same image. Asking
    again hands back the same image (the queue keeps the rater's own reservation). Recording the
    rater's score releases the image (record_label), and so does skipping it: the images in
    `skip` that the rater holds return to the others' queues at once.
    """
    skip = list(skip)
    with transaction.atomic():
        if skip:
            Image.objects.filter(reserved_by=rater, pk__in=skip).update(reserved_by=None, reserved_until=None)
        # The row lock (passing over rows being handed to someone else at this moment) keeps two
        # clinicians asking at once from both reserving one image; SQLite's immediate
        # transaction serialises the whole hand-out instead.
        image = next_image_for(rater, skip=skip, for_update=True)
        if image is None:
            return None
        until = timezone.now() + timedelta(seconds=settings.PAINSITE_QUEUE_RESERVATION_SECONDS)
        Image.objects.filter(pk=image.pk).update(reserved_by=rater, reserved_until=until)
    image.reserved_by, image.reserved_until = rater, until
    return image


def _lock_image(image_id: int) -> Image:
    return Image.objects.select_for_update(of=("self",)).select_related("patient").get(pk=image_id)


def record_label(*, image: Image | int, rater: User, nrs: int, kind: str) -> PainLabel:
    """Record `rater`'s NRS score for `image` (an Image or its id; Image.DoesNotExist when there
    is none); a second score by the same rater is a correction.

    One rater holds one standing score per image, of either kind: a clinician who has heard the
    patient's self-report is no longer a blind observer of that face.
    """
    nrs = validate_nrs(nrs)
    kind = validate_kind(kind)
    with transaction.atomic():
        # The image row lock serialises writers of the same image (on SQLite the immediate
        # transaction already does), so the chain head read below cannot go stale.
        locked = _lock_image(image if isinstance(image, int) else image.pk)
        if locked.patient.consent != Consent.GRANTED:
            raise ConsentWithdrawnError(
                gettext("patient %(code)s withdrew consent: their images cannot be labeled")
                % {"code": locked.patient.code}
            )
        previous = _chain_head(image_id=locked.pk, rater=rater)
        label = PainLabel.objects.create(image=locked, rater=rater, nrs=nrs, kind=kind, supersedes=previous)
        _update_queue_state(image=locked, rater=rater, before=_standing_kind(previous), after=kind)
        record_event(
            actor=rater,
            action="label.create",
            target=label,
            details={
                "image": locked.pk,
                "patient": locked.patient.code,
                "nrs": nrs,
                "kind": kind,
                "supersedes": previous.pk if previous else None,
            },
        )
    return label


def undo_last_label(*, rater: User) -> PainLabel | None:
    """Take back the rater's most recent score that still stands; None when there is none.

    The undo is a new row at the end of that chain: it restores the score the undone one
    replaced, or, when the undone score was the rater's first for the image, retracts it (the
    image goes back into the rater's queue). Rows written by undo are never undone themselves,
    so pressing undo again walks further back through the rater's labeling, one score at a time.
    """
    with transaction.atomic():
        for _attempt in range(3):
            target = (
                PainLabel.objects.filter(rater=rater, is_undo=False, superseded_by__isnull=True)
                .order_by("-created_at", "-id")
                .first()
            )
            if target is None:
                return None
            locked = _lock_image(target.image_id)
            head = _chain_head(image_id=locked.pk, rater=rater)
            if head is not None and head.pk == target.pk:
                break
            # A concurrent request (a second tab) moved this chain on while we waited for the lock.
        else:
            raise LabelingError(gettext("labels changed while undoing; try again"))

        previous = target.supersedes
        restores = previous is not None and not previous.is_retraction
        undo = PainLabel.objects.create(
            image=locked,
            rater=rater,
            nrs=previous.nrs if restores else target.nrs,
            kind=previous.kind if restores else target.kind,
            supersedes=target,
            is_undo=True,
            is_retraction=not restores,
        )
        _update_queue_state(image=locked, rater=rater, before=target.kind, after=previous.kind if restores else None)
        record_event(
            actor=rater,
            action="label.undo",
            target=undo,
            details={
                "image": locked.pk,
                "undone": target.pk,
                "undone_nrs": target.nrs,
                "restored_nrs": undo.nrs if restores else None,
            },
        )
    return undo


def create_patient(*, code: str, cohort: str, actor: User | None, consent: str = Consent.NOT_RECORDED) -> Patient:
    """A new patient. Consent stays "not recorded" unless `actor` records it here (an import
    whose manifest states it)."""
    code = (code or "").strip()
    if not PATIENT_CODE_PATTERN.match(code):
        raise PatientError(
            gettext("code must be a pseudonymous code of 1-64 letters, digits, '.', '_' or '-' (no names, no spaces)")
        )
    if cohort not in Cohort.values:
        raise PatientError(
            gettext("cohort must be one of %(cohorts)s, not %(cohort)s")
            % {"cohorts": ", ".join(Cohort.values), "cohort": repr(cohort)}
        )
    if consent not in Consent.values:
        raise PatientError(
            gettext("consent must be one of %(choices)s, not %(consent)s")
            % {"choices": ", ".join(RECORDABLE_CONSENT), "consent": repr(consent)}
        )
    try:
        with transaction.atomic():
            patient = Patient.objects.create(code=code, cohort=cohort)
            record_event(actor=actor, action="patient.create", target=patient, details={"code": code, "cohort": cohort})
    except IntegrityError:
        existing = Patient.objects.filter(code__iexact=code).first()
        if existing is not None and existing.code != code:
            raise PatientError(
                gettext(
                    "patient code %(code)s is the existing patient %(existing)s: codes differ only in case, and name "
                    "one patient"
                )
                % {"code": repr(code), "existing": repr(existing.code)}
            ) from None
        raise PatientError(gettext("a patient with code %(code)s already exists") % {"code": repr(code)}) from None
    if consent != Consent.NOT_RECORDED:
        patient = _set_consent(
            patient=patient, consent=consent, actor=actor, reason="stated when the patient was created"
        )
    return patient


def _set_consent(*, patient: Patient, consent: str, actor: User | None, reason: str) -> Patient:
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        if locked.consent != consent:
            before = locked.consent
            locked.consent = consent
            locked.consent_recorded_by = actor
            locked.consent_recorded_at = timezone.now()
            locked.save(update_fields=["consent", "consent_recorded_by", "consent_recorded_at"])
            action = "consent.withdraw" if consent == Consent.WITHDRAWN else "consent.grant"
            record_event(
                actor=actor,
                action=action,
                target=locked,
                details={"code": locked.code, "from": before, "to": consent, "reason": reason},
            )
    patient.consent = locked.consent
    patient.consent_recorded_by = locked.consent_recorded_by
    patient.consent_recorded_at = locked.consent_recorded_at
    return locked


def withdraw_consent(*, patient: Patient, actor: User, reason: str = "") -> Patient:
    """Hide the patient's images from labeling, export and every future training run."""
    return _set_consent(patient=patient, consent=Consent.WITHDRAWN, actor=actor, reason=reason)


def grant_consent(*, patient: Patient, actor: User, reason: str = "") -> Patient:
    return _set_consent(patient=patient, consent=Consent.GRANTED, actor=actor, reason=reason)


def set_consent(*, patient: Patient, consent: str, actor: User, reason: str = "") -> Patient:
    """Record the patient's consent as granted or withdrawn, with who and when."""
    if consent not in RECORDABLE_CONSENT:
        raise PatientError(
            gettext("consent must be one of %(choices)s, not %(consent)s")
            % {"choices": ", ".join(RECORDABLE_CONSENT), "consent": repr(consent)}
        )
    return _set_consent(patient=patient, consent=consent, actor=actor, reason=reason)
