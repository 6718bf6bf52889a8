"""The FHIR R4 export: valid resources, nothing lost on the way, pseudonymous, audited, gated."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import PainLabel
from annotation.services import undo_last_label, withdraw_consent
from modeling.fhir import practitioner_id
from modeling.models import Assessment, ModelVersion
from painsite.core.models import AuditEvent
from tests.annotation.factories import make_image, make_label, make_patient
from tests.conftest import api_client_for
from tests.modeling.factories import LEVEL_NAMES, make_model_version

pytestmark = pytest.mark.django_db

EVERYTHING = "/fhir/Patient/{code}/$everything"
SEARCH = "/fhir/Observation?patient={code}"
# Required bindings fhir.resources does not check: the codes R4 allows.
OBSERVATION_STATUSES = {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error"}
ISSUE_SEVERITIES = {"fatal", "error", "warning", "information"}
NRS_LOINC = ("http://loinc.org", "72514-3")
PAINSITE = "http://painsite.org/fhir/CodeSystem/painsite"
IMAGE_SYSTEM = "http://painsite.org/fhir/NamingSystem/image"


def assess(image, version: ModelVersion, probabilities: list[float], *, face_found: bool = True) -> Assessment:
    named = dict(zip(LEVEL_NAMES, probabilities))
    return Assessment.objects.create(
        image=image,
        patient=image.patient,
        model_version=version,
        level=max(named, key=named.get),
        probabilities=named,
        face_found=face_found,
    )


@pytest.fixture
def record(clinician, clinician2, researcher):
    """Patient P001: two images (one with a capture time), a corrected observer score, a
    self-report, a score taken back, and assessments by two model versions (one without a face)."""
    patient = make_patient("P001")
    captured = make_image(patient, captured_at=datetime(2025, 3, 1, 8, 30, 15, 250000, tzinfo=UTC))
    uncaptured = make_image(patient)
    make_label(captured, clinician, nrs=3)
    make_label(captured, clinician, nrs=5)
    make_label(captured, clinician2, nrs=7, kind="self_report")
    make_label(uncaptured, clinician2, nrs=2)
    make_label(uncaptured, researcher, nrs=9)
    undo_last_label(rater=researcher)
    v1 = make_model_version(name="v1", n_bootstrap=20)
    v2 = make_model_version(name="v2", seed=1, n_bootstrap=20, backbone="random-init")
    assess(captured, v1, [0.05, 0.15, 0.3000000000000001, 0.5])
    assess(uncaptured, v2, [0.7, 0.2, 0.06, 0.04])
    assess(uncaptured, v1, [0.25, 0.25, 0.25, 0.25], face_found=False)
    other = make_patient("P002")
    make_label(make_image(other), clinician, nrs=1)
    return patient


def get(user: User | None, url: str, **headers):
    return api_client_for(user).get(url, **headers)


def bundle_of(response) -> Bundle:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/fhir+json"
    return Bundle.model_validate_json(response.content)


def resources(bundle: Bundle, resource_type: str) -> list:
    return [entry.resource for entry in bundle.entry or [] if entry.resource.get_resource_type() == resource_type]


def test_every_resource_either_endpoint_emits_parses_as_fhir_with_codes_r4_allows(researcher, record):
    for url in (EVERYTHING.format(code="P001"), SEARCH.format(code="P001")):
        data = get(researcher, url).json()
        assert data["resourceType"] == "Bundle" and data["type"] == "searchset"
        for entry in data["entry"]:
            resource = entry["resource"]
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
            assert entry["fullUrl"].endswith(f"/fhir/{resource['resourceType']}/{resource['id']}")
            assert entry["search"]["mode"] == "match"
            if resource["resourceType"] == "Observation":
                assert resource["status"] in OBSERVATION_STATUSES
                assert (
                    "valueInteger" in resource
                    or "valueCodeableConcept" in resource
                    or (resource["status"] == "entered-in-error")
                )
        assert data["total"] == len(data["entry"])
    # Only P001's: P002's score stays out; 4 standing or taken-back chains + 2 assessments with a face.
    assert len(data["entry"]) == 6


def test_the_bundle_gives_back_every_standing_score_and_assessment_as_stored(researcher, record):
    bundle = bundle_of(get(researcher, EVERYTHING.format(code="P001")))
    (patient,) = resources(bundle, "Patient")
    assert patient.identifier[0].value == "P001"
    devices = {f"Device/{device.id}": device for device in resources(bundle, "Device")}
    practitioners = {f"Practitioner/{practitioner.id}" for practitioner in resources(bundle, "Practitioner")}
    scores, assessments = set(), {}
    for observation in resources(bundle, "Observation"):
        assert observation.subject.reference == f"Patient/{patient.id}"
        image_id = int(observation.derivedFrom[0].identifier.value)
        coding = observation.code.coding[0]
        if (coding.system, coding.code) == NRS_LOINC:
            if observation.status == "entered-in-error":
                assert observation.valueInteger is None
                continue
            method = observation.method.coding[0].code
            kind = {"self-report": "self_report", "observer-estimate": "observer"}[method]
            rater = observation.performer[-1].reference
            assert rater in practitioners
            scores.add(
                (image_id, rater, kind, observation.valueInteger, observation.effectiveDateTime, observation.issued)
            )
        else:
            assert (coding.system, coding.code) == (PAINSITE, "facial-pain-level")
            device = devices[observation.device.reference]
            probabilities = {c.code.coding[0].code: c.valueQuantity.value for c in observation.component}
            assessments[int(observation.identifier[0].value)] = (
                image_id,
                observation.valueCodeableConcept.coding[0].code,
                {name: float(value) for name, value in probabilities.items()},
                device.version[0].value,
                observation.issued,
            )

    stored_scores = {
        (
            label.image_id,
            f"Practitioner/{practitioner_id(label.rater_id)}",
            label.kind,
            label.nrs,
            label.image.captured_at or label.image.uploaded_at,
            label.created_at,
        )
        for label in PainLabel.objects.current().filter(image__patient=record)
    }
    assert scores == stored_scores and len(scores) == 3
    stored_assessments = {
        assessment.pk: (
            assessment.image_id,
            assessment.level,
            assessment.probabilities,
            assessment.model_version.name,
            assessment.created_at,
        )
        for assessment in Assessment.objects.filter(patient=record, face_found=True)
    }
    assert assessments == stored_assessments and len(assessments) == 2


def test_probabilities_travel_as_exact_decimals(researcher, record):
    data = get(researcher, SEARCH.format(code="P001")).content.decode()
    assert "0.3000000000000001" in data
    bundle = Bundle.model_validate_json(data)
    values = [c.valueQuantity.value for o in resources(bundle, "Observation") for c in o.component or []]
    assert Decimal("0.3000000000000001") in values


def test_a_corrected_score_is_one_amended_observation_that_keeps_the_chains_id(researcher, clinician, record):
    first = PainLabel.objects.filter(rater=clinician, image__patient=record, supersedes__isnull=True).get()
    data = get(researcher, SEARCH.format(code="P001")).json()
    (observation,) = [e["resource"] for e in data["entry"] if e["resource"]["id"] == f"label-{first.pk}"]
    assert (observation["status"], observation["valueInteger"], observation["meta"]["versionId"]) == ("amended", 5, "2")
    assert observation["identifier"][0]["value"] == str(first.superseded_by.pk)
    assert observation["effectiveDateTime"] == "2025-03-01T08:30:15.250000+00:00"


def test_a_score_taken_back_is_entered_in_error_without_a_value(researcher, record):
    data = get(researcher, SEARCH.format(code="P001")).json()
    taken_back = [e["resource"] for e in data["entry"] if e["resource"]["status"] == "entered-in-error"]
    assert len(taken_back) == 1
    assert "valueInteger" not in taken_back[0] and taken_back[0]["meta"]["versionId"] == "2"
    unchanged = [
        e["resource"] for e in data["entry"] if e["resource"]["status"] == "final" and "valueInteger" in e["resource"]
    ]
    assert sorted(o["valueInteger"] for o in unchanged) == [2, 7]


def test_a_self_report_names_the_patient_then_the_recording_clinician_and_an_observer_score_the_clinician(
    researcher, clinician2, record
):
    data = get(researcher, SEARCH.format(code="P001")).json()
    scores = {o["valueInteger"]: o for o in (e["resource"] for e in data["entry"]) if o.get("valueInteger") is not None}
    recorder = f"Practitioner/{practitioner_id(clinician2.pk)}"
    assert [p["reference"] for p in scores[7]["performer"]] == ["Patient/P001", recorder]
    assert scores[7]["method"]["coding"][0]["code"] == "self-report"
    assert [p["reference"] for p in scores[2]["performer"]] == [recorder]
    assert scores[2]["method"]["coding"][0]["code"] == "observer-estimate"


def test_no_username_account_id_or_image_leaves_in_the_export(researcher, clinician, clinician2, record):
    text = get(researcher, EVERYTHING.format(code="P001")).content.decode()
    for user in (clinician, clinician2, researcher):
        assert user.get_username() not in text
        assert f'Practitioner/{user.pk}"' not in text
    for image in record.images.all():
        assert image.sha256 not in text and image.file.name not in text
    assert "/api/images/" not in text and "data:image" not in text


def test_a_practitioners_pseudonym_is_stable_and_depends_on_the_deployments_key(settings, clinician):
    before = practitioner_id(clinician.pk)
    assert practitioner_id(clinician.pk) == before != practitioner_id(clinician.pk + 1)
    settings.PAINSITE_FHIR_PSEUDONYM_KEY = "another deployment"
    assert practitioner_id(clinician.pk) != before


def test_assessments_without_a_face_are_not_exported(researcher, record):
    no_face = Assessment.objects.get(patient=record, face_found=False)
    text = get(researcher, EVERYTHING.format(code="P001")).content.decode()
    assert f"assessment-{no_face.pk}" not in text


def test_an_assessment_says_it_is_machine_generated_and_a_random_init_model_is_flagged(researcher, record):
    bundle = get(researcher, EVERYTHING.format(code="P001")).json()
    found = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    v2 = ModelVersion.objects.get(name="v2")
    assert "random initialisation" in found[f"model-version-{v2.pk}"]["note"][0]["text"]
    v1 = ModelVersion.objects.get(name="v1")
    assert "note" not in found[f"model-version-{v1.pk}"]
    for observation in (r for r in found.values() if r.get("device")):
        notes = " ".join(note["text"] for note in observation["note"])
        assert notes.startswith("Machine-generated by PainSite model version")
        assert ("random initialisation" in notes) == (
            observation["device"]["reference"] == f"Device/model-version-{v2.pk}"
        )


def test_a_withdrawn_patients_scores_are_withheld_from_researchers_and_exported_to_admins(
    researcher, admin_user, clinician, record
):
    withdraw_consent(patient=record, actor=clinician)
    for url in (SEARCH.format(code="P001"), EVERYTHING.format(code="P001")):
        data = get(researcher, url).json()
        assert not [e for e in data["entry"] if e["resource"]["resourceType"] == "Observation"]
        (outcome,) = [e for e in data["entry"] if e["search"]["mode"] == "outcome"]
        assert outcome["resource"]["issue"][0]["code"] == "suppressed"
        assert outcome["resource"]["issue"][0]["severity"] in ISSUE_SEVERITIES
        Bundle.model_validate(data)
        admin_data = get(admin_user, url).json()
        assert len([e for e in admin_data["entry"] if e["resource"]["resourceType"] == "Observation"]) == 6


def test_each_export_is_audited_with_who_which_patient_and_how_much(researcher, record):
    get(researcher, SEARCH.format(code="P001"))
    get(researcher, EVERYTHING.format(code="P001"))
    events = list(AuditEvent.objects.filter(action="export.fhir").order_by("id"))
    assert [(e.actor, e.object_id, e.details["interaction"], e.details["observations"]) for e in events] == [
        (researcher, str(record.pk), "search Observation", 6),
        (researcher, str(record.pk), "Patient $everything", 6),
    ]


def test_an_unknown_patient_is_a_404_operation_outcome_and_nothing_is_audited(researcher, record):
    for url in (SEARCH.format(code="NOPE"), EVERYTHING.format(code="NOPE"), SEARCH.format(code="P%00")):
        response = get(researcher, url)
        assert response.status_code == 404, url
        assert response["Content-Type"] == "application/fhir+json"
        outcome = get_fhir_model_class("OperationOutcome").model_validate(response.json())
        assert outcome.issue[0].code == "not-found"
    assert not AuditEvent.objects.filter(action="export.fhir").exists()


def test_a_search_without_a_patient_is_a_400_operation_outcome(researcher, record):
    for url in ("/fhir/Observation", "/fhir/Observation?patient="):
        response = get(researcher, url)
        assert response.status_code == 400
        outcome = get_fhir_model_class("OperationOutcome").model_validate(response.json())
        assert (outcome.issue[0].severity, outcome.issue[0].code) == ("error", "required")
        assert "patient" in outcome.issue[0].diagnostics
    assert not AuditEvent.objects.filter(action="export.fhir").exists()


def test_a_search_also_takes_the_patient_as_a_fhir_reference(researcher, record):
    data = get(researcher, "/fhir/Observation?patient=Patient/P001").json()
    assert data["total"] == 6


def test_only_those_who_may_export_labels_may_export_fhir(clinician, researcher, admin_user, outsider, record):
    for url in (SEARCH.format(code="P001"), EVERYTHING.format(code="P001")):
        for user, status in ((None, 401), (outsider, 403), (clinician, 403), (researcher, 200), (admin_user, 200)):
            response = get(user, url)
            assert response.status_code == status, (url, user)
            assert response["Content-Type"] == "application/fhir+json"
            if status != 200:
                assert response.json()["resourceType"] == "OperationOutcome"
    assert not AuditEvent.objects.filter(action="export.fhir").exclude(actor__in=[researcher, admin_user]).exists()


def test_a_hospital_system_gets_the_bundle_with_an_api_token_and_any_accept_header(researcher, record):
    token = Token.objects.create(user=researcher)
    client = APIClient()
    for accept in ("application/fhir+json", "application/json+fhir", "application/json", "*/*"):
        response = client.get(
            EVERYTHING.format(code="P001"), HTTP_AUTHORIZATION=f"Token {token.key}", HTTP_ACCEPT=accept
        )
        # The patient, 6 observations, the 3 clinicians behind them and 2 model versions.
        assert bundle_of(response).total == 12
        assert response["Cache-Control"] == "private, no-store"
    assert client.get(EVERYTHING.format(code="P001"), HTTP_AUTHORIZATION="Token wrong").status_code == 401


def test_the_export_costs_the_same_queries_however_many_scores_a_patient_has(
    researcher, clinician, record, django_assert_num_queries
):
    client = api_client_for(researcher)
    client.get(EVERYTHING.format(code="P001"))  # reads the account's permissions once
    # The patient, the scores, the assessments, their model versions, the audit event.
    with django_assert_num_queries(5):
        client.get(EVERYTHING.format(code="P001"))
    for _ in range(5):
        make_label(make_image(record), clinician, nrs=4)
    with django_assert_num_queries(5):
        response = client.get(EVERYTHING.format(code="P001"))
    assert response.json()["total"] == 17


def test_patient_codes_that_are_not_fhir_ids_get_a_stable_id_and_keep_the_code(researcher, clinician):
    patient = make_patient("ward 3 bed_7")
    make_label(make_image(patient), clinician, nrs=4)
    data = get(researcher, "/fhir/Patient/ward%203%20bed_7/$everything").json()
    (resource,) = [e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert resource["id"].startswith("painsite-") and resource["identifier"][0]["value"] == "ward 3 bed_7"
    Bundle.model_validate(data)
    assert json.dumps(data).count(f"Patient/{resource['id']}") >= 2
