"""Which language a signed-in user sees: the one they chose, on every device they sign in from.

Anonymous visitors get their browser's language (Accept-Language) or the selector's cookie, as
Django's LocaleMiddleware decides. A signed-in user's choice is saved to their account; at sign-in
it is copied into the session, and UserLanguageMiddleware applies it to every request of that
session, so it wins over a browser that asks for another language.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.sessions.backends.base import SessionBase

from painsite.core.models import LanguagePreference

SESSION_KEY = "painsite_language"


def is_offered(language: str | None) -> bool:
    return language in dict(settings.LANGUAGES)


def save_language_preference(*, user: AbstractBaseUser, language: str, session: SessionBase | None = None) -> None:
    """Keep `language` as the user's choice (and for the rest of this session)."""
    if not is_offered(language):
        raise ValueError(f"language {language!r} is not offered; valid options: {', '.join(dict(settings.LANGUAGES))}")
    LanguagePreference.objects.update_or_create(user=user, defaults={"language": language})
    if session is not None:
        session[SESSION_KEY] = language


def preferred_language(user: AbstractBaseUser | AnonymousUser) -> str | None:
    """The user's saved choice, or None (never chosen, or no longer offered)."""
    if not user.is_authenticated:
        return None
    language = LanguagePreference.objects.filter(user=user).values_list("language", flat=True).first()
    return language if is_offered(language) else None


def apply_preference_at_sign_in(sender, request, user, **kwargs) -> None:
    """user_logged_in receiver: the session speaks the user's saved language from now on."""
    language = preferred_language(user)
    if language is not None and request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = language


def session_language(session: SessionBase | None) -> str | None:
    language = session.get(SESSION_KEY) if session is not None else None
    return language if is_offered(language) else None
