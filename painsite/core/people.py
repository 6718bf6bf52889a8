"""Managing people: accounts, their role, whether they may log in, and password resets.

Used by the /people/ page (admins) and `manage.py create_user` (scripts). Every change is one
transaction with its audit event; passwords never reach the audit log.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext

from painsite.core.models import DirectoryAccount
from painsite.core.roles import ADMIN, ROLES, assign_role, role_of
from painsite.core.services import record_event


class PeopleError(ValueError):
    """A change to an account that was refused; the message says why. Nothing was changed."""


DIRECTORY_BACKEND = "painsite.core.directory.DirectoryBackend"


def directory_sign_in_on() -> bool:
    return DIRECTORY_BACKEND in settings.AUTHENTICATION_BACKENDS


def from_directory(user: User) -> bool:
    """An account the hospital directory signs in (a DirectoryAccount row, written at its first
    directory sign-in): its password is the directory's and its role follows the directory groups
    at each sign-in (painsite/core/directory.py). Accounts without a password for other reasons
    (raters restored from a backup, demo accounts) are not directory accounts."""
    return DirectoryAccount.objects.filter(user_id=user.pk).exists()


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise PeopleError(
            gettext("unknown role %(role)s; valid roles: %(roles)s") % {"role": repr(role), "roles": ", ".join(ROLES)}
        )


def _check_may_change(*, actor: User | AnonymousUser | None, user: User) -> None:
    # A superuser holds more than any role; only another superuser may change such an account.
    if user.is_superuser and actor is not None and not getattr(actor, "is_superuser", False):
        raise PeopleError(
            gettext("%(username)s is a superuser: only a superuser may change that account")
            % {"username": user.username}
        )


def _check_not_self(*, actor: User | AnonymousUser | None, user: User, refusal: str) -> None:
    # Locking oneself out would leave nobody able to undo it on a site with one admin.
    if actor is not None and actor.pk == user.pk:
        raise PeopleError(refusal)


def _validated_password(password: str, user: User) -> str:
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise PeopleError(gettext("password refused: %(reasons)s") % {"reasons": " ".join(error.messages)}) from None
    return password


@transaction.atomic
def create_person(
    *, actor: User | AnonymousUser | None, username: str, role: str, email: str = "", password: str | None = None
) -> tuple[User, str | None]:
    """Create an account with a role. Returns the user and the generated password (None if given)."""
    username = username.strip()
    _check_role(role)
    if not username:
        raise PeopleError(gettext("a username is required"))
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError as error:
        raise PeopleError(
            gettext("username %(username)s refused: %(reasons)s")
            % {"username": repr(username), "reasons": " ".join(error.messages)}
        ) from None
    if User.objects.filter(username__iexact=username).exists():
        raise PeopleError(gettext("a user named %(username)s already exists") % {"username": repr(username)})
    generated = None
    user = User(username=username, email=email.strip())
    if password is None:
        generated = password = generate_password()
    user.set_password(_validated_password(password, user))
    user.save()
    assign_role(user, role)
    record_event(
        actor=actor,
        action="user.create",
        target=user,
        details={"username": username, "role": role, "password": "generated" if generated else "set"},
    )
    return user, generated


@transaction.atomic
def change_role(*, actor: User | AnonymousUser | None, user: User, role: str) -> None:
    _check_role(role)
    _check_may_change(actor=actor, user=user)
    before = role_of(user)
    if before == role:
        return
    if before == ADMIN:
        _check_not_self(
            actor=actor,
            user=user,
            refusal=gettext("you cannot take the admin role from your own account: ask another admin"),
        )
    assign_role(user, role)
    # Staff status comes with the admin role and goes with it (superusers keep theirs).
    if role != ADMIN and user.is_staff and not user.is_superuser:
        user.is_staff = False
        user.save(update_fields=["is_staff"])
    record_event(
        actor=actor,
        action="user.role_change",
        target=user,
        details={"username": user.username, "from": before, "to": role},
    )


@transaction.atomic
def set_active(*, actor: User | AnonymousUser | None, user: User, active: bool) -> None:
    """Deactivate (no log-in, no token) or reactivate an account; history stays attached to it."""
    _check_may_change(actor=actor, user=user)
    if not active:
        _check_not_self(
            actor=actor, user=user, refusal=gettext("you cannot deactivate your own account: ask another admin")
        )
    if user.is_active == active:
        return
    user.is_active = active
    user.save(update_fields=["is_active"])
    record_event(
        actor=actor,
        action="user.activate" if active else "user.deactivate",
        target=user,
        details={"username": user.username},
    )


@transaction.atomic
def reset_password(*, actor: User | AnonymousUser | None, user: User) -> str:
    """Give the account a new generated password, returned once to show to the admin.

    Refused for a directory account while directory sign-in is on: a local password would make it a
    local account, cut off from the directory's password and groups. With directory sign-in off, a
    new password is how such a person signs in again."""
    _check_may_change(actor=actor, user=user)
    if directory_sign_in_on() and from_directory(user):
        raise PeopleError(
            gettext("%(username)s signs in through the hospital directory, which keeps the password")
            % {"username": user.username}
        )
    password = generate_password()
    user.set_password(password)
    user.save(update_fields=["password"])
    record_event(actor=actor, action="user.password_reset", target=user, details={"username": user.username})
    return password
