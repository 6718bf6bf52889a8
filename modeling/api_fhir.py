"""FHIR R4 export: a patient's pain scores and model assessments for a hospital's record.

Read-only, for the people who may export labels (token or session auth, as the rest of the API).
Every answer is `application/fhir+json`, errors included (an OperationOutcome), whatever the
client's Accept header says. The mapping is modeling/fhir.py; docs/deploy.md, "FHIR R4".
"""

from __future__ import annotations

from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Patient
from modeling.fhir import observation_search_bundle, operation_outcome, patient_everything_bundle
from painsite.core.api import HasPermission
from painsite.core.api import exception_handler as api_exception_handler
from painsite.core.services import record_event

FHIR_JSON = "application/fhir+json"
# The label export's permission: the scores leave PainSite. Model assessments go with them.
EXPORT_PERMISSIONS = ["annotation.export_labels", "modeling.view_assessment"]
# FHIR's issue types for the HTTP errors an export can answer.
ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    415: "not-supported",
    429: "throttled",
}


class FHIRJSONRenderer(JSONRenderer):
    media_type = FHIR_JSON
    format = "fhir"


class AlwaysFHIRJSON(BaseContentNegotiation):
    """FHIR clients send `application/fhir+json`, `application/json+fhir` (DSTU2) or `*/*`: all
    get FHIR JSON, the one format these views answer, instead of a 406."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def fhir_exception_handler(exc, context) -> Response | None:
    """The API's error answer (same status and headers), as an OperationOutcome."""
    response = api_exception_handler(exc, context)
    if response is None:
        return None
    message = response.data.get("error") if isinstance(response.data, dict) else None
    missing = isinstance(exc, exceptions.ValidationError) and exc.get_codes() == ["required"]
    response.data = operation_outcome(
        severity="error",
        code="required" if missing else ISSUE_CODES.get(response.status_code, "exception"),
        diagnostics=str(message or gettext("The request failed.")),
    )
    return response


FHIR_RESPONSES = {
    (200, FHIR_JSON): OpenApiResponse(OpenApiTypes.OBJECT, description="a FHIR R4 Bundle (searchset)"),
    (404, FHIR_JSON): OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome: no such patient"),
}


class FHIRView(APIView):
    renderer_classes = [FHIRJSONRenderer]
    content_negotiation_class = AlwaysFHIRJSON
    permission_classes = [HasPermission]
    required_permissions = {"GET": EXPORT_PERMISSIONS}

    def get_exception_handler(self):
        return fhir_exception_handler

    def answer(self, request: Request, bundle: dict, *, patient: Patient, interaction: str) -> Response:
        observations = sum(1 for entry in bundle["entry"] if entry["resource"]["resourceType"] == "Observation")
        record_event(
            actor=request.user,
            action="export.fhir",
            target=patient,
            details={"patient": patient.code, "interaction": interaction, "observations": observations},
        )
        response = Response(bundle)
        response["Cache-Control"] = "private, no-store"
        return response


def base_url(request: Request) -> str:
    return request.build_absolute_uri("/fhir/")


class ObservationSearch(FHIRView):
    @extend_schema(
        parameters=[OpenApiParameter("patient", str, required=True, description="the patient's code, e.g. P001")],
        responses={
            **FHIR_RESPONSES,
            (400, FHIR_JSON): OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome: no patient given"),
        },
        description="The patient's pain scores and model assessments as FHIR R4 Observations (a searchset "
        "Bundle). Audit-logged as export.fhir. Mapping: docs/deploy.md, FHIR R4.",
        operation_id="fhir_observation_search",
    )
    def get(self, request: Request) -> Response:
        code = request.query_params.get("patient", "").removeprefix("Patient/")
        if not code:
            raise exceptions.ValidationError(
                gettext("Give the patient: /fhir/Observation?patient=<patient code>."), code="required"
            )
        patient = _patient(code)
        bundle = observation_search_bundle(
            patient, viewer=request.user, base_url=base_url(request), self_url=request.build_absolute_uri()
        )
        return self.answer(request, bundle, patient=patient, interaction="search Observation")


class PatientEverything(FHIRView):
    @extend_schema(
        responses=FHIR_RESPONSES,
        description="Patient $everything: the Patient, their Observations and the Practitioners and Devices "
        "these refer to (a searchset Bundle). Audit-logged as export.fhir. Mapping: docs/deploy.md, FHIR R4.",
        operation_id="fhir_patient_everything",
    )
    def get(self, request: Request, code: str) -> Response:
        patient = _patient(code)
        bundle = patient_everything_bundle(
            patient, viewer=request.user, base_url=base_url(request), self_url=request.build_absolute_uri()
        )
        return self.answer(request, bundle, patient=patient, interaction="Patient $everything")


def _patient(code: str) -> Patient:
    # No code holds a NUL or runs past 64 characters, and PostgreSQL refuses a NUL in a query.
    valid = "\x00" not in code and len(code) <= Patient._meta.get_field("code").max_length
    patient = Patient.objects.filter(code=code).first() if valid else None
    if patient is None:
        raise exceptions.NotFound(gettext("No patient has the code %(code)s.") % {"code": code})
    return patient


def restore_operation_paths(result, generator, request, public):
    """drf-spectacular hook: it reads routes as regular expressions and drops the `$` of FHIR
    operations (`/fhir/Patient/{code}/$everything`); put it back, so the schema names real URLs."""
    result["paths"] = {
        path.replace("/everything", "/$everything") if path.startswith("/fhir/") else path: item
        for path, item in result["paths"].items()
    }
    return result
