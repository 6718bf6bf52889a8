from __future__ import annotations

from django.http import HttpRequest

from painsite.core.roles import ROLE_LABELS, role_of


def roles(request: HttpRequest) -> dict[str, object]:
    """The user's role, for navigation. Permission checks happen in the views, not here."""
    user = getattr(request, "user", None)
    role = role_of(user) if user is not None else None
    return {"user_role": role, "user_role_label": ROLE_LABELS.get(role, role)}
