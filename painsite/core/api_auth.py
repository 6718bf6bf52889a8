from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from painsite.core.api import error_response
from painsite.core.auth import is_locked_out, lockout_message, sign_in_refusal
from painsite.core.services import record_event
from painsite.core.throttles import TokenRequestThrottle


class TokenView(ObtainAuthToken):
    """POST {username, password} -> {token}; DELETE revokes the token the request used."""

    throttle_classes = [TokenRequestThrottle]

    def get_permissions(self):
        return [IsAuthenticated()] if self.request.method == "DELETE" else [AllowAny()]

    def post(self, request: Request, *args, **kwargs) -> Response:
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            if not is_locked_out(request):
                if refusal := sign_in_refusal(request):
                    raise ValidationError({"non_field_errors": [refusal]}) from None
                raise
        response = error_response(lockout_message(), status_code=status.HTTP_429_TOO_MANY_REQUESTS)
        response["Retry-After"] = str(settings.PAINSITE_LOGIN_LOCKOUT_SECONDS)
        return response

    @extend_schema(responses={204: None}, summary="Revoke the caller's API token")
    def delete(self, request: Request) -> Response:
        deleted, _ = Token.objects.filter(user=request.user).delete()
        record_event(
            actor=request.user, action="auth.token.revoke", target=request.user, details={"revoked": bool(deleted)}
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
