"""API token authentication: DRF's `Authorization: Token <key>`, with a hint for Bearer clients.

The token is read with its user on every request, and permissions are read afresh for each
request (painsite.core.auth.RolePermissionBackend), so a revoked token, a deactivated account or
a removed role counts from the next request on.
"""

from __future__ import annotations

from rest_framework import authentication, exceptions


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate(self, request):
        scheme = authentication.get_authorization_header(request).split()[:1]
        if scheme and scheme[0].lower() == b"bearer":
            # Many HTTP clients send OAuth-style Bearer tokens by default; say what is expected
            # instead of answering as if no credentials had been sent.
            raise exceptions.AuthenticationFailed(
                "Bearer tokens are not accepted: send the API token as 'Authorization: Token <key>'."
            )
        return super().authenticate(request)
