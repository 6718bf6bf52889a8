from __future__ import annotations

from django.urls import path

from modeling import api_fhir

# FHIR's own URL style: no trailing slash, the operation after a "$".
urlpatterns = [
    path("fhir/Observation", api_fhir.ObservationSearch.as_view(), name="fhir-observation-search"),
    path("fhir/Patient/<str:code>/$everything", api_fhir.PatientEverything.as_view(), name="fhir-patient-everything"),
]
