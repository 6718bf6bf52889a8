"""The label export: one CSV row per label, consenting patients only, audit-logged."""

from __future__ import annotations

import csv
import io

import pytest

from annotation.services import withdraw_consent
from painsite.core.models import AuditEvent
from tests.annotation.factories import make_image, make_label, make_patient
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db
URL = "/api/export/labels.csv"


def rows_of(response) -> list[dict[str, str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_it_exports_every_label_with_history_and_audits_it(researcher, clinician, clinician2):
    patient = make_patient("P001")
    image = make_image(patient)
    first = make_label(image, clinician, nrs=2)
    make_label(image, clinician, nrs=5)
    make_label(image, clinician2, nrs=6, kind="self_report")
    response = api_client_for(researcher).get(URL)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Cache-Control"] == "private, no-store"
    rows = rows_of(response)
    assert len(rows) == 3
    by_id = {int(row["label_id"]): row for row in rows}
    first_row = by_id[first.pk]
    assert (first_row["patient_code"], first_row["cohort"], first_row["image_id"]) == (
        "P001",
        "clinical",
        str(image.pk),
    )
    assert (first_row["sha256"], first_row["nrs"], first_row["kind"], first_row["rater"]) == (
        image.sha256,
        "2",
        "observer",
        "carla",
    )
    assert first_row["superseded"] == "1"
    assert sorted(row["superseded"] for row in rows) == ["0", "0", "1"]
    event = AuditEvent.objects.get(action="export.labels")
    assert (event.actor, event.details["rows"]) == (researcher, 3)


def test_withdrawn_patients_are_left_out(researcher, clinician):
    kept, withdrawn = make_patient("P001"), make_patient("P002")
    make_label(make_image(kept), clinician, nrs=1)
    make_label(make_image(withdrawn), clinician, nrs=9)
    withdraw_consent(patient=withdrawn, actor=clinician)
    rows = rows_of(api_client_for(researcher).get(URL))
    assert [row["patient_code"] for row in rows] == ["P001"]


def test_cells_that_spreadsheets_would_run_as_formulas_are_quoted(researcher, clinician):
    patient = make_patient("-cmd")
    make_label(make_image(patient), clinician, nrs=1)
    rows = rows_of(api_client_for(researcher).get(URL))
    assert rows[0]["patient_code"] == "'-cmd"


def test_it_filters_by_cohort(researcher, clinician):
    make_label(make_image(make_patient("P001")), clinician, nrs=1)
    make_label(make_image(make_patient("S001", cohort="simulated")), clinician, nrs=2)
    rows = rows_of(api_client_for(researcher).get(URL + "?cohort=simulated"))
    assert [row["patient_code"] for row in rows] == ["S001"]


def test_export_needs_the_export_permission(clinician, admin_user, outsider):
    assert api_client_for(None).get(URL).status_code == 401
    assert api_client_for(outsider).get(URL).status_code == 403
    assert api_client_for(clinician).get(URL).status_code == 403
    assert api_client_for(admin_user).get(URL).status_code == 200
    assert not AuditEvent.objects.filter(action="export.labels", actor=clinician).exists()


def test_researchers_see_an_export_button(client, researcher, clinician):
    client.force_login(researcher)
    assert URL.encode() in client.get("/patients/").content
    client.force_login(clinician)
    assert URL.encode() not in client.get("/patients/").content
