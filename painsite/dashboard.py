"""The dashboard: the state of both apps at a glance.

It reads annotation's and modeling's records, so it sits above both, beside the URL conf; the
core app below them knows neither.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext

from annotation.models import Image, Patient
from modeling.models import ModelVersion, Stage
from painsite.core.permissions import page_permissions
from painsite.core.roles import role_of


def dashboard_counts() -> dict[str, object]:
    """The state of the platform at a glance, in a handful of queries."""
    images = Image.objects.aggregate(total=Count("id"), labeled=Count("id", filter=Q(label_count__gt=0)))
    return {
        "patients": Patient.objects.count(),
        "images": images["total"],
        "labeled": images["labeled"],
        "unlabeled": images["total"] - images["labeled"],
        "model_versions": ModelVersion.objects.count(),
        "production_model": ModelVersion.objects.filter(stage=Stage.PRODUCTION).first(),
    }


@page_permissions(GET="annotation.view_patient")
def dashboard(request: HttpRequest) -> HttpResponse:
    if role_of(request.user) is None:
        raise PermissionDenied(gettext("Your account has no role yet."))
    return render(request, "core/dashboard.html", {"counts": dashboard_counts()})
