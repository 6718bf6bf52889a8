"""Log-in lockout (django-axes) and the permission backend.

Failed log-ins are counted by django-axes per username *and* client address together
(AXES_LOCKOUT_PARAMETERS in settings): guessing a clinician's password from one machine locks
that machine out of that account, while the clinician, logging in from their own machine, is not
locked out by someone else's failures. Records expire after the cool-off. The log-in page and
the API token endpoint both go through django.contrib.auth.authenticate(), so both are covered.
"""

from __future__ import annotations

from functools import cache

from axes.backends import AxesStandaloneBackend
from axes.signals import user_locked_out
from django import forms
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy
from rest_framework.throttling import BaseThrottle

from painsite.core.services import record_event

LOCKOUT_MESSAGE = gettext_lazy(
    "Too many failed log-in attempts for this account. It is locked for {minutes} minutes; "
    "ask an administrator if you need access sooner."
)


def lockout_message() -> str:
    return str(LOCKOUT_MESSAGE).format(minutes=max(1, settings.PAINSITE_LOGIN_LOCKOUT_SECONDS // 60))


def is_locked_out(request: HttpRequest) -> bool:
    """Whether django-axes refused the log-in attempt this request just made."""
    return bool(getattr(request, "axes_locked_out", False))


def note_sign_in_refusal(request: HttpRequest | None, message: str) -> None:
    """A backend refused a log-in for a reason other than the password (the hospital directory:
    painsite.core.directory); the log-in page and the token endpoint show this message."""
    if request is not None:
        request.painsite_sign_in_refusal = message


def sign_in_refusal(request: HttpRequest | None) -> str | None:
    return getattr(request, "painsite_sign_in_refusal", None)


def client_address(request: HttpRequest) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: the address DRF's throttles count by too. REMOTE_ADDR, unless
    PAINSITE_TRUSTED_PROXIES says how many proxies of ours add X-Forwarded-For; a header the
    client wrote itself is never believed."""
    return BaseThrottle().get_ident(request)


def keep_response(request: HttpRequest, response: HttpResponse | None, credentials: dict | None = None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the log-in page and the token endpoint already say why they refused."""
    return response


@receiver(user_locked_out, dispatch_uid="painsite-audit-lockout")
def audit_lockout(sender, request, username: str | None = None, ip_address: str | None = None, **kwargs) -> None:
    # Axes signals a lockout on every failure from the limit on; the lockout begins at the limit.
    if getattr(request, "axes_failures_since_start", None) != settings.PAINSITE_LOGIN_FAILURE_LIMIT:
        return
    record_event(
        actor=None,
        action="auth.lockout",
        object_type="auth.user",
        object_id=(username or "")[:64],
        details={"username": username, "ip": ip_address, "failures": settings.PAINSITE_LOGIN_FAILURE_LIMIT},
    )


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check for log-ins that come with a request (the log-in page and the
    token endpoint). authenticate() without one (the test client's login(), scripts) has no
    client address to count by and is left to the next backend."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class RolePermissionBackend(ModelBackend):
    """Django's ModelBackend, reading the user's own and their roles' permissions in one query.

    Every API request checks permissions, so this is on the labeling queue's hot path. The answer
    is kept on the user object (our own attribute), which lives for one request: a removed role
    counts from the next request on.
    """

    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        if obj is not None or not user_obj.is_active or user_obj.is_anonymous:
            return set()
        if user_obj.is_superuser:
            return super().get_all_permissions(user_obj, obj)
        granted = getattr(user_obj, "painsite_permissions", None)
        if granted is None:
            with connection.cursor() as cursor:
                cursor.execute(_permissions_sql(), [user_obj.pk, user_obj.pk])
                granted = frozenset(f"{app_label}.{codename}" for app_label, codename in cursor.fetchall())
            user_obj.painsite_permissions = granted
        return set(granted)


@cache
def _permissions_sql() -> str:
    """The user's own and their roles' permissions as (app_label, codename) rows.

    Written out once instead of built by the ORM on each request: compiling the equivalent
    queryset cost about a millisecond of CPU per API request, more than running it. Table and
    column names come from the models, so the query follows them.
    """
    permission, content_type = Permission._meta, ContentType._meta
    user_permissions = User.user_permissions.through._meta
    group_permissions = Group.permissions.through._meta
    user_groups = User.groups.through._meta
    return (
        f"SELECT ct.{content_type.get_field('app_label').column}, p.{permission.get_field('codename').column} "
        f"FROM {permission.db_table} p JOIN {content_type.db_table} ct ON ct.id = p.content_type_id "
        f"WHERE p.id IN (SELECT permission_id FROM {user_permissions.db_table} WHERE user_id = %s) "
        f"OR p.id IN (SELECT gp.permission_id FROM {group_permissions.db_table} gp "
        f"JOIN {user_groups.db_table} ug ON ug.group_id = gp.group_id WHERE ug.user_id = %s)"
    )


class ThrottledAuthenticationForm(AuthenticationForm):
    def clean(self):
        try:
            return super().clean()
        except forms.ValidationError:
            if is_locked_out(self.request):
                raise forms.ValidationError(lockout_message(), code="locked") from None
            if refusal := sign_in_refusal(self.request):
                raise forms.ValidationError(refusal, code="refused") from None
            raise
