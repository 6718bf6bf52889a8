"""Consent starts "not recorded": nothing of a patient is stored or assessed until a clinician records it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.intake import ConsentNotGranted, store_image
from annotation.models import Consent, Image, Patient
from annotation.services import create_patient
from modeling.inference import models
from modeling.models import Assessment, Stage
from painsite.core.models import AuditEvent
from tests.annotation.factories import make_jpeg
from tests.annotation.image_factories import make_zip, manifest
from tests.conftest import api_client_for
from tests.modeling.tiny_model import make_face_jpeg, make_model_version, tiny_model

pytestmark = pytest.mark.django_db


def upload(user, code: str, seed: int = 1):
    picture = SimpleUploadedFile("face.jpg", make_jpeg(seed), content_type="image/jpeg")
    return api_client_for(user).post("/api/images/", {"file": picture, "patient": code}, format="multipart")


def test_a_new_patient_starts_with_consent_not_recorded_and_gets_no_images(clinician):
    created = api_client_for(clinician).post("/api/patients/", {"code": "P-new", "cohort": "clinical"}, format="json")
    assert created.status_code == 201
    assert created.json()["consent"] == "not_recorded" and created.json()["consent_recorded_by"] is None
    refused = upload(clinician, "P-new")
    assert refused.status_code == 400
    assert "no consent recorded" in refused.json()["error"]
    assert Image.objects.count() == 0


def test_recording_consent_stores_who_and_when_and_then_images_are_accepted(clinician):
    create_patient(code="P-new", cohort="clinical", actor=clinician)
    client = api_client_for(clinician)
    recorded = client.patch("/api/patients/P-new/", {"consent": "granted"}, format="json")
    assert recorded.status_code == 200
    assert recorded.json()["consent"] == "granted" and recorded.json()["consent_recorded_by"] == clinician.username
    patient = Patient.objects.get(code="P-new")
    assert patient.consent_recorded_by == clinician and patient.consent_recorded_at is not None
    assert AuditEvent.objects.filter(action="consent.grant", actor=clinician).count() == 1
    assert upload(clinician, "P-new").status_code == 201


def test_consent_cannot_be_set_back_to_not_recorded(clinician):
    create_patient(code="P-new", cohort="clinical", actor=clinician, consent=Consent.GRANTED)
    response = api_client_for(clinician).patch("/api/patients/P-new/", {"consent": "not_recorded"}, format="json")
    assert response.status_code == 400
    assert Patient.objects.get().consent == Consent.GRANTED


def test_the_intake_service_refuses_every_caller_itself(clinician):
    patient = create_patient(code="P-new", cohort="clinical", actor=clinician)
    with pytest.raises(ConsentNotGranted, match="no consent recorded"):
        store_image(data=make_jpeg(1), filename="a.jpg", patient=patient, uploaded_by=clinician)
    assert Image.objects.count() == 0


def test_the_patient_page_offers_to_record_consent_either_way(client, clinician):
    create_patient(code="P-new", cohort="clinical", actor=clinician)
    client.force_login(clinician)
    page = client.get("/patients/P-new/").content.decode()
    assert "No consent is recorded" in page
    assert "Record consent as granted" in page and "Record consent as refused" in page
    client.post("/patients/P-new/consent/", {"consent": "granted"})
    page = client.get("/patients/P-new/").content.decode()
    assert f"Consent recorded by {clinician.username}" in page


def test_a_bulk_import_records_the_consent_its_manifest_states_and_refuses_patients_without(clinician):
    rows = ["a.jpg,P-stated,clinical,,,", "b.jpg,P-silent,clinical,,,"]
    text = manifest(*rows, consent="").decode().splitlines()
    text[0] += ",consent"
    text[1] += ",granted"
    archive = make_zip(
        {"manifest.csv": ("\n".join(text) + "\n").encode(), "a.jpg": make_jpeg(1), "b.jpg": make_jpeg(2)}
    )
    upload_file = SimpleUploadedFile("data.zip", archive, content_type="application/zip")
    report = (
        api_client_for(clinician)
        .post("/api/images/bulk/", {"archive": upload_file}, format="multipart")
        .json()["report"]
    )
    assert [row["patient"] for row in report["created"]] == ["P-stated"]
    assert [row["filename"] for row in report["rejected"]] == ["b.jpg"]
    assert "no consent recorded" in report["rejected"][0]["reason"]
    stated, silent = Patient.objects.get(code="P-stated"), Patient.objects.get(code="P-silent")
    assert stated.consent == Consent.GRANTED and stated.consent_recorded_by == clinician
    assert silent.consent == Consent.NOT_RECORDED and silent.consent_recorded_by is None


def test_an_assessment_for_a_patient_without_recorded_consent_is_refused_before_the_model_runs(clinician):
    make_model_version(tiny_model(), name="v1", stage=Stage.PRODUCTION)
    create_patient(code="P-new", cohort="clinical", actor=clinician)
    models.clear()
    picture = SimpleUploadedFile("face.jpg", make_face_jpeg(), content_type="image/jpeg")
    response = api_client_for(clinician).post(
        "/api/assessments/", {"file": picture, "patient": "P-new"}, format="multipart"
    )
    assert response.status_code == 409
    assert "no consent recorded" in response.json()["error"]
    assert models.loaded_versions() == []
    assert Image.objects.count() == 0 and Assessment.objects.count() == 0
