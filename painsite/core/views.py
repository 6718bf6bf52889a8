from __future__ import annotations

from datetime import datetime, time

from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.utils import timezone
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularSwaggerSplitView

from painsite.core.models import AuditEvent
from painsite.core.permissions import page_permissions


class Favicon(RedirectView):
    """Pages that do not use base.html (the Django admin, the API docs) ask for /favicon.ico."""

    permanent = True
    http_method_names = ["get", "head", "options"]

    def get_redirect_url(self, *args, **kwargs) -> str:
        # Resolved per request: with the production manifest storage the hashed name exists only
        # after collectstatic.
        return static("favicon.svg")


_swagger_ui = SpectacularSwaggerSplitView.as_view(url_name="api-schema")


# Every role holds annotation.view_patient: the docs are for clinicians, researchers and admins,
# hidden from accounts without a role, and anonymous visitors are sent to log in (a page).
@page_permissions(GET="annotation.view_patient")
def api_docs(request: HttpRequest) -> HttpResponse:
    """The interactive API documentation."""
    return _swagger_ui(request)


def _parse_day(value: str | None) -> datetime | None:
    try:
        day = datetime.strptime(value or "", "%Y-%m-%d").date()
    except ValueError:
        return None
    return timezone.make_aware(datetime.combine(day, time.min))


@page_permissions(GET="core.view_auditevent")
def audit_log(request: HttpRequest) -> HttpResponse:
    events = AuditEvent.objects.all()
    user_filter = request.GET.get("user", "")
    action_filter = request.GET.get("action", "")
    if user_filter:
        events = events.filter(actor_username=user_filter)
    if action_filter:
        events = events.filter(action=action_filter)
    since = _parse_day(request.GET.get("since"))
    until = _parse_day(request.GET.get("until"))
    if since:
        events = events.filter(created_at__gte=since)
    if until:
        events = events.filter(created_at__lt=until + timezone.timedelta(days=1))
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "actions": AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct(),
        "usernames": User.objects.order_by("username").values_list("username", flat=True),
        "filters": {
            "user": user_filter,
            "action": action_filter,
            "since": request.GET.get("since", ""),
            "until": request.GET.get("until", ""),
        },
    }
    return render(request, "core/audit.html", context)
