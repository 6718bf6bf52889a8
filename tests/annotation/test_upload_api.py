"""POST/GET /api/images/ and GET /api/images/<id>/: roles, bad input, filters, query counts."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation.intake import store_image
from annotation.models import Consent, Image, Patient
from annotation.services import record_label
from tests.annotation.image_factories import (
    make_bomb_png,
    make_face_jpeg,
    make_jpeg,
    make_patient,
    stored_files,
)
from tests.conftest import api_client_for, make_user

pytestmark = pytest.mark.django_db

IMAGES = "/api/images/"


def upload(client, data: bytes, *, patient: str = "P001", name: str = "face.jpg", **extra):
    payload = {"file": SimpleUploadedFile(name, data, content_type="image/jpeg"), "patient": patient, **extra}
    return client.post(IMAGES, payload, format="multipart")


def make_image(patient, seed: int):
    return store_image(data=make_jpeg(seed=seed), filename=f"{seed}.jpg", patient=patient, uploaded_by=None).image


def test_a_clinician_uploads_an_image_and_gets_its_fields(clinician):
    make_patient("P001")
    response = upload(api_client_for(clinician), make_face_jpeg(seed=1), captured_at="2026-03-01T08:30:00Z")

    assert response.status_code == 201, response.json()
    body = response.json()
    image = Image.objects.get()
    assert body["id"] == image.pk and body["patient"] == "P001" and body["sha256"] == image.sha256
    assert (body["width"], body["height"]) == (160, 120)
    assert isinstance(body["face_box"], list) and len(body["face_box"]) == 4
    assert body["uploaded_at"] and body["captured_at"].startswith("2026-03-01T08:30")
    assert image.uploaded_by == clinician


def test_anonymous_upload_gets_401_and_an_outsider_403(outsider):
    make_patient("P001")
    assert upload(api_client_for(None), make_jpeg(seed=1)).status_code == 401
    response = upload(api_client_for(outsider), make_jpeg(seed=1))
    assert response.status_code == 403
    assert set(response.json()) == {"error", "details"}
    assert Image.objects.count() == 0


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("notes.jpg", b"plain text pretending to be a photo" * 10, "not a readable image"),
        ("cut.jpg", make_jpeg(seed=2, width=200, height=150)[:1200], "truncated"),
        (
            "drawing.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "not a readable image",
        ),
        ("page.html", b"<html><script>alert(1)</script></html>", "not a readable image"),
        ("bomb.png", make_bomb_png(), "pixels"),
        ("empty.jpg", b"", "empty"),
    ],
)
def test_bad_uploads_get_400_naming_the_file_and_store_nothing(clinician, settings, name, data, reason):
    make_patient("P001")
    response = upload(api_client_for(clinician), data, name=name)

    assert response.status_code == 400
    body = response.json()
    assert body["error"].startswith(f"{name}: ") and reason in body["details"]["reason"]
    assert body["details"]["filename"] == name
    assert Image.objects.count() == 0
    assert stored_files(settings.MEDIA_ROOT) == []


def test_an_oversize_upload_is_refused_before_it_is_read(clinician, settings):
    settings.PAINSITE_MAX_UPLOAD_BYTES = 2_000
    make_patient("P001")
    response = upload(api_client_for(clinician), make_jpeg(seed=3, width=200, height=150))
    assert response.status_code == 400 and "limit is 2,000 bytes" in response.json()["error"]
    assert stored_files(settings.MEDIA_ROOT) == []


def test_an_unknown_patient_gets_400(clinician, settings):
    response = upload(api_client_for(clinician), make_jpeg(seed=4), patient="NOPE")
    assert response.status_code == 400
    assert response.json() == {"error": "unknown patient 'NOPE'", "details": {"patient": "NOPE"}}
    assert stored_files(settings.MEDIA_ROOT) == []


def test_a_patient_who_withdrew_consent_gets_no_new_images(clinician):
    make_patient("P001", consent=Consent.WITHDRAWN)
    assert upload(api_client_for(clinician), make_jpeg(seed=5)).status_code == 400
    assert Image.objects.count() == 0


def test_a_missing_file_gets_400(clinician):
    make_patient("P001")
    response = api_client_for(clinician).post(IMAGES, {"patient": "P001"}, format="multipart")
    assert response.status_code == 400 and response.json()["error"].startswith("file:")


def test_a_duplicate_gets_409_with_the_existing_id(clinician, settings):
    make_patient("P001")
    client = api_client_for(clinician)
    first = upload(client, make_jpeg(seed=6)).json()
    response = upload(client, make_jpeg(seed=6), name="copy.jpg")

    assert response.status_code == 409
    assert response.json()["details"] == {"existing_id": first["id"], "existing_patient": "P001"}
    assert Image.objects.count() == 1 and len(stored_files(settings.MEDIA_ROOT)) == 2


def test_the_list_filters_by_patient_cohort_and_labels(clinician):
    clinical, simulated = make_patient("C1"), make_patient("S1", cohort="simulated")
    labeled = make_image(clinical, 1)
    unlabeled = make_image(clinical, 2)
    volunteer = make_image(simulated, 3)
    record_label(image=labeled, rater=clinician, nrs=6, kind="observer")
    client = api_client_for(clinician)

    def ids(query: str) -> set[int]:
        response = client.get(IMAGES + query)
        assert response.status_code == 200
        return {row["id"] for row in response.json()["results"]}

    assert ids("") == {labeled.pk, unlabeled.pk, volunteer.pk}
    assert ids("?patient=C1") == {labeled.pk, unlabeled.pk}
    assert ids("?cohort=simulated") == {volunteer.pk}
    assert ids("?labeled=true") == {labeled.pk}
    assert ids("?labeled=false&cohort=clinical") == {unlabeled.pk}


def test_the_list_hides_withdrawn_patients_except_from_admins(clinician, admin_user):
    hidden = make_image(make_patient("W1"), 1)
    Patient.objects.filter(code="W1").update(consent=Consent.WITHDRAWN)
    shown = make_image(make_patient("G1"), 2)
    assert [row["id"] for row in api_client_for(clinician).get(IMAGES).json()["results"]] == [shown.pk]
    assert {row["id"] for row in api_client_for(admin_user).get(IMAGES).json()["results"]} == {hidden.pk, shown.pk}


def test_the_list_is_paginated(clinician):
    patient = make_patient()
    for seed in range(3):
        make_image(patient, seed)
    body = api_client_for(clinician).get(IMAGES + "?page_size=2").json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]


@pytest.mark.parametrize("n_images", [2, 6])
def test_the_list_takes_the_same_few_queries_however_many_images(django_assert_num_queries, n_images):
    patient = make_patient()
    for seed in range(n_images):
        make_image(patient, seed)
    user = make_user("quinn", "clinician")
    client = api_client_for(user)
    client.get(IMAGES)  # warms the user's permission cache
    # count + one page with its patients joined; permissions come from the cache.
    with django_assert_num_queries(2):
        response = client.get(IMAGES)
    assert len(response.json()["results"]) == n_images


def test_image_metadata_by_role(clinician, outsider, admin_user):
    image = make_image(make_patient(), 1)
    withdrawn = make_image(make_patient("W1"), 2)
    Patient.objects.filter(code="W1").update(consent=Consent.WITHDRAWN)
    url = reverse("api-image", args=[image.pk])

    assert api_client_for(None).get(url).status_code == 401
    assert api_client_for(outsider).get(url).status_code == 403
    body = api_client_for(clinician).get(url).json()
    assert {"id", "patient", "sha256", "width", "height", "face_box", "uploaded_at"} <= set(body)
    assert body["face_box"] is None
    assert api_client_for(clinician).get(reverse("api-image", args=[withdrawn.pk])).status_code == 403
    assert api_client_for(admin_user).get(reverse("api-image", args=[withdrawn.pk])).status_code == 200
    assert api_client_for(clinician).get(reverse("api-image", args=[999_999])).status_code == 404


def test_the_image_endpoints_are_in_the_openapi_schema(clinician):
    schema = api_client_for(clinician).get("/api/schema/?format=json").json()
    for path in [
        "/api/images/",
        "/api/images/{image_id}/",
        "/api/images/{image_id}/file/",
        "/api/images/bulk/",
        "/api/imports/{job_id}/",
    ]:
        assert path in schema["paths"], path
