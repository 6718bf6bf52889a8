"""Sign-in with the hospital directory (LDAP): django-auth-ldap's settings from the environment.

settings.py imports this module only when PAINSITE_LDAP_SERVER_URI is set, so a site without
LDAP needs neither python-ldap nor django-auth-ldap (requirements-ldap.txt). Every variable is
described in docs/deploy.md, "Sign-in with the hospital directory (LDAP)".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

try:
    import ldap
    import ldap.dn
    from django_auth_ldap import config as ldap_config
except ImportError as error:  # pragma: no cover - depends on what is installed
    raise ImproperlyConfigured(
        "PAINSITE_LDAP_SERVER_URI is set but python-ldap or django-auth-ldap is missing: "
        "pip install -r requirements-ldap.txt (it builds python-ldap against libldap-dev and libsasl2-dev)"
    ) from error

from painsite.core.role_names import ROLES

# PAINSITE_LDAP_GROUP_TYPE: how the directory records membership, and the object class its
# groups carry (the default group search filter).
GROUP_TYPES: dict[str, tuple[type[ldap_config.LDAPGroupType], str]] = {
    "groupOfNames": (ldap_config.GroupOfNamesType, "(objectClass=groupOfNames)"),
    "nestedGroupOfNames": (ldap_config.NestedGroupOfNamesType, "(objectClass=groupOfNames)"),
    "groupOfUniqueNames": (ldap_config.GroupOfUniqueNamesType, "(objectClass=groupOfUniqueNames)"),
    "nestedGroupOfUniqueNames": (ldap_config.NestedGroupOfUniqueNamesType, "(objectClass=groupOfUniqueNames)"),
    "activeDirectory": (ldap_config.ActiveDirectoryGroupType, "(objectClass=group)"),
    "nestedActiveDirectory": (ldap_config.NestedActiveDirectoryGroupType, "(objectClass=group)"),
    "posixGroup": (ldap_config.PosixGroupType, "(objectClass=posixGroup)"),
}


def normalize_dn(dn: str) -> str:
    """One spelling per DN: lower case, no spaces around separators, as the directory's answers
    are compared (django-auth-ldap lower-cases the DNs it reads)."""
    try:
        return ldap.dn.dn2str(ldap.dn.str2dn(dn.strip().lower()))
    except ldap.DECODING_ERROR:
        raise ImproperlyConfigured(
            f"{dn!r} is not a distinguished name (like cn=pain-clinicians,dc=example,dc=org)"
        ) from None


def parse_role_groups(text: str) -> dict[str, tuple[str, ...]]:
    """PAINSITE_LDAP_ROLE_GROUPS -> {role: (group DN, ...)}.

    Entries are `role=group DN`, separated by semicolons or new lines; a role may be listed
    more than once to map several groups to it. Only the first `=` separates the role, so the
    DN keeps its own.
    """
    mapping: dict[str, list[str]] = {}
    entries = [entry.strip() for line in text.splitlines() for entry in line.split(";")]
    for entry in filter(None, entries):
        role, separator, dn = entry.partition("=")
        role = role.strip()
        if not separator or not dn.strip():
            raise ImproperlyConfigured(
                f"PAINSITE_LDAP_ROLE_GROUPS entry {entry!r} is not role=group DN "
                "(like clinician=cn=pain-clinicians,ou=groups,dc=example,dc=org)"
            )
        if role not in ROLES:
            raise ImproperlyConfigured(
                f"PAINSITE_LDAP_ROLE_GROUPS names role {role!r}; valid roles: {', '.join(ROLES)}"
            )
        mapping.setdefault(role, []).append(normalize_dn(dn))
    if not mapping:
        raise ImproperlyConfigured(
            "PAINSITE_LDAP_ROLE_GROUPS is empty: with no directory group mapped to a role, nobody could sign in"
        )
    return {role: tuple(dns) for role, dns in mapping.items()}


def _required(environ: Mapping[str, str], name: str, example: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"PAINSITE_LDAP_SERVER_URI is set, so {name} is required (like {example})")
    return value


def directory_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    """The AUTH_LDAP_* settings and PAINSITE_LDAP_ROLE_GROUPS for the PAINSITE_LDAP_* variables."""
    group_type_name = environ.get("PAINSITE_LDAP_GROUP_TYPE", "groupOfNames").strip()
    if group_type_name not in GROUP_TYPES:
        raise ImproperlyConfigured(
            f"PAINSITE_LDAP_GROUP_TYPE={group_type_name!r}; valid types: {', '.join(GROUP_TYPES)}"
        )
    group_type, group_filter = GROUP_TYPES[group_type_name]
    user_filter = environ.get("PAINSITE_LDAP_USER_FILTER", "(uid=%(user)s)").strip()
    if "%(user)s" not in user_filter:
        raise ImproperlyConfigured(
            f"PAINSITE_LDAP_USER_FILTER={user_filter!r} must contain %(user)s, where the username goes"
        )
    timeout = int(environ.get("PAINSITE_LDAP_TIMEOUT_SECONDS", "10"))
    return {
        "AUTH_LDAP_SERVER_URI": environ["PAINSITE_LDAP_SERVER_URI"].strip(),
        "AUTH_LDAP_START_TLS": environ.get("PAINSITE_LDAP_START_TLS", "0").strip().lower()
        in ("1", "true", "yes", "on"),
        # Empty: an anonymous bind for the user search.
        "AUTH_LDAP_BIND_DN": environ.get("PAINSITE_LDAP_BIND_DN", "").strip(),
        "AUTH_LDAP_BIND_PASSWORD": environ.get("PAINSITE_LDAP_BIND_PASSWORD", ""),
        "AUTH_LDAP_USER_SEARCH": ldap_config.LDAPSearch(
            _required(environ, "PAINSITE_LDAP_USER_SEARCH_BASE", "ou=people,dc=example,dc=org"),
            ldap.SCOPE_SUBTREE,
            user_filter,
        ),
        "AUTH_LDAP_GROUP_SEARCH": ldap_config.LDAPSearch(
            _required(environ, "PAINSITE_LDAP_GROUP_SEARCH_BASE", "ou=groups,dc=example,dc=org"),
            ldap.SCOPE_SUBTREE,
            environ.get("PAINSITE_LDAP_GROUP_FILTER", "").strip() or group_filter,
        ),
        "AUTH_LDAP_GROUP_TYPE": group_type(),
        "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        # Read the groups afresh at each sign-in: a role taken away in the directory goes at the
        # next sign-in, not after a cache expires.
        "AUTH_LDAP_CACHE_TIMEOUT": 0,
        # A directory that does not answer must not hang the log-in page (local accounts still work).
        "AUTH_LDAP_CONNECTION_OPTIONS": {ldap.OPT_NETWORK_TIMEOUT: timeout, ldap.OPT_TIMEOUT: timeout},
        "PAINSITE_LDAP_ROLE_GROUPS": parse_role_groups(
            _required(environ, "PAINSITE_LDAP_ROLE_GROUPS", "clinician=cn=pain-clinicians,ou=groups,dc=example,dc=org")
        ),
    }
