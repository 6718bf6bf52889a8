"""One patient, one code, one copy of each image: codes are unique whatever their case, and a
picture already stored under one patient is refused under another, naming that patient."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from annotation.intake import DuplicateImage, store_image
from annotation.models import Image, Patient
from tests.annotation.image_factories import make_jpeg, make_patient, make_zip, manifest
from tests.annotation.test_bulk_import import post_archive
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def test_the_database_refuses_a_code_that_differs_only_in_case():
    make_patient("P001")
    with pytest.raises(IntegrityError), transaction.atomic():
        Patient.objects.create(code="p001", cohort="clinical")
    assert Patient.objects.count() == 1


def test_the_api_answers_that_the_code_is_an_existing_patient(clinician):
    make_patient("P001")
    response = api_client_for(clinician).post("/api/patients/", {"code": "p001", "cohort": "clinical"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == (
        "patient code 'p001' is the existing patient 'P001': codes differ only in case, and name one patient"
    )
    assert list(Patient.objects.values_list("code", flat=True)) == ["P001"]


def test_a_bulk_import_row_with_a_case_variant_code_is_rejected_with_the_reason(clinician):
    make_patient("P001")
    archive = make_zip({"manifest.csv": manifest("a.jpg,p001,clinical,5,,"), "a.jpg": make_jpeg(seed=71)})
    report = post_archive(api_client_for(clinician), archive).json()
    assert report["created_count"] == 0 and report["rejected_count"] == 1
    assert "is the existing patient 'P001'" in report["report"]["rejected"][0]["reason"]
    assert not Image.objects.exists()


def test_the_same_image_under_another_patient_is_refused_naming_that_patient(clinician, settings):
    first, second = make_patient("P001"), make_patient("P002")
    data = make_jpeg(seed=72)
    stored = store_image(data=data, filename="a.jpg", patient=first, uploaded_by=clinician).image
    with pytest.raises(DuplicateImage, match=f"already stored as image {stored.pk} of patient P001"):
        store_image(data=data, filename="b.jpg", patient=second, uploaded_by=clinician)

    response = api_client_for(clinician).post(
        "/api/images/", {"file": _upload("copy.jpg", data), "patient": "P002"}, format="multipart"
    )
    assert response.status_code == 409
    assert "of patient P001" in response.json()["error"]
    assert response.json()["details"] == {"existing_id": stored.pk, "existing_patient": "P001"}
    assert Image.objects.count() == 1 and not second.images.exists()


def _upload(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/jpeg")


@pytest.mark.django_db(transaction=True)
def test_the_migration_lists_clashing_codes_instead_of_merging_them():
    executor = MigrationExecutor(connection)
    before = [("annotation", "0005_consent_not_recorded")]
    # Forward again to every app's latest migration: going back to annotation 0005 also unapplies
    # the migrations of other apps that depend on annotation's later ones.
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(before)
    try:
        old_apps = executor.loader.project_state(before).apps
        OldPatient = old_apps.get_model("annotation", "Patient")
        for code in ("P001", "p001", "S7", "s7", "X1"):
            OldPatient.objects.create(code=code, cohort="clinical")
        migration = importlib.import_module("annotation.migrations.0006_patient_code_unique_ignoring_case")
        with pytest.raises(RuntimeError, match="differ only in case name one patient: P001, p001; S7, s7"):
            migration.refuse_clashing_codes(old_apps, None)
        executor = MigrationExecutor(connection)
        with pytest.raises(RuntimeError, match="P001, p001; S7, s7"):
            executor.migrate([("annotation", "0006_patient_code_unique_ignoring_case")])
        assert OldPatient.objects.count() == 5, "nothing merged or deleted"
        OldPatient.objects.filter(code__in=["p001", "s7"]).delete()
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)
    assert apps.get_model("annotation", "Patient").objects.count() == 3
