"""The dashboard: the state of both apps at a glance.

It reads annotation's and modeling's records, so it sits above both, beside the URL conf; the
core app below them knows neither.
"""

from __future__ import annotations

from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext

from annotation.models import Image, Patient
from modeling import drift, retrain_policy
from modeling.backbone_weights import backbone_status
from modeling.models import GateDecision, ModelVersion, Stage
from painsite.core.notices import open_notices
from painsite.core.permissions import page_permissions
from painsite.core.roles import ADMIN, RESEARCHER, role_of


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


# The drift report reads the production model's test predictions: computed at most once a minute.
DRIFT_CACHE_SECONDS = 60


def learning_loop_status() -> dict[str, object]:
    """The retrain policy, the newest gate verdict and the drift watch, for researchers and admins."""
    report = cache.get("painsite:dashboard:drift")
    if report is None:
        report = drift.drift_report()
        cache.set("painsite:dashboard:drift", report, DRIFT_CACHE_SECONDS)
    return {
        "policy": retrain_policy.policy_in_force(),
        "policy_state": retrain_policy.policy_state(),
        "decision": GateDecision.objects.select_related("challenger").first(),
        "drift": report,
    }


@page_permissions(GET="annotation.view_patient")
def dashboard(request: HttpRequest) -> HttpResponse:
    role = role_of(request.user)
    if role is None:
        raise PermissionDenied(gettext("Your account has no role yet."))
    # Admins install the weights, so they see whether training would fall back to random init.
    backbone = backbone_status() if role == ADMIN else None
    context = {
        "counts": dashboard_counts(),
        "backbone": backbone,
        "notices": list(open_notices()[:10]) if role == ADMIN else [],
        "loop": learning_loop_status() if role in (RESEARCHER, ADMIN) else None,
    }
    return render(request, "core/dashboard.html", context)
