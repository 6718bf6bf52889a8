"""The patient page: consent, and the timeline of scores and model assessments.

It shows both apps' records, so it lives in the higher one (annotation keeps the patients list and
the consent form it posts to).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from annotation.image_access import may_view_patient_data
from annotation.models import Patient
from modeling.patient_timeline import patient_timeline, timeline_spec
from painsite.core.permissions import page_permissions


@page_permissions(GET="annotation.view_patient")
def patient_detail_page(request: HttpRequest, code: str) -> HttpResponse:
    patient = get_object_or_404(Patient, code=code)
    points = patient_timeline(patient, viewer=request.user)
    context = {
        "patient": patient,
        "points": points,
        "chart": timeline_spec(points, patient_code=patient.code),
        "data_shown": may_view_patient_data(request.user, patient),
    }
    return render(request, "modeling/patient_detail.html", context)
