"""Pages: the keyboard labeling queue, patients (list, detail, consent) and rater agreement."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotation import services
from annotation.agreement import agreement_report
from annotation.models import Cohort, Consent, Patient
from annotation.selectors import patient_timeline, patients_with_counts

CHART_WIDTH, CHART_HEIGHT = 720, 260
CHART_LEFT, CHART_RIGHT, CHART_TOP, CHART_BOTTOM = 44, 16, 12, 36


class PatientForm(forms.Form):
    code = forms.CharField(max_length=64, help_text="Pseudonymous code only, never a name.")
    cohort = forms.ChoiceField(choices=Cohort.choices)


@login_required
@permission_required("annotation.add_painlabel", raise_exception=True)
def label_page(request: HttpRequest) -> HttpResponse:
    return render(request, "annotation/label.html", {"nrs_values": range(11)})


@login_required
@permission_required("annotation.view_patient", raise_exception=True)
def patients_page(request: HttpRequest) -> HttpResponse:
    form = PatientForm()
    status = 200
    if request.method == "POST":
        if not request.user.has_perm("annotation.add_patient"):
            raise PermissionDenied
        form = PatientForm(request.POST)
        if form.is_valid():
            try:
                patient = services.create_patient(**form.cleaned_data, actor=request.user)
            except services.PatientError as error:
                form.add_error("code", str(error))
            else:
                messages.success(request, f"Patient {patient.code} created.")
                return redirect("patient-detail", code=patient.code)
        status = 422
    found = patients_with_counts()
    filters = {"cohort": request.GET.get("cohort", ""), "consent": request.GET.get("consent", "")}
    for field, value in filters.items():
        if value:
            found = found.filter(**{field: value})
    search = request.GET.get("q", "").strip()
    if search:
        found = found.filter(code__icontains=search)
    filters["q"] = search
    page = Paginator(found, 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "form": form,
        "filters": filters,
        "cohorts": Cohort.choices,
        "consents": Consent.choices,
    }
    return render(request, "annotation/patients.html", context, status=status)


@login_required
@permission_required("annotation.view_patient", raise_exception=True)
def patient_detail_page(request: HttpRequest, code: str) -> HttpResponse:
    patient = get_object_or_404(Patient, code=code)
    points = patient_timeline(patient)
    context = {"patient": patient, "points": points, "chart": _timeline_chart(points)}
    return render(request, "annotation/patient_detail.html", context)


@login_required
@permission_required("annotation.change_patient", raise_exception=True)
@require_POST
def patient_consent(request: HttpRequest, code: str) -> HttpResponse:
    patient = get_object_or_404(Patient, code=code)
    consent = request.POST.get("consent", "")
    try:
        services.set_consent(patient=patient, consent=consent, actor=request.user, reason=request.POST.get("reason", ""))
    except services.PatientError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Consent for {patient.code} is now {patient.get_consent_display().lower()}.")
    return redirect("patient-detail", code=patient.code)


@login_required
@permission_required("annotation.view_painlabel", raise_exception=True)
def agreement_page(request: HttpRequest) -> HttpResponse:
    return render(request, "annotation/agreement.html", {"report": agreement_report()})


def _timeline_chart(points: list[dict]) -> dict | None:
    """Pixel positions for the timeline SVG: time on x, NRS 0-10 on y."""
    if not points:
        return None
    plot_width = CHART_WIDTH - CHART_LEFT - CHART_RIGHT
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    start, end = points[0]["time"], points[-1]["time"]
    span = (end - start).total_seconds() or 1.0

    def x_of(time) -> float:
        if start == end:
            return CHART_LEFT + plot_width / 2
        return round(CHART_LEFT + plot_width * (time - start).total_seconds() / span, 1)

    def y_of(nrs: float) -> float:
        return round(CHART_TOP + plot_height * (1 - nrs / 10), 1)

    marks = []
    for point in points:
        mark = {**point, "x": x_of(point["time"])}
        if point["source"] == "model":
            if point["low"] is None:
                continue
            mark["y_top"], mark["y_bottom"] = y_of(point["high"]), y_of(point["low"])
            mark["y"] = round((mark["y_top"] + mark["y_bottom"]) / 2, 1)
        else:
            mark["y"] = y_of(point["nrs"])
        marks.append(mark)
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": CHART_LEFT,
        "right": CHART_WIDTH - CHART_RIGHT,
        "top": CHART_TOP,
        "bottom": CHART_HEIGHT - CHART_BOTTOM,
        "gridlines": [{"nrs": nrs, "y": y_of(nrs)} for nrs in (0, 2, 4, 6, 8, 10)],
        "start": start,
        "end": end,
        "marks": marks,
    }
