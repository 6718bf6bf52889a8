from __future__ import annotations

import errno
import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)


class ContentSecurityPolicyMiddleware:
    """Send the Content-Security-Policy header: scripts only from our own static files (no inline
    script, no eval), nothing framed, forms and fetches only to this site. Camera frames are
    blob:/mediastream: URLs, images may be data: URLs (heatmap overlays)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = settings.PAINSITE_CONTENT_SECURITY_POLICY

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.policy)
        response.headers.setdefault("Permissions-Policy", "camera=(self), microphone=(), geolocation=()")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response


class DatabaseUnavailableMiddleware:
    """Answer 503 (with Retry-After) instead of 500 when the database cannot be reached, e.g.
    while PostgreSQL restarts: the client knows to retry and nothing was acknowledged."""

    RETRY_AFTER_SECONDS = 5

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from django.db import InterfaceError, OperationalError, connection
        from django.http import JsonResponse

        if not isinstance(exception, (OperationalError, InterfaceError)) or not _database_is_down(exception):
            return None
        # Drop the broken connection so the next request opens a fresh one.
        connection.close_if_unusable_or_obsolete()
        message = "The database is unavailable right now; nothing was saved. Please retry in a few seconds."
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse({"error": message, "details": None}, status=503)
        else:
            response = HttpResponse(
                f"<!doctype html><title>Temporarily unavailable</title><h1>Temporarily unavailable</h1><p>{message}</p>",
                status=503,
            )
        response["Retry-After"] = str(self.RETRY_AFTER_SECONDS)
        return response


def _database_is_down(exception: Exception) -> bool:
    """Connection-level failures only: a locked SQLite table or a bad query stays a 500."""
    text = str(exception).lower()
    signs = ("connection", "could not connect", "server closed", "terminating", "shutting down", "connection refused")
    return any(sign in text for sign in signs)


class StorageUnavailableMiddleware:
    """Answer 507 (Insufficient Storage) instead of 500 when the media store cannot be written: the
    disk is full, over quota or read-only. Intake removes what it wrote before the error reaches
    here, so the client is told plainly that nothing was saved."""

    REASONS = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk full", errno.EROFS: "read-only"}

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from django.http import JsonResponse

        reason = self.REASONS.get(getattr(exception, "errno", None)) if isinstance(exception, OSError) else None
        if reason is None:
            return None
        logger.error("storage cannot be written (%s): %s", reason, exception)
        message = f"The image store cannot be written right now ({reason}); nothing was saved. Tell your administrator."
        if request.path.startswith("/api/"):
            return JsonResponse({"error": message, "details": {"reason": reason}}, status=507)
        return HttpResponse(
            f"<!doctype html><title>Storage unavailable</title><h1>Storage unavailable</h1><p>{message}</p>", status=507
        )
