"""API request rates (DRF throttles): what a single account or address may ask for per period.

Each rate is a setting from the environment (PAINSITE_THROTTLE_*), read when a request comes,
so tests and deployments can set their own. Over the rate, DRF answers 429 with Retry-After.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class _RateFromSettings(SimpleRateThrottle):
    # Only the requests that cost something: listing uploads is not uploading.
    methods = ("POST",)

    def get_rate(self) -> str:
        return settings.PAINSITE_THROTTLE_RATES[self.scope]

    def allow_request(self, request, view) -> bool:
        if request.method not in self.methods:
            return True
        return super().allow_request(request, view)


class PerUserThrottle(_RateFromSettings):
    """Counted per account (views behind it require one)."""

    def get_cache_key(self, request, view) -> str | None:
        if not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class PerAddressThrottle(_RateFromSettings):
    """Counted per client address, whoever is asking."""

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AssessmentThrottle(PerUserThrottle):
    # Each assessment runs VGG16: a few seconds of CPU that one account should not monopolise.
    scope = "assessments"


class UploadThrottle(PerUserThrottle):
    scope = "uploads"


class TokenRequestThrottle(PerAddressThrottle):
    # Password guessing through the API: the log-in lockout counts per username and address,
    # this caps how many usernames one address may try.
    scope = "token"
