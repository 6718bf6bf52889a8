"""The labeling queue: which image a clinician gets next, through the selector and the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Consent, Image
from annotation.selectors import QUEUE_SECOND_OBSERVER, QUEUE_UNLABELED, next_image_for
from annotation.services import record_label, reserve_next_image, undo_last_label, withdraw_consent
from painsite.core.roles import CLINICIAN
from tests.annotation.factories import make_image, make_label, make_patient
from tests.conftest import api_client_for, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient():
    return make_patient("P001")


def test_never_labeled_images_come_first(patient, clinician, clinician2):
    labeled_once = make_image(patient)
    make_label(labeled_once, clinician2, nrs=4)
    unlabeled = {make_image(patient), make_image(patient)}
    image = next_image_for(clinician)
    assert image in unlabeled and image.queue_reason == QUEUE_UNLABELED
    make_label(image, clinician2, nrs=4)
    assert next_image_for(clinician) == (unlabeled - {image}).pop()


def test_clinicians_labeling_at_the_same_time_get_different_images(patient):
    images = [make_image(patient) for _ in range(10)]
    raters = [make_user(f"rater{number}", CLINICIAN) for number in range(8)]
    served = [reserve_next_image(rater=rater) for rater in raters]
    assert served == images[:8]
    assert [reserve_next_image(rater=rater) for rater in raters] == served  # each rater keeps their image


def test_a_reservation_lasts_the_configured_time(patient, clinician, settings):
    settings.PAINSITE_QUEUE_RESERVATION_SECONDS = 90
    image = make_image(patient)
    before = timezone.now()
    assert reserve_next_image(rater=clinician) == image
    image.refresh_from_db()
    assert image.reserved_by == clinician
    assert before + timedelta(seconds=90) <= image.reserved_until <= timezone.now() + timedelta(seconds=90)


def test_an_expired_reservation_puts_the_image_back_in_every_queue(patient, clinician, clinician2):
    image = make_image(patient)
    assert reserve_next_image(rater=clinician) == image
    assert reserve_next_image(rater=clinician2) is None  # nothing else is left: the queue waits for it
    Image.objects.filter(pk=image.pk).update(reserved_until=timezone.now() - timedelta(seconds=1))
    assert reserve_next_image(rater=clinician2) == image


def test_a_reserved_image_gets_its_second_score_after_the_first(patient, clinician, clinician2):
    image = make_image(patient)
    assert reserve_next_image(rater=clinician) == image
    record_label(image=image, rater=clinician, nrs=4, kind="observer")
    image.refresh_from_db()
    assert (image.reserved_by, image.reserved_until) == (None, None)
    offered = reserve_next_image(rater=clinician2)
    assert (offered, offered.queue_reason) == (image, QUEUE_SECOND_OBSERVER)


def test_another_raters_score_leaves_the_reservation_alone(patient, clinician, clinician2):
    image = make_image(patient)
    reserve_next_image(rater=clinician)
    record_label(image=image, rater=clinician2, nrs=4, kind="observer")
    image.refresh_from_db()
    assert image.reserved_by == clinician


def test_skipping_releases_the_reservation(patient, clinician, clinician2):
    first, second = make_image(patient), make_image(patient)
    assert reserve_next_image(rater=clinician) == first
    assert reserve_next_image(rater=clinician, skip=[first.pk]) == second
    assert reserve_next_image(rater=clinician2) == first
    assert reserve_next_image(rater=clinician, skip=[first.pk, second.pk]) is None
    assert Image.objects.get(pk=second.pk).reserved_by is None


def test_then_images_needing_a_second_observer(patient, clinician, clinician2, researcher):
    needs_second = make_image(patient)
    make_label(needs_second, clinician2, nrs=4)
    has_two = make_image(patient)
    make_label(has_two, clinician2, nrs=4)
    make_label(has_two, researcher, nrs=5)
    image = next_image_for(clinician)
    assert (image, image.queue_reason) == (needs_second, QUEUE_SECOND_OBSERVER)


def test_it_skips_images_the_user_already_rated(patient, clinician):
    image = make_image(patient)
    make_label(image, clinician, nrs=4)
    assert next_image_for(clinician) is None


def test_a_self_report_alone_does_not_ask_for_observers(patient, clinician, clinician2):
    image = make_image(patient)
    make_label(image, clinician2, nrs=4, kind="self_report")
    assert next_image_for(clinician) is None


def test_an_undone_score_puts_the_image_back_in_the_users_queue(patient, clinician, clinician2):
    image = make_image(patient)
    make_label(image, clinician2, nrs=4)
    make_label(image, clinician, nrs=6)
    assert next_image_for(clinician) is None
    undo_last_label(rater=clinician)
    assert next_image_for(clinician) == image


def test_withdrawn_consent_hides_images_from_the_queue(patient, clinician):
    withdrawn = make_patient("P002")
    make_image(withdrawn)
    kept = make_image(patient)
    withdraw_consent(patient=withdrawn, actor=clinician)
    assert next_image_for(clinician) == kept
    patient.consent = Consent.WITHDRAWN
    patient.save()
    assert next_image_for(clinician) is None


def test_skipped_images_are_passed_over(patient, clinician):
    first, second = make_image(patient), make_image(patient)
    assert next_image_for(clinician, skip=[first.pk]) == second
    assert next_image_for(clinician, skip=[first.pk, second.pk]) is None


def test_the_queue_query_count_does_not_depend_on_the_data(patient, clinician, clinician2, django_assert_num_queries):
    for _ in range(3):
        make_label(make_image(patient), clinician2, nrs=3)
    # The chosen order (one row), then the unlabeled step finds nothing, the second-observer step finds one.
    with django_assert_num_queries(3):
        assert next_image_for(clinician) is not None


def test_handing_out_an_image_takes_three_statements(patient, clinician, django_assert_num_queries):
    make_image(patient)
    # The transaction's begin and end (or savepoint and release), the chosen queue order, the
    # queue step's SELECT ... FOR UPDATE and the reserving UPDATE.
    with django_assert_num_queries(5):
        assert reserve_next_image(rater=clinician) is not None


# API --------------------------------------------------------------------------------------------


def test_the_api_returns_the_next_image_with_what_the_page_needs(patient, clinician):
    image = make_image(patient)
    response = api_client_for(clinician).get("/api/queue/next/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == image.pk
    assert body["patient"] == "P001"
    assert (body["width"], body["height"]) == (image.width, image.height)
    assert "face_box" in body
    assert body["file_url"] == f"/api/images/{image.pk}/file/"
    assert body["reason"] == "unlabeled"


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


def statements(captured: CaptureQueriesContext) -> list[str]:
    """The SQL statements a request ran, without the transaction control around them."""
    return [query["sql"] for query in captured.captured_queries if not query["sql"].startswith(TRANSACTION_CONTROL)]


def test_a_labeling_step_takes_at_most_thirteen_statements(patient, clinician):
    """GET the next image and POST its score with an API token, as the labeling clients do."""
    for _ in range(3):
        make_image(patient)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=clinician).key}")
    with CaptureQueriesContext(connection) as asked:
        offered = client.get("/api/queue/next/")
    with CaptureQueriesContext(connection) as scored:
        saved = client.post(f"/api/images/{offered.json()['id']}/labels/", {"nrs": 5}, format="json")
    assert (offered.status_code, saved.status_code) == (200, 201)
    # The token with its user, the user's permissions, the chosen queue order, the queue step,
    # the reservation.
    assert len(statements(asked)) <= 5, statements(asked)
    # The token with its user, the permissions, the image lock, the rater's chain head, the label,
    # the image's counters with the reservation's release in one UPDATE, the queue prediction of
    # an image scored for the first time, the audit event.
    assert len(statements(scored)) <= 8, statements(scored)


def test_the_api_answers_204_when_the_queue_is_empty(clinician):
    response = api_client_for(clinician).get("/api/queue/next/")
    assert response.status_code == 204


def test_the_api_honours_skip(patient, clinician):
    first, second = make_image(patient), make_image(patient)
    response = api_client_for(clinician).get(f"/api/queue/next/?skip={first.pk},junk")
    assert response.json()["id"] == second.pk


@pytest.mark.parametrize("role", ["clinician", "researcher", "admin_user"])
def test_every_role_has_a_queue(patient, role, request):
    make_image(patient)
    assert api_client_for(request.getfixturevalue(role)).get("/api/queue/next/").status_code == 200


def test_anonymous_gets_401_and_outsider_403_on_the_queue(outsider):
    assert api_client_for(None).get("/api/queue/next/").status_code == 401
    assert api_client_for(outsider).get("/api/queue/next/").status_code == 403


def test_the_labeling_page_needs_login_and_a_role(client, clinician, outsider):
    response = client.get("/label/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(outsider)
    assert client.get("/label/").status_code == 403
    client.force_login(clinician)
    page = client.get("/label/")
    assert page.status_code == 200
    assert b"label.js" in page.content and b'data-nrs="10"' in page.content
