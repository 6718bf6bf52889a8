"""The labeling queue's order: arrival, uncertainty (entropy, margin) and level-balanced, on
constructed predictions; what a clinician sees of it (nothing); who may change it, and the audit."""

from __future__ import annotations

import pytest
from django.db import connection

from annotation.models import Image, ImagePrediction, QueueOrder, QueueSettings, UncertaintyMeasure
from annotation.queue_order import (
    PredictionRow,
    current_queue_order,
    next_level_ranks,
    set_queue_order,
    store_predictions,
)
from annotation.selectors import QUEUE_UNLABELED, next_image_for, queue_steps
from annotation.serializers import QueueItemSerializer
from painsite.core.models import AuditEvent
from tests.annotation.factories import make_image, make_label, make_patient
from tests.annotation.plans import image_rows_read
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

LEVELS = ("none", "mild", "moderate", "severe")
FACE = [10, 10, 40, 40]


@pytest.fixture
def patient():
    return make_patient()


def predicted(image: Image, *, level: int, entropy: float, margin: float, rank: int = 0, version: int = 7) -> Image:
    store_predictions(
        model_version_id=version,
        rows=[PredictionRow(image.pk, level, LEVELS[level], entropy, margin, rank)],
    )
    return image


def queue_sequence(user) -> list[int]:
    """Every image the user's queue hands out, in order (passing over each one in turn)."""
    seen: list[int] = []
    while (image := next_image_for(user, skip=seen)) is not None:
        seen.append(image.pk)
    return seen


def choose(order: str, measure: str | None = None, actor=None) -> None:
    set_queue_order(order=order, uncertainty_measure=measure, actor=actor)


@pytest.fixture
def four_predicted(patient):
    """Four never-labeled images with a face, oldest first, and their constructed predictions:
    entropy and margin disagree on which is least certain."""
    images = [make_image(patient, face_box=FACE) for _ in range(4)]
    predicted(images[0], level=0, entropy=0.10, margin=0.90)
    predicted(images[1], level=3, entropy=0.80, margin=0.30)
    predicted(images[2], level=1, entropy=0.60, margin=0.05)
    predicted(images[3], level=3, entropy=0.95, margin=0.20)
    return images


def ids(images: list[Image], *positions: int) -> list[int]:
    return [images[position].pk for position in positions]


def test_arrival_is_the_default_and_ignores_the_predictions(four_predicted, clinician):
    assert current_queue_order().order == QueueOrder.ARRIVAL
    assert queue_sequence(clinician) == ids(four_predicted, 0, 1, 2, 3)


def test_uncertainty_by_entropy_hands_out_the_most_spread_predictions_first(four_predicted, clinician):
    choose(QueueOrder.UNCERTAINTY, UncertaintyMeasure.ENTROPY)
    assert queue_sequence(clinician) == ids(four_predicted, 3, 1, 2, 0)


def test_uncertainty_by_margin_hands_out_the_nearest_ties_first(four_predicted, clinician):
    choose(QueueOrder.UNCERTAINTY, UncertaintyMeasure.MARGIN)
    assert queue_sequence(clinician) == ids(four_predicted, 2, 3, 1, 0)


def test_margin_is_the_default_uncertainty_measure(four_predicted, clinician):
    choose(QueueOrder.UNCERTAINTY)
    assert current_queue_order().uncertainty_measure == UncertaintyMeasure.MARGIN
    assert queue_sequence(clinician) == ids(four_predicted, 2, 3, 1, 0)


def test_level_balanced_takes_the_predicted_levels_in_turn(patient, clinician):
    images = [make_image(patient, face_box=FACE) for _ in range(7)]
    # Predicted levels in arrival order: severe, severe, severe, none, mild, severe, none.
    for image, level in zip(images, (3, 3, 3, 0, 1, 3, 0)):
        rank = next_level_ranks(model_version_id=7).get(level, 0)
        predicted(image, level=level, entropy=0.5, margin=0.5, rank=rank)
    choose(QueueOrder.LEVEL_BALANCED)
    # Round 1: none, mild, severe (oldest of each); round 2: none, severe; then severe, severe.
    assert queue_sequence(clinician) == ids(images, 3, 4, 0, 6, 1, 2, 5)


def test_images_without_a_prediction_come_after_the_predicted_ones_oldest_first(patient, clinician):
    no_face = make_image(patient)
    not_predicted_yet = make_image(patient, face_box=FACE)
    certain = predicted(make_image(patient, face_box=FACE), level=0, entropy=0.1, margin=0.9)
    unsure = predicted(make_image(patient, face_box=FACE), level=2, entropy=0.9, margin=0.1)
    assert no_face.face_box is None
    for order, measure in (
        (QueueOrder.UNCERTAINTY, "entropy"),
        (QueueOrder.UNCERTAINTY, "margin"),
        ("level-balanced", None),
    ):
        choose(order, measure)
        sequence = queue_sequence(clinician)
        assert sequence[2:] == [no_face.pk, not_predicted_yet.pk], (order, measure)
        assert set(sequence[:2]) == {certain.pk, unsure.pk}


def test_images_needing_a_second_observer_still_follow_the_never_labeled_ones(patient, clinician, clinician2):
    once = make_image(patient, face_box=FACE)
    make_label(once, clinician2, nrs=4)
    fresh = predicted(make_image(patient, face_box=FACE), level=1, entropy=0.2, margin=0.8)
    choose(QueueOrder.UNCERTAINTY)
    assert queue_sequence(clinician) == [fresh.pk, once.pk]


def test_the_first_score_removes_the_images_prediction(four_predicted, clinician, clinician2):
    choose(QueueOrder.UNCERTAINTY, UncertaintyMeasure.ENTROPY)
    first = next_image_for(clinician)
    make_label(first, clinician, nrs=6)
    assert not ImagePrediction.objects.filter(image=first).exists()
    assert ImagePrediction.objects.count() == 3
    # A second observer's score leaves the others alone.
    make_label(first, clinician2, nrs=5)
    assert ImagePrediction.objects.count() == 3


def test_storing_a_prediction_for_an_image_scored_meanwhile_keeps_it_out(patient, clinician):
    image = make_image(patient, face_box=FACE)
    make_label(image, clinician, nrs=2)
    predicted(image, level=1, entropy=0.5, margin=0.5)
    assert not ImagePrediction.objects.exists()


def test_a_prediction_outside_0_to_1_is_refused_by_the_database(patient):
    from django.db import IntegrityError, transaction

    image = make_image(patient, face_box=FACE)
    with pytest.raises(IntegrityError), transaction.atomic():
        predicted(image, level=1, entropy=1.5, margin=0.5)


def test_the_queue_answer_tells_a_clinician_nothing_of_the_model(four_predicted, clinician):
    """Blind labeling: the model's suggestion is shown only after the rater's own score
    (GET /api/images/<id>/suggestion/); the queue hands out images before any score."""
    choose(QueueOrder.LEVEL_BALANCED)
    arrival_fields = set(QueueItemSerializer.Meta.fields)
    for order, measure in (
        (QueueOrder.UNCERTAINTY, "entropy"),
        (QueueOrder.UNCERTAINTY, "margin"),
        ("level-balanced", None),
    ):
        choose(order, measure)
        response = api_client_for(clinician).get("/api/queue/next/")
        body = response.json()
        assert set(body) == arrival_fields and body["reason"] == QUEUE_UNLABELED
        prediction = ImagePrediction.objects.get(image_id=body["id"])
        text = response.content.decode()
        for secret in (prediction.predicted_level_name, str(prediction.entropy), str(prediction.margin)):
            assert secret not in text
        assert "level" not in text and "probabilit" not in text
        Image.objects.update(reserved_by=None, reserved_until=None)
    page = api_client_for(clinician).get("/label/").content.decode()
    for level in LEVELS:
        assert f'"{level}"' not in page


def test_the_queue_reads_its_order_once(four_predicted, clinician, django_assert_num_queries):
    choose(QueueOrder.UNCERTAINTY)
    # The chosen order, then the predicted step finds the first image.
    with django_assert_num_queries(2):
        assert next_image_for(clinician) is not None


# The order's API and form -----------------------------------------------------------------------


def test_a_clinician_reads_the_order_but_cannot_change_it(clinician):
    client = api_client_for(clinician)
    assert client.get("/api/queue/order/").json() == {
        "order": "arrival",
        "uncertainty_measure": "margin",
        "changed_by": None,
        "changed_at": None,
    }
    response = client.put("/api/queue/order/", {"order": "uncertainty"}, format="json")
    assert response.status_code == 403
    assert current_queue_order().order == "arrival" and not AuditEvent.objects.exists()


@pytest.mark.parametrize("persona", ["researcher", "admin_user"])
def test_researchers_and_admins_change_the_order_and_it_is_audited(persona, request):
    user = request.getfixturevalue(persona)
    response = api_client_for(user).put(
        "/api/queue/order/", {"order": "uncertainty", "uncertainty_measure": "entropy"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["order"] == "uncertainty" and response.json()["changed_by"] == user.username
    event = AuditEvent.objects.get(action="queue.order_change")
    assert event.actor == user
    assert event.details == {
        "from": {"order": "arrival", "uncertainty_measure": "margin"},
        "to": {"order": "uncertainty", "uncertainty_measure": "entropy"},
    }


def test_choosing_the_order_already_set_writes_no_audit_event(researcher):
    choose(QueueOrder.LEVEL_BALANCED, actor=researcher)
    choose(QueueOrder.LEVEL_BALANCED, actor=researcher)
    assert AuditEvent.objects.filter(action="queue.order_change").count() == 1


def test_an_unknown_order_is_refused_with_the_valid_ones_and_changes_nothing(researcher):
    client = api_client_for(researcher)
    for body in ({"order": "random"}, {"order": "uncertainty", "uncertainty_measure": "variance"}, {}):
        response = client.put("/api/queue/order/", body, format="json")
        assert response.status_code == 400, body
        assert "error" in response.json()
    assert "arrival" in client.put("/api/queue/order/", {"order": "random"}, format="json").json()["error"]
    assert not QueueSettings.objects.exists() and not AuditEvent.objects.exists()


def test_the_training_page_shows_the_order_form_to_researchers(researcher, client):
    client.force_login(researcher)
    page = client.get("/training/")
    assert page.status_code == 200 and b'id="queue-order-form"' in page.content
    response = client.post(
        "/queue/order/", {"order": "level-balanced", "uncertainty_measure": "margin", "next": "/training/"}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/training/"
    assert current_queue_order().order == "level-balanced"
    # A form with a bad value changes nothing and says so.
    client.post("/queue/order/", {"order": "sideways", "uncertainty_measure": "margin", "next": "/training/"})
    assert current_queue_order().order == "level-balanced"
    assert AuditEvent.objects.filter(action="queue.order_change").count() == 1


def test_a_clinician_cannot_post_the_order_form(clinician, client):
    client.force_login(clinician)
    response = client.post("/queue/order/", {"order": "uncertainty", "uncertainty_measure": "margin"})
    assert response.status_code == 403 and current_queue_order().order == "arrival"


# PostgreSQL plans -----------------------------------------------------------------------------


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="checks PostgreSQL plans: set DATABASE_URL=postgres://..."
)
@pytest.mark.parametrize(
    "order,measure", [("uncertainty", "entropy"), ("uncertainty", "margin"), ("level-balanced", "margin")]
)
def test_each_prediction_order_reads_one_image_of_a_large_backlog(patient, clinician, order, measure):
    n = 3000
    Image.objects.bulk_create(
        Image(patient=patient, file=f"images/plan/{i}.jpg", sha256=f"{i:064x}", width=64, height=64, face_box=FACE)
        for i in range(n)
    )
    ids_ = list(Image.objects.order_by("pk").values_list("pk", flat=True))
    ImagePrediction.objects.bulk_create(
        ImagePrediction(
            image_id=image_id,
            model_version_id=1,
            predicted_level=i % 4,
            predicted_level_name=LEVELS[i % 4],
            entropy=(i * 7919 % n) / n,
            margin=(i * 104729 % n) / n,
            level_rank=i // 4,
            computed_at="2026-01-01T00:00:00Z",
        )
        for i, image_id in enumerate(ids_)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE annotation_image, annotation_imageprediction, annotation_patient")
    choose(order, measure)
    first_step = next(iter(queue_steps(clinician)))[1]
    assert image_rows_read(first_step[:1]) == 1
