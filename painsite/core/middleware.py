from __future__ import annotations

import errno
import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.translation import gettext

from painsite.core.languages import session_language

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


class UserLanguageMiddleware:
    """A signed-in user's saved language (copied into the session at sign-in) wins over the one
    LocaleMiddleware took from the browser. The language cookie follows it, so the log-in page
    after signing out, and the JavaScript catalog, speak the same language."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Signing out flushes the session, so only a signed-in session holds a language.
        language = session_language(getattr(request, "session", None))
        if language is not None:
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        if language is not None and request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != language:
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                language,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                path=settings.LANGUAGE_COOKIE_PATH,
                domain=settings.LANGUAGE_COOKIE_DOMAIN,
                secure=settings.LANGUAGE_COOKIE_SECURE,
                httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            )
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
        message = gettext("The database is unavailable right now; nothing was saved. Please retry in a few seconds.")
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse({"error": message, "details": None}, status=503)
        else:
            title = gettext("Temporarily unavailable")
            response = HttpResponse(
                f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{message}</p>",
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

    # Machine codes: the API's details carry them as they are; the page and the message translate.
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
        shown_reason = gettext("disk full") if reason == "disk full" else gettext("read-only")
        message = gettext(
            "The image store cannot be written right now (%(reason)s); nothing was saved. Tell your administrator."
        ) % {"reason": shown_reason}
        if request.path.startswith("/api/"):
            return JsonResponse({"error": message, "details": {"reason": reason}}, status=507)
        title = gettext("Storage unavailable")
        return HttpResponse(f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{message}</p>", status=507)
