"""Which methods a route answers and which permissions each needs: one rule for pages and the API.

A view names every method it answers, each with the Django permissions it needs. Anything else
fails closed:
- a method the table does not name is refused (405), whoever asks, before the view runs;
- HEAD is answered only where GET is, and needs GET's permissions (Django and DRF answer HEAD
  with the GET handler, so an unchecked HEAD would run GET's code, audit events included);
- OPTIONS is answered only to a caller who may use at least one of the route's methods;
- a method listed with no permissions is a mistake caught when the view is defined, since it
  would let any account in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import wraps

from django.contrib.auth.models import AnonymousUser, User
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed

PermissionTable = Mapping[str, tuple[str, ...]]


class MethodNotInTable(Exception):
    """The route does not answer this method at all."""


def permission_table(by_method: Mapping[str, Iterable[str] | str]) -> PermissionTable:
    """Check and normalise `{"GET": [...], "POST": [...]}` once, when the view is defined."""
    table: dict[str, tuple[str, ...]] = {}
    for method, names in by_method.items():
        method = method.upper()
        if method in ("HEAD", "OPTIONS"):
            raise ValueError(f"{method} follows from the other methods and is not listed itself")
        names = (names,) if isinstance(names, str) else tuple(names)
        if not names:
            raise ValueError(f"{method} lists no permission: name the permission it needs")
        table[method] = names
    return table


def answered_methods(table: PermissionTable) -> list[str]:
    """What an Allow header names for this table."""
    methods = list(table)
    if "GET" in table:
        methods.append("HEAD")
    return methods + ["OPTIONS"]


def may_use(user: User | AnonymousUser, method: str, table: PermissionTable) -> bool:
    """Whether an authenticated `user` may send `method`; MethodNotInTable when nobody may."""
    if method == "OPTIONS":
        return any(user.has_perms(names) for names in table.values())
    looked_up = "GET" if method == "HEAD" else method
    if looked_up not in table:
        raise MethodNotInTable(method)
    return user.has_perms(table[looked_up])


def page_permissions(**by_method: Iterable[str] | str) -> Callable:
    """Decorator for page views: log-in, the permission table, then the view.

    `@page_permissions(GET=["annotation.view_patient"], POST=["annotation.add_patient"])`.
    An anonymous visitor is sent to the log-in page, a method outside the table gets 405, a
    user without the permissions 403; OPTIONS is answered here (with Allow) and never reaches
    the view.
    """
    table = permission_table(by_method)

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def checked(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            try:
                allowed = may_use(request.user, request.method, table)
            except MethodNotInTable:
                return HttpResponseNotAllowed(answered_methods(table))
            if not allowed:
                raise PermissionDenied
            if request.method == "OPTIONS":
                response = HttpResponse()
                response["Allow"] = ", ".join(answered_methods(table))
                return response
            return view(request, *args, **kwargs)

        checked.permission_table = table
        return checked

    return decorator
