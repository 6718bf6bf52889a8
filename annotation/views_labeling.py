"""Pages: the keyboard labeling queue, patients (list, detail, consent) and rater agreement."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from annotation import services
from annotation.agreement import agreement_report
from annotation.models import Cohort, Consent, Patient, QueueOrder, UncertaintyMeasure
from annotation.queue_order import QueueOrderError, set_queue_order
from annotation.selectors import patients_with_counts
from painsite.core.permissions import page_permissions


class PatientForm(forms.Form):
    code = forms.CharField(label=_("Code"), max_length=64, help_text=_("Pseudonymous code only, never a name."))
    cohort = forms.ChoiceField(label=_("Cohort"), choices=Cohort.choices)


class QueueOrderForm(forms.Form):
    order = forms.ChoiceField(choices=QueueOrder.choices, label=_("Order of never-labeled images"))
    uncertainty_measure = forms.ChoiceField(
        choices=UncertaintyMeasure.choices,
        label=_("Uncertainty measure"),
        help_text=_("Used by the uncertainty order."),
    )


@page_permissions(POST="annotation.change_queuesettings")
def queue_order_change(request: HttpRequest) -> HttpResponse:
    """The queue order form (on the training page): back to the page it was sent from."""
    form = QueueOrderForm(request.POST)
    if form.is_valid():
        try:
            setting = set_queue_order(actor=request.user, **form.cleaned_data)
        except QueueOrderError as error:
            messages.error(request, str(error))
        else:
            messages.success(
                request,
                gettext("The labeling queue now orders never-labeled images by %(order)s.")
                % {"order": QueueOrder(setting.order).label},
            )
    else:
        messages.error(
            request,
            gettext("The queue order was not changed: %(problems)s")
            % {"problems": "; ".join(str(p) for problems in form.errors.values() for p in problems)},
        )
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        target = reverse("label")
    return redirect(target)


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
