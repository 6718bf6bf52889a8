"""The language selector's POST: Django's set_language, and a signed-in user's choice saved."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views import View
from django.views.i18n import set_language

from painsite.core.languages import is_offered, save_language_preference


class SetLanguage(View):
    """Anyone may choose a language (the log-in page has the selector too).

    Django's own set_language answers every method; this route answers only POST (and OPTIONS),
    like every other route of the site.
    """

    http_method_names = ["post", "options"]

    def post(self, request: HttpRequest) -> HttpResponse:
        response = set_language(request)
        language = request.POST.get("language")
        if request.user.is_authenticated and is_offered(language):
            save_language_preference(user=request.user, language=language, session=request.session)
        return response
