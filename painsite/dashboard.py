"""The dashboard: the state of both apps at a glance.

It reads annotation's and modeling's records, so it sits above both, beside the URL conf; the
core app below them knows neither.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotation.models import Image, Patient
from modeling.backbone_weights import backbone_status
from modeling.models import ModelVersion, Stage
from painsite.core.permissions import page_permissions
from painsite.core.roles import ADMIN, role_of


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
    role = role_of(request.user)
    if role is None:
        raise PermissionDenied("Your account has no role yet.")
    # Admins install the weights, so they see whether training would fall back to random init.
    backbone = backbone_status() if role == ADMIN else None
    return render(request, "core/dashboard.html", {"counts": dashboard_counts(), "backbone": backbone})
