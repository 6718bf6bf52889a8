"""API plumbing shared by every app: error shape and role-based permissions."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext
from drf_spectacular.utils import inline_serializer
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from painsite.core.permissions import MethodNotInTable, PermissionTable, may_use, permission_table

# The body of every API error, for the OpenAPI schema.
ERROR_SCHEMA = inline_serializer("Error", {"error": serializers.CharField(), "details": serializers.JSONField()})


def paginated_schema(serializer_class, name: str):
    """The schema of one page of a list: what PageNumberPagination answers, not a bare array."""
    return inline_serializer(
        name,
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )


def error_response(message: str, *, status_code: int = 400, details: Any = None) -> Response:
    return Response({"error": message, "details": details}, status=status_code)


def exception_handler(exc, context):
    """Every API error is `{"error": "...", "details": ...}` with its 4xx status."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and set(data) == {"detail"}:
        response.data = {"error": str(data["detail"]), "details": None}
    elif isinstance(data, dict) and "error" in data:
        pass
    else:
        response.data = {"error": _summary(data), "details": data}
    return response


def _summary(data: Any) -> str:
    if isinstance(data, dict):
        field, problems = next(iter(data.items()), ("", ""))
        problem = problems[0] if isinstance(problems, list) and problems else problems
        if field == "non_field_errors":
            return str(problem)
        return f"{field}: {problem}"
    if isinstance(data, list) and data:
        return str(data[0])
    return gettext("invalid request")


class HasPermission(permissions.BasePermission):
    """Allow a request when the user holds every Django permission the view lists for its method.

    Views set `required_permissions = {"GET": [...], "POST": [...]}`. The rules of
    painsite.core.permissions apply: a method not listed is refused with 405 (HEAD follows GET,
    OPTIONS is for whoever may use a listed method), an anonymous caller gets 401 and an
    authenticated one without the permissions 403.
    """

    def table(self, view) -> PermissionTable:
        return permission_table(getattr(view, "required_permissions", {}))

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        try:
            return may_use(request.user, request.method, self.table(view))
        except MethodNotInTable:
            raise exceptions.MethodNotAllowed(request.method) from None


def permission_classes_for(**by_method: list[str]):
    """Shortcut used by function API views: @permission_classes(permission_classes_for(GET=[...]))."""
    table = permission_table(by_method)

    class _Required(HasPermission):
        def table(self, view) -> PermissionTable:
            return table

    return [_Required]


__all__ = [
    "ERROR_SCHEMA",
    "paginated_schema",
    "error_response",
    "exception_handler",
    "HasPermission",
    "permission_classes_for",
    "status",
]
