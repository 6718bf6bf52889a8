"""Patients: the API, the pages and consent."""

from __future__ import annotations

import pytest

from annotation.models import Consent, Patient
from painsite.core.models import AuditEvent
from tests.annotation.factories import make_image, make_label, make_patient
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def test_a_clinician_creates_a_patient_and_it_is_audit_logged(clinician):
    response = api_client_for(clinician).post(
        "/api/patients/", {"code": "CPD-0042", "cohort": "clinical"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["code"] == "CPD-0042" and response.json()["consent"] == "not_recorded"
    assert AuditEvent.objects.filter(action="patient.create", actor=clinician).exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"code": "Jane Doe", "cohort": "clinical"},
        {"code": "", "cohort": "clinical"},
        {"code": "P1", "cohort": "ward"},
        {"cohort": "clinical"},
    ],
)
def test_it_rejects_names_blank_codes_and_unknown_cohorts(clinician, payload):
    response = api_client_for(clinician).post("/api/patients/", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]
    assert not Patient.objects.exists()


def test_it_rejects_a_duplicate_code(clinician):
    make_patient("P001")
    response = api_client_for(clinician).post("/api/patients/", {"code": "P001", "cohort": "simulated"}, format="json")
    assert response.status_code == 400
    assert "already exists" in response.json()["error"]


def test_the_list_shows_counts_and_filters(clinician):
    patient = make_patient("P001")
    make_patient("S001", cohort="simulated")
    labeled, _ = make_image(patient), make_image(patient)
    make_label(labeled, clinician, nrs=3)
    body = api_client_for(clinician).get("/api/patients/?cohort=clinical").json()
    assert body["count"] == 1
    row = body["results"][0]
    assert (row["code"], row["image_count"], row["labeled_image_count"]) == ("P001", 2, 1)


def test_the_list_takes_a_fixed_number_of_queries(clinician, django_assert_num_queries):
    for number in range(5):
        make_image(make_patient(f"P{number:03d}"))
    client = api_client_for(clinician)
    with django_assert_num_queries(3):  # permissions (user and role in one query), count, page
        response = client.get("/api/patients/")
    assert response.json()["count"] == 5


def test_patch_withdraws_and_grants_consent_with_audit(clinician):
    make_patient("P001")
    client = api_client_for(clinician)
    response = client.patch("/api/patients/P001/", {"consent": "withdrawn", "reason": "asked on ward"}, format="json")
    assert response.status_code == 200 and response.json()["consent"] == "withdrawn"
    event = AuditEvent.objects.get(action="consent.withdraw")
    assert (event.actor, event.details["reason"]) == (clinician, "asked on ward")
    assert client.patch("/api/patients/P001/", {"consent": "granted"}, format="json").json()["consent"] == "granted"
    assert AuditEvent.objects.filter(action="consent.grant").count() == 1
    assert client.patch("/api/patients/P001/", {"consent": "maybe"}, format="json").status_code == 400


def test_unknown_patient_is_404(clinician):
    assert api_client_for(clinician).get("/api/patients/NOPE/").status_code == 404


@pytest.mark.parametrize("role", ["clinician", "researcher", "admin_user"])
def test_every_role_reads_and_manages_patients(role, request):
    client = api_client_for(request.getfixturevalue(role))
    assert client.post("/api/patients/", {"code": f"X-{role}", "cohort": "clinical"}, format="json").status_code == 201
    assert client.get("/api/patients/").status_code == 200
    assert client.get(f"/api/patients/X-{role}/").status_code == 200
    assert client.patch(f"/api/patients/X-{role}/", {"consent": "withdrawn"}, format="json").status_code == 200


def test_anonymous_gets_401_and_outsider_403(outsider):
    make_patient("P001")
    for client, expected in ((api_client_for(None), 401), (api_client_for(outsider), 403)):
        assert client.get("/api/patients/").status_code == expected
        assert (
            client.post("/api/patients/", {"code": "P2", "cohort": "clinical"}, format="json").status_code == expected
        )
        assert client.get("/api/patients/P001/").status_code == expected
        assert client.patch("/api/patients/P001/", {"consent": "withdrawn"}, format="json").status_code == expected
    assert Patient.objects.get().consent == Consent.GRANTED


# Pages ------------------------------------------------------------------------------------------


def test_the_pages_need_login_and_a_role(client, outsider):
    make_patient("P001")
    for url in ("/patients/", "/patients/P001/", "/agreement/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(outsider)
    for url in ("/patients/", "/patients/P001/", "/agreement/"):
        assert client.get(url).status_code == 403
    assert client.post("/patients/P001/consent/", {"consent": "withdrawn"}).status_code == 403


def test_the_patients_page_creates_a_patient_or_answers_422(client, clinician):
    client.force_login(clinician)
    response = client.post("/patients/", {"code": "Jane Doe", "cohort": "clinical"})
    assert response.status_code == 422 and b"pseudonymous" in response.content
    response = client.post("/patients/", {"code": "CPD-7", "cohort": "clinical"})
    assert response.status_code == 302 and response["Location"] == "/patients/CPD-7/"
    assert b"CPD-7" in client.get("/patients/").content


def test_the_consent_buttons_withdraw_and_grant(client, clinician):
    make_patient("P001")
    client.force_login(clinician)
    assert b"Withdraw consent" in client.get("/patients/P001/").content
    client.post("/patients/P001/consent/", {"consent": "withdrawn", "reason": "asked"})
    assert Patient.objects.get().consent == Consent.WITHDRAWN
    assert b"Record consent as granted" in client.get("/patients/P001/").content
    client.post("/patients/P001/consent/", {"consent": "granted"})
    assert Patient.objects.get().consent == Consent.GRANTED
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "consent.withdraw",
        "consent.grant",
    ]


def test_the_detail_page_shows_the_timeline_chart_and_table(client, clinician, clinician2):
    patient = make_patient("P001")
    image = make_image(patient)
    make_label(image, clinician, nrs=7, kind="self_report")
    make_label(image, clinician2, nrs=4)
    client.force_login(clinician)
    response = client.get("/patients/P001/")
    content = response.content.decode()
    series = {entry["label"]: entry for entry in response.context["chart"]["series"]}
    assert [point[1] for point in series["Self-report (NRS)"]["points"]] == [7]
    assert [point[1] for point in series["Observer (NRS)"]["points"]] == [4]
    assert 'id="timeline-spec"' in content and "js/plots.js" in content
    assert f"/api/images/{image.pk}/file/?thumbnail=1" in content
    assert "Self-report" in content and "Observer" in content


def test_the_timeline_shows_model_assessments_as_level_ranges(client, clinician):
    from modeling.models import Assessment
    from tests.modeling.registry_data import make_model_version

    patient = make_patient("P001")
    image = make_image(patient)
    version = make_model_version("v1")
    Assessment.objects.create(
        image=image,
        patient=patient,
        model_version=version,
        level="severe",
        face_found=True,
        probabilities={"none": 0.1, "mild": 0.1, "moderate": 0.1, "severe": 0.7},
    )
    client.force_login(clinician)
    response = client.get("/patients/P001/")
    (model,) = response.context["chart"]["series"]
    assert [bar[1:] for bar in model["ranges"]][0][:2] == [7, 10] and "model v1 says severe" in model["ranges"][0][3]
    assert "severe (0.70)" in response.content.decode()
