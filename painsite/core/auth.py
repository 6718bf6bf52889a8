"""Log-in throttling: after too many failed attempts an account is locked for a while.

Counted per username (not per address), so guessing one clinician's password from many
machines is throttled too. Applies to the log-in page and to the API token endpoint, since
both go through django.contrib.auth.authenticate().
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import Permission
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.dispatch import receiver
from django.utils import timezone

from painsite.core.models import LoginFailure
from painsite.core.services import record_event

LOCKOUT_MESSAGE = (
    "Too many failed log-in attempts for this account. It is locked for {minutes} minutes; "
    "ask an administrator if you need access sooner."
)


def _window_start():
    return timezone.now() - timedelta(seconds=settings.PAINSITE_LOGIN_LOCKOUT_SECONDS)


def is_locked_out(username: str) -> bool:
    recent = LoginFailure.objects.filter(username=username, created_at__gte=_window_start())
    return recent.count() >= settings.PAINSITE_LOGIN_FAILURE_LIMIT


def lockout_message() -> str:
    return LOCKOUT_MESSAGE.format(minutes=max(1, settings.PAINSITE_LOGIN_LOCKOUT_SECONDS // 60))


class ThrottledModelBackend(ModelBackend):
    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        """The user's own and their roles' permissions, read in one query instead of two.

        Every API request checks permissions, so this is on the labeling queue's hot path. Like
        ModelBackend, the answer is cached on the user object, i.e. for one request.
        """
        if (
            obj is None
            and user_obj.is_active
            and not user_obj.is_anonymous
            and not user_obj.is_superuser
            and not hasattr(user_obj, "_perm_cache")
        ):
            granted = (
                Permission.objects.filter(Q(user=user_obj) | Q(group__user=user_obj))
                .values_list("content_type__app_label", "codename")
                .order_by()
                .distinct()
            )
            user_obj._perm_cache = {f"{app_label}.{codename}" for app_label, codename in granted}
        return super().get_all_permissions(user_obj, obj)

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is not None and is_locked_out(username):
            # PermissionDenied stops authenticate() at once: even the right password is refused.
            raise PermissionDenied(lockout_message())
        return super().authenticate(request, username=username, password=password, **kwargs)


def _client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


@receiver(user_login_failed)
def remember_login_failure(sender, credentials, request=None, **kwargs) -> None:
    username = (credentials or {}).get("username")
    if not username:
        return
    was_locked = is_locked_out(username)
    LoginFailure.objects.create(username=username[:150], ip_address=_client_ip(request))
    if not was_locked and is_locked_out(username):
        record_event(
            actor=None,
            action="auth.lockout",
            object_type="auth.user",
            object_id=username[:64],
            details={"username": username, "ip": _client_ip(request), "failures": settings.PAINSITE_LOGIN_FAILURE_LIMIT},
        )


@receiver(user_logged_in)
def forget_login_failures(sender, request, user, **kwargs) -> None:
    LoginFailure.objects.filter(username=user.get_username()).delete()


class ThrottledAuthenticationForm(AuthenticationForm):
    def clean(self):
        username = self.cleaned_data.get("username")
        if username and is_locked_out(username):
            # Still count the attempt, so hammering a locked account keeps it locked.
            user_login_failed.send(sender=__name__, credentials={"username": username}, request=self.request)
            raise forms.ValidationError(lockout_message(), code="locked")
        return super().clean()
