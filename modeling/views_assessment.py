"""Pages for the clinical end: assess one photo (/assess/) and watch one patient live (/monitor/).

Both pages only render; the browser sends each image to POST /api/assessments/.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotation.models import Patient
from modeling.inference import production_version
from modeling.models import ModelVersion, Stage
from painsite.core.permissions import page_permissions


def _page_context(request: HttpRequest) -> dict[str, object]:
    can_choose_version = request.user.has_perm("modeling.view_modelversion")
    return {
        "production": production_version(),
        "patients": Patient.objects.consented().only("code"),
        "selected_patient": request.GET.get("patient", ""),
        "can_choose_version": can_choose_version,
        "versions": ModelVersion.objects.exclude(stage=Stage.ARCHIVED).only("id", "name", "stage")
        if can_choose_version
        else [],
        "alert_threshold": settings.PAINSITE_SEVERE_ALERT_THRESHOLD,
        "can_add_label": request.user.has_perm("annotation.add_painlabel"),
    }


@page_permissions(GET="modeling.add_assessment")
def assess_page(request: HttpRequest) -> HttpResponse:
    return render(request, "modeling/assess.html", _page_context(request))


@page_permissions(GET="modeling.add_assessment")
def monitor_page(request: HttpRequest) -> HttpResponse:
    context = _page_context(request)
    context["interval_seconds"] = settings.PAINSITE_MONITOR_INTERVAL_SECONDS
    context["alert_consecutive"] = settings.PAINSITE_MONITOR_ALERT_CONSECUTIVE
    return render(request, "modeling/monitor.html", context)
