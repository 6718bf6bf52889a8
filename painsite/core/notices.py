"""Telling admins: a notice on the dashboard until one of them dismisses it, and an e-mail through
Django's mail settings (the console backend unless EMAIL_BACKEND says otherwise)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from painsite.core.models import AdminNotice
from painsite.core.roles import ADMIN
from painsite.core.services import record_event

logger = logging.getLogger(__name__)


def admin_email_addresses() -> list[str]:
    """Active admins with an e-mail address, and PAINSITE_ADMIN_EMAILS (a ward's shared box)."""
    admins = User.objects.filter(Q(groups__name=ADMIN) | Q(is_superuser=True), is_active=True).exclude(email="")
    found = sorted(set(admins.values_list("email", flat=True)) | set(settings.PAINSITE_ADMIN_EMAILS))
    return found


def notify_admins(
    *, kind: str, subject: str, body: str = "", link: str = "", key: str | None = None
) -> AdminNotice | None:
    """Post a notice and e-mail it once the transaction commits. A notice with a `key` already
    posted is not posted or e-mailed again (None)."""
    try:
        with transaction.atomic():
            notice = AdminNotice.objects.create(kind=kind, subject=subject[:200], body=body, link=link, key=key)
    except IntegrityError:
        return None
    transaction.on_commit(lambda: _send(notice))
    return notice


def _send(notice: AdminNotice) -> None:
    recipients = admin_email_addresses()
    if not recipients:
        return
    text = notice.body
    if notice.link:
        text = f"{text}\n\n{settings.PAINSITE_SITE_URL.rstrip('/')}{notice.link}"
    try:
        send_mail(f"[PainSite] {notice.subject}", text, None, recipients)
    except Exception:  # a mail server down must not undo what the notice reports
        logger.exception("could not e-mail the admins notice %s (it stays on the dashboard)", notice.pk)


def open_notices() -> QuerySet[AdminNotice]:
    return AdminNotice.objects.filter(dismissed_at__isnull=True)


def dismiss_notice(*, notice: AdminNotice, dismissed_by: User) -> None:
    with transaction.atomic():
        updated = AdminNotice.objects.filter(pk=notice.pk, dismissed_at__isnull=True).update(
            dismissed_at=timezone.now(), dismissed_by=dismissed_by
        )
        if updated:
            record_event(
                actor=dismissed_by, action="notice.dismiss", target=notice, details={"subject": notice.subject}
            )
