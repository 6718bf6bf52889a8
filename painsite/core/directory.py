"""Sign-in with the hospital directory (LDAP), and the PainSite role that follows its groups.

At each directory sign-in the account's role is set from the directory groups the person is in
(PAINSITE_LDAP_ROLE_GROUPS): the highest role any of those groups maps to, since each role holds
every permission of the roles below it. Taken out of the group, the person loses the role at the
next sign-in (and staff status with the admin role); in no mapped group at all, the sign-in is
refused, so the hospital's whole staff cannot open accounts on a site holding patients' faces.
Every change of role is audited as `user.role_change` with `"source": "directory"`.

role_for_groups and apply_role_from_groups know nothing of LDAP: a single sign-on backend (OIDC,
SAML) passes them the groups from its claims or attributes (docs/deploy.md).

Local accounts (a password kept by PainSite, such as the first admin) are never signed in through
the directory, even when a directory entry has the same username: their own password decides.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import ldap
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils.translation import gettext
from django_auth_ldap.backend import LDAPBackend, ldap_error

from painsite.core.auth import note_sign_in_refusal
from painsite.core.directory_config import normalize_dn
from painsite.core.models import DirectoryAccount
from painsite.core.role_names import ADMIN, ROLES
from painsite.core.services import record_event

logger = logging.getLogger(__name__)


def no_role_message() -> str:
    return gettext(
        "Your directory account is in none of the hospital directory groups that give access to PainSite. "
        "Ask an administrator to add you to the right group."
    )


def unreachable_message() -> str:
    return gettext(
        "The hospital directory could not be asked about this account. Try again later, or ask an administrator."
    )


def inactive_message() -> str:
    return gettext("This account is deactivated. Ask an administrator.")


class DirectoryRefusal(Exception):
    """The directory accepted the password but PainSite refuses the sign-in; the message says why."""


def mapped_groups(groups: Iterable[str], role_groups: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """{role: [the person's groups that map to it]} for the roles any of their groups map to.
    Groups are compared as given: normalise both sides the same way first (normalize_dn)."""
    member_of = set(groups)
    found = {role: sorted(member_of.intersection(mapped)) for role, mapped in role_groups.items()}
    return {role: mapped for role, mapped in found.items() if mapped}


def role_for_groups(groups: Iterable[str], role_groups: Mapping[str, Sequence[str]]) -> str | None:
    """The highest role the groups map to, or None when none of them is mapped."""
    found = mapped_groups(groups, role_groups)
    return next((role for role in reversed(ROLES) if role in found), None)


@transaction.atomic
def apply_role_from_groups(
    *, user: User, groups: Iterable[str], role_groups: Mapping[str, Sequence[str]], source: str
) -> str | None:
    """Give an account exactly the role its groups map to (None: no role), with staff status for
    admins only, and audit a change, naming where the groups came from. Returns the role."""
    groups = list(groups)
    role = role_for_groups(groups, role_groups)
    held = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    staff = role == ADMIN or user.is_superuser
    if held == ({role} if role else set()) and user.is_staff == staff:
        return role
    before = next((name for name in reversed(ROLES) if name in held), None)
    user.groups.remove(*Group.objects.filter(name__in=ROLES))
    if role is not None:
        user.groups.add(Group.objects.get(name=role))
    if user.is_staff != staff:
        user.is_staff = staff
        user.save(update_fields=["is_staff"])
    record_event(
        actor=None,
        action="user.role_change",
        target=user,
        details={
            "username": user.username,
            "from": before,
            "to": role,
            "source": source,
            "groups": sorted(group for mapped in mapped_groups(groups, role_groups).values() for group in mapped),
        },
    )
    return role


class DirectoryBackend(LDAPBackend):
    """django-auth-ldap's backend with PainSite's rules: roles from PAINSITE_LDAP_ROLE_GROUPS,
    local accounts left to their own password, refusals that say why. Permissions come from the
    role groups (RolePermissionBackend), never from this backend."""

    def authenticate(self, request: HttpRequest | None, username=None, password=None, **kwargs) -> User | None:
        try:
            return super().authenticate(request, username=username, password=password, **kwargs)
        except DirectoryRefusal as refusal:
            note_sign_in_refusal(request, str(refusal))
            return None

    def get_or_build_user(self, username: str, ldap_user) -> tuple[User, bool]:
        # Runs once the directory has accepted the password, before the account is saved.
        user, built = super().get_or_build_user(username, ldap_user)
        if not built and user.has_usable_password():
            raise ldap_user.AuthenticationFailed("a local account has this username; its own password decides")
        if not built and not user.is_active:
            raise DirectoryRefusal(inactive_message())
        if built and role_for_groups(_group_dns(ldap_user), settings.PAINSITE_LDAP_ROLE_GROUPS) is None:
            # Never saved: no account for someone with nothing to do here.
            raise DirectoryRefusal(no_role_message())
        return user, built

    def authenticate_ldap_user(self, ldap_user, password: str) -> User | None:
        user = super().authenticate_ldap_user(ldap_user, password)
        if user is None:
            return None
        role = apply_role_from_groups(
            user=user,
            groups=_group_dns(ldap_user),
            role_groups=settings.PAINSITE_LDAP_ROLE_GROUPS,
            source="directory",
        )
        if role is None:
            raise DirectoryRefusal(no_role_message())
        DirectoryAccount.objects.update_or_create(user=user, defaults={"directory_dn": ldap_user.dn or ""})
        return user

    def get_user(self, user_id) -> User | None:
        # Django's ModelBackend signs a deactivated account out at its next request; so does this.
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None

    def has_perm(self, user, perm, obj=None) -> bool:
        return False

    def has_module_perms(self, user, app_label) -> bool:
        return False

    def get_all_permissions(self, user, obj=None) -> set[str]:
        return set()

    def get_group_permissions(self, user, obj=None) -> set[str]:
        return set()


def _group_dns(ldap_user) -> set[str]:
    try:
        return {normalize_dn(dn) for dn in ldap_user.group_dns}
    except ldap.LDAPError as error:
        # Reading no groups would take the person's role away: refuse instead, and change nothing.
        logger.error("Could not read the directory groups of %s: %s", ldap_user.dn, error)
        raise DirectoryRefusal(unreachable_message()) from None


@receiver(ldap_error, dispatch_uid="painsite-directory-unreachable")
def note_directory_unreachable(sender, context: str, user, request, exception, **kwargs) -> None:
    """The directory failed during a sign-in (down, timed out, refused PainSite's bind DN):
    django-auth-ldap logs it; the person is told the directory, not their password, failed."""
    if request is not None and context != "get_group_permissions":
        note_sign_in_refusal(request, unreachable_message())
