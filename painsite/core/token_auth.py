"""API token authentication that reads the user and their permissions in one query.

Every API request authenticates and then checks permissions. DRF's TokenAuthentication reads the
token with its user, and Django's permission check then reads the user's own and their role's
permissions: two ORM queries built and compiled on every request. The labeling queue makes two
requests per image, so here one hand-written query answers both, and the permissions it read
are what ModelBackend would cache on the user for the rest of the request.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Field
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token


@cache
def _user_columns() -> list[str]:
    return [field.attname for field in User._meta.concrete_fields]


def _python_values(fields: list[Field], values: list[Any]) -> list[Any]:
    """Values from a hand-written query as the ORM would return them (e.g. aware datetimes on SQLite)."""
    converted = []
    for field, value in zip(fields, values):
        column = field.get_col(field.model._meta.db_table)
        for converter in connection.ops.get_db_converters(column) + column.get_db_converters(connection):
            value = converter(value, column, connection)
        converted.append(value)
    return converted


@cache
def _token_query() -> str:
    """Token, user and granted permissions: one row per permission (one row with NULLs for none)."""
    user_table = User._meta.db_table
    user_permissions = User.user_permissions.through._meta.db_table
    user_groups = User.groups.through._meta.db_table
    group_permissions = Group.permissions.through._meta.db_table
    columns = ", ".join(f'u."{User._meta.get_field(name).column}"' for name in _user_columns())
    return f"""
        SELECT t."created", {columns}, ct."app_label", p."codename"
        FROM "{Token._meta.db_table}" t
        JOIN "{user_table}" u ON u."id" = t."user_id"
        LEFT JOIN (
            SELECT up."user_id", up."permission_id" FROM "{user_permissions}" up
            UNION
            SELECT ug."user_id", gp."permission_id"
            FROM "{user_groups}" ug JOIN "{group_permissions}" gp ON gp."group_id" = ug."group_id"
        ) granted ON granted."user_id" = u."id"
        LEFT JOIN "{Permission._meta.db_table}" p ON p."id" = granted."permission_id"
        LEFT JOIN "{ContentType._meta.db_table}" ct ON ct."id" = p."content_type_id"
        WHERE t."key" = %s
    """


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`, as DRF's, answered by a single query."""

    def authenticate_credentials(self, key: str) -> tuple[User, Token]:
        with connection.cursor() as cursor:
            cursor.execute(_token_query(), [key])
            rows = cursor.fetchall()
        if not rows:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        names = _user_columns()
        fields = [Token._meta.get_field("created")] + [User._meta.get_field(name) for name in names]
        created, *user_values = _python_values(fields, list(rows[0][: len(fields)]))
        user = User.from_db(connection.alias, names, user_values)
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        if not user.is_superuser:
            user._perm_cache = {f"{row[-2]}.{row[-1]}" for row in rows if row[-1] is not None}
        token = Token.from_db(connection.alias, ["key", "user_id", "created"], [key, user.pk, created])
        return user, token
