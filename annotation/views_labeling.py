"""Pages: the keyboard labeling queue, patients (list, detail, consent) and rater agreement."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from annotation import services
from annotation.agreement import agreement_report
from annotation.models import Cohort, Consent, Patient
from annotation.selectors import patients_with_counts
from painsite.core.permissions import page_permissions


class PatientForm(forms.Form):
    code = forms.CharField(label=_("Code"), max_length=64, help_text=_("Pseudonymous code only, never a name."))
    cohort = forms.ChoiceField(label=_("Cohort"), choices=Cohort.choices)


@page_permissions(GET="annotation.add_painlabel")
def label_page(request: HttpRequest) -> HttpResponse:
    return render(request, "annotation/label.html", {"nrs_values": range(11)})


@page_permissions(GET="annotation.view_patient", POST="annotation.add_patient")
def patients_page(request: HttpRequest) -> HttpResponse:
    form = PatientForm()
    status = 200
    if request.method == "POST":
        form = PatientForm(request.POST)
        if form.is_valid():
            try:
                patient = services.create_patient(**form.cleaned_data, actor=request.user)
            except services.PatientError as error:
                form.add_error("code", str(error))
            else:
                messages.success(request, gettext("Patient %(code)s created.") % {"code": patient.code})
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


@page_permissions(POST="annotation.change_patient")
def patient_consent(request: HttpRequest, code: str) -> HttpResponse:
    patient = get_object_or_404(Patient, code=code)
    consent = request.POST.get("consent", "")
    try:
        services.set_consent(
            patient=patient, consent=consent, actor=request.user, reason=request.POST.get("reason", "")
        )
    except services.PatientError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            gettext("Consent for %(code)s is now %(consent)s.")
            % {"code": patient.code, "consent": patient.get_consent_display().lower()},
        )
    return redirect("patient-detail", code=patient.code)


@page_permissions(GET="annotation.view_painlabel")
def agreement_page(request: HttpRequest) -> HttpResponse:
    return render(request, "annotation/agreement.html", {"report": agreement_report()})
