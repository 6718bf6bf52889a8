"""Recording, correcting and undoing pain labels: service and API."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from annotation.models import Consent, Image, PainLabel
from annotation.services import ConsentWithdrawnError, LabelingError, record_label, undo_last_label
from painsite.core.models import AuditEvent
from tests.annotation.factories import make_image, make_label, make_patient
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def image(clinician):
    return make_image(make_patient("P001"), uploaded_by=clinician)


def counts(image: Image) -> tuple[int, int]:
    image.refresh_from_db()
    return image.label_count, image.observer_rater_count


def test_it_records_a_label_and_counts_the_rater(image, clinician):
    label = record_label(image=image, rater=clinician, nrs=7, kind="observer")
    assert (label.nrs, label.kind, label.rater, label.supersedes) == (7, "observer", clinician, None)
    assert counts(image) == (1, 1)


def test_a_correction_is_a_new_row_that_supersedes_the_previous_one(image, clinician):
    first = make_label(image, clinician, nrs=3)
    second = make_label(image, clinician, nrs=6)
    assert second.supersedes == first
    assert list(PainLabel.objects.filter(image=image).order_by("id").values_list("nrs", flat=True)) == [3, 6]
    assert list(PainLabel.objects.current().filter(image=image)) == [second]
    assert counts(image) == (1, 1)


def test_a_change_of_kind_moves_the_observer_count(image, clinician):
    make_label(image, clinician, nrs=3, kind="observer")
    make_label(image, clinician, nrs=6, kind="self_report")
    assert counts(image) == (1, 0)


def test_two_raters_each_count_once(image, clinician, clinician2):
    make_label(image, clinician, nrs=3)
    make_label(image, clinician2, nrs=4)
    make_label(image, clinician2, nrs=5)
    assert counts(image) == (2, 2)


def test_it_writes_label_create_to_the_audit_log(image, clinician):
    label = make_label(image, clinician, nrs=2)
    event = AuditEvent.objects.get(action="label.create")
    assert (event.actor, event.object_id, event.details["nrs"]) == (clinician, str(label.pk), 2)


@pytest.mark.parametrize("nrs", [-1, 11, 5.5, "high", None, True])
def test_the_service_rejects_nrs_outside_whole_numbers_0_to_10(image, clinician, nrs):
    with pytest.raises(LabelingError):
        record_label(image=image, rater=clinician, nrs=nrs, kind="observer")
    assert not PainLabel.objects.exists()


def test_the_database_rejects_nrs_above_10(image, clinician):
    with pytest.raises(IntegrityError), transaction.atomic():
        PainLabel.objects.create(image=image, rater=clinician, nrs=11, kind="observer")


def test_the_database_allows_one_chain_per_rater_and_image(image, clinician):
    make_label(image, clinician)
    with pytest.raises(IntegrityError), transaction.atomic():
        PainLabel.objects.create(image=image, rater=clinician, nrs=4, kind="observer")


def test_it_refuses_labels_on_a_withdrawn_patients_image(image, clinician):
    image.patient.consent = Consent.WITHDRAWN
    image.patient.save()
    with pytest.raises(ConsentWithdrawnError):
        record_label(image=image, rater=clinician, nrs=4, kind="observer")
    assert counts(image) == (0, 0)


def test_undo_of_a_first_score_retracts_it_and_keeps_history(image, clinician):
    label = make_label(image, clinician, nrs=8)
    undo = undo_last_label(rater=clinician)
    assert (undo.is_undo, undo.is_retraction, undo.supersedes, undo.nrs) == (True, True, label, 8)
    assert PainLabel.objects.filter(image=image).count() == 2
    assert not PainLabel.objects.current().filter(image=image).exists()
    assert counts(image) == (0, 0)
    assert AuditEvent.objects.filter(action="label.undo", details__undone=label.pk).exists()


def test_undo_of_a_correction_restores_the_previous_score(image, clinician):
    make_label(image, clinician, nrs=3, kind="self_report")
    make_label(image, clinician, nrs=9, kind="observer")
    undo = undo_last_label(rater=clinician)
    assert (undo.is_retraction, undo.nrs, undo.kind) == (False, 3, "self_report")
    assert [label.nrs for label in PainLabel.objects.current().filter(image=image)] == [3]
    assert counts(image) == (1, 0)


def test_repeated_undo_walks_back_through_the_raters_scores(clinician, clinician2):
    patient = make_patient("P002")
    first, second = make_image(patient), make_image(patient)
    make_label(first, clinician, nrs=1)
    make_label(second, clinician2, nrs=2)
    make_label(second, clinician, nrs=2)
    assert undo_last_label(rater=clinician).image == second
    assert undo_last_label(rater=clinician).image == first
    assert undo_last_label(rater=clinician) is None
    assert counts(first) == (0, 0)
    assert counts(second) == (1, 1)
    assert PainLabel.objects.current().get(image=second).rater == clinician2


def test_a_score_after_an_undo_continues_the_same_chain(image, clinician):
    make_label(image, clinician, nrs=1)
    retraction = undo_last_label(rater=clinician)
    again = make_label(image, clinician, nrs=4)
    assert again.supersedes == retraction
    assert counts(image) == (1, 1)
    restored = undo_last_label(rater=clinician)
    assert restored.is_retraction
    assert counts(image) == (0, 0)


# API --------------------------------------------------------------------------------------------


def labels_url(image: Image) -> str:
    return f"/api/images/{image.pk}/labels/"


@pytest.mark.parametrize("role", ["clinician", "researcher", "admin_user"])
def test_every_role_can_post_a_label(image, role, request):
    user = request.getfixturevalue(role)
    response = api_client_for(user).post(labels_url(image), {"nrs": 10, "kind": "self_report"}, format="json")
    assert response.status_code == 201
    assert set(response.json()) >= {"id", "image", "rater", "nrs", "kind", "created_at"}
    assert (response.json()["nrs"], response.json()["rater"], response.json()["image"]) == (10, user.username, image.pk)


def test_anonymous_gets_401_and_outsider_403_on_post(image, outsider):
    assert api_client_for(None).post(labels_url(image), {"nrs": 1}, format="json").status_code == 401
    assert api_client_for(outsider).post(labels_url(image), {"nrs": 1}, format="json").status_code == 403
    assert not PainLabel.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"nrs": -1},
        {"nrs": 11},
        {"nrs": 5.5},
        {"nrs": "high"},
        {},
        {"nrs": None},
        {"nrs": True},
        {"nrs": 4, "kind": "guess"},
    ],
)
def test_the_api_rejects_bad_labels_with_a_clear_error_and_stores_nothing(image, clinician, payload):
    response = api_client_for(clinician).post(labels_url(image), {"kind": "observer", **payload}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert ("nrs" in body["error"]) or ("kind" in body["error"])
    assert not PainLabel.objects.exists()
    assert counts(image) == (0, 0)


def test_the_api_refuses_a_withdrawn_patients_image_with_409(image, clinician):
    image.patient.consent = Consent.WITHDRAWN
    image.patient.save()
    response = api_client_for(clinician).post(labels_url(image), {"nrs": 3}, format="json")
    assert response.status_code == 409
    assert "consent" in response.json()["error"]
    assert not PainLabel.objects.exists()


def test_the_api_answers_404_for_an_unknown_image(clinician):
    response = api_client_for(clinician).post("/api/images/999999/labels/", {"nrs": 3}, format="json")
    assert response.status_code == 404
    assert "error" in response.json()


def test_the_undo_endpoint_returns_the_new_row_or_409(image, clinician, outsider):
    client = api_client_for(clinician)
    assert client.post("/api/labels/undo/").status_code == 409
    made = client.post(labels_url(image), {"nrs": 6}, format="json").json()
    response = client.post("/api/labels/undo/")
    assert response.status_code == 200
    assert (response.json()["supersedes"], response.json()["is_retraction"]) == (made["id"], True)
    assert api_client_for(None).post("/api/labels/undo/").status_code == 401
    assert api_client_for(outsider).post("/api/labels/undo/").status_code == 403


def test_history_lists_superseded_rows_with_their_flag(image, clinician, clinician2):
    first = make_label(image, clinician, nrs=2)
    second = make_label(image, clinician, nrs=5)
    make_label(image, clinician2, nrs=4)
    body = api_client_for(clinician).get(f"/api/labels/?image={image.pk}").json()
    assert body["count"] == 3
    by_id = {row["id"]: row for row in body["results"]}
    assert (by_id[first.pk]["superseded"], by_id[second.pk]["superseded"]) == (True, False)
    assert by_id[second.pk]["supersedes"] == first.pk


def test_history_hides_withdrawn_patients_except_from_admins(image, clinician, admin_user):
    make_label(image, clinician, nrs=2)
    image.patient.consent = Consent.WITHDRAWN
    image.patient.save()
    assert api_client_for(clinician).get("/api/labels/").json()["count"] == 0
    assert api_client_for(admin_user).get("/api/labels/").json()["count"] == 1


def test_history_roles(researcher, outsider):
    assert api_client_for(None).get("/api/labels/").status_code == 401
    assert api_client_for(outsider).get("/api/labels/").status_code == 403
    assert api_client_for(researcher).get("/api/labels/").status_code == 200


def test_history_takes_a_fixed_number_of_queries(clinician, django_assert_num_queries):
    patient = make_patient("P009")
    for _ in range(4):
        image = make_image(patient)
        make_label(image, clinician, nrs=1)
        make_label(image, clinician, nrs=2)
    client = api_client_for(clinician)
    # permissions (user and role in one query), count, page, superseded flags
    with django_assert_num_queries(4):
        response = client.get("/api/labels/")
    assert response.json()["count"] == 8


def test_an_images_history_is_served_at_its_own_address_as_the_labels_list_serves_it(image, clinician, clinician2):
    make_label(image, clinician, nrs=2)
    make_label(image, clinician, nrs=5)
    make_label(image, clinician2, nrs=4)
    make_label(make_image(image.patient), clinician, nrs=9)  # another image's label stays out
    client = api_client_for(clinician)
    own = client.get(f"/api/images/{image.pk}/labels/")
    assert own.status_code == 200
    assert own.json() == client.get(f"/api/labels/?image={image.pk}").json()
    assert own.json()["count"] == 3


def test_an_images_history_is_refused_for_a_withdrawn_patient_except_to_admins_and_404s_for_no_image(
    image, clinician, admin_user
):
    make_label(image, clinician, nrs=2)
    image.patient.consent = Consent.WITHDRAWN
    image.patient.save()
    refused = api_client_for(clinician).get(f"/api/images/{image.pk}/labels/")
    assert refused.status_code == 403 and "withdrew consent" in refused.json()["error"]
    assert api_client_for(admin_user).get(f"/api/images/{image.pk}/labels/").json()["count"] == 1
    assert api_client_for(clinician).get("/api/images/999999/labels/").status_code == 404
