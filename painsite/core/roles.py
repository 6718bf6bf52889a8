"""Roles are Django groups. Each role's permissions are listed here, in one place.

clinician < researcher < admin: each role holds the permissions of the one before it.
Admins are also staff (the Django admin) and hold every permission of the PainSite apps.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, Group, Permission, User
from django.utils.translation import gettext_lazy as _

from painsite.core.role_names import ADMIN, CLINICIAN, RESEARCHER, ROLES

# The group names are codes (forms and `create_user --role` use them); people read these.
ROLE_LABELS = {CLINICIAN: _("clinician"), RESEARCHER: _("researcher"), ADMIN: _("admin")}

CLINICIAN_PERMISSIONS = [
    "annotation.view_patient",
    "annotation.add_patient",
    "annotation.change_patient",
    "annotation.view_image",
    "annotation.add_image",
    "annotation.view_painlabel",
    "annotation.add_painlabel",
    # The labeling queue's order: clinicians see which order is in use, researchers choose it.
    "annotation.view_queuesettings",
    "modeling.view_assessment",
    "modeling.add_assessment",
    # The ward board and its alerts (/ward/).
    "modeling.view_camerasource",
    "modeling.acknowledge_wardalert",
]
RESEARCHER_PERMISSIONS = CLINICIAN_PERMISSIONS + [
    "annotation.export_labels",
    "annotation.change_queuesettings",
    "modeling.view_trainingrun",
    "modeling.add_trainingrun",
    "modeling.cancel_trainingrun",
    "modeling.view_modelversion",
    "modeling.view_promotionevent",
    "modeling.add_evaluation",
]
ADMIN_PERMISSIONS = RESEARCHER_PERMISSIONS + [
    "modeling.promote_modelversion",
    "core.view_auditevent",
    "core.change_adminnotice",
    # Bedside cameras of the ward board.
    "modeling.add_camerasource",
    "modeling.change_camerasource",
    "modeling.delete_camerasource",
    "annotation.view_withdrawn_images",
    # The People page (/people/): accounts and their roles. Never superuser status.
    "auth.view_user",
    "auth.add_user",
    "auth.change_user",
]
ROLE_PERMISSIONS: dict[str, list[str]] = {
    CLINICIAN: CLINICIAN_PERMISSIONS,
    RESEARCHER: RESEARCHER_PERMISSIONS,
    ADMIN: ADMIN_PERMISSIONS,
}


def _permissions(names: list[str]) -> list[Permission]:
    found = []
    for name in names:
        app_label, codename = name.split(".", 1)
        permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
        if permission is not None:
            found.append(permission)
    return found


def sync_role_groups(using: str = "default") -> None:
    """Create the role groups and give each exactly the permissions ROLE_PERMISSIONS lists."""
    for role, names in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.using(using).get_or_create(name=role)
        group.permissions.set(_permissions(names))


def role_of(user: User | AnonymousUser) -> str | None:
    """The highest role the user holds, or None for an outsider or anonymous user."""
    if not user.is_authenticated:
        return None
    names = {group.name for group in user.groups.all()}
    for role in reversed(ROLES):
        if role in names:
            return role
    return None


def assign_role(user: User, role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; valid roles: {', '.join(ROLES)}")
    user.groups.remove(*Group.objects.filter(name__in=ROLES))
    user.groups.add(Group.objects.get(name=role))
    if role == ADMIN and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
