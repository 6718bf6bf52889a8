"""The labeling queue's predictions (modeling/queue_predictions.py) with a real tiny model: after a
promotion, as images arrive, no face no prediction, and an older version's predictions replaced."""

from __future__ import annotations

import numpy as np
import pytest
from celery import current_app

from annotation.intake import store_image
from annotation.models import Image, ImagePrediction, QueueOrder
from annotation.queue_order import set_queue_order
from annotation.selectors import next_image_for
from modeling import feature_backlog, queue_predictions, services
from modeling.artifacts import feature_cache_dir
from modeling.ml.predict import load_model
from modeling.ml.uncertainty import entropy, margin
from modeling.models import Stage
from modeling.tasks import predict_queue_images
from tests.annotation.factories import make_image, make_label, make_patient
from tests.modeling.tiny_model import make_face_jpeg, make_model_version, tiny_model

pytestmark = pytest.mark.django_db

# make_face_jpeg: OpenCV finds a face for these seeds at NRS 0, 3, 6 and 9 (and for 11 and 14 at 8).
FACE_SEEDS = (1, 3, 5, 9)


@pytest.fixture(autouse=True)
def small_default_run(settings):
    """The feature backlog computes features as a default run at 64 px would, as the tiny model's."""
    settings.PAINSITE_TRAINING_IMAGE_SIZE = 64
    settings.PAINSITE_FEATURE_PATH = "float32"
    queue_predictions._loaded.clear()


@pytest.fixture
def patient():
    return make_patient("P-queue")


def store_face(patient, seed: int, nrs: int = 5) -> Image:
    return store_image(
        data=make_face_jpeg(nrs=nrs, seed=seed), filename=f"face-{seed}.jpg", patient=patient, uploaded_by=None
    ).image


@pytest.fixture
def faces(patient) -> list[Image]:
    images = [store_face(patient, seed, nrs) for seed, nrs in zip(FACE_SEEDS, (0, 3, 6, 9))]
    assert all(image.face_box for image in images)
    return images


def ml_core_probabilities(version, image: Image) -> np.ndarray:
    """The same image through the ML core directly (no feature cache): what the row must hold."""
    from modeling.ml.data import Record

    model = load_model(version.weights_path)
    record = Record(image.file.path, image.sha256, tuple(image.face_box), None, 0, "p", "clinical", image.pk)
    return model.predict_records([record])[0]


def test_after_a_promotion_every_never_labeled_face_is_predicted(faces, patient, clinician):
    no_face = make_image(patient)
    labeled = store_face(patient, 14, nrs=8)
    make_label(labeled, clinician, nrs=4)
    version = make_model_version(tiny_model(), name="v1", stage=Stage.PRODUCTION)

    report = queue_predictions.predict_unlabeled(version_id=version.pk)

    assert (report.version, report.predicted, report.unreadable) == ("v1", 4, 0)
    rows = {row.image_id: row for row in ImagePrediction.objects.all()}
    # No face, no score; a labeled image is no longer the queue's to order.
    assert set(rows) == {image.pk for image in faces} and no_face.face_box is None
    for image in faces:
        probabilities = ml_core_probabilities(version, image)
        row = rows[image.pk]
        assert row.model_version_id == version.pk
        assert row.predicted_level == int(probabilities.argmax())
        assert row.predicted_level_name == ["none", "mild", "moderate", "severe"][row.predicted_level]
        assert row.entropy == pytest.approx(entropy([probabilities])[0], abs=1e-3)
        assert row.margin == pytest.approx(margin([probabilities])[0], abs=1e-3)


def test_level_ranks_count_each_predicted_level_from_zero_in_arrival_order(faces):
    version = make_model_version(tiny_model(), name="v1", stage=Stage.PRODUCTION)
    queue_predictions.predict_unlabeled(version_id=version.pk)
    by_level: dict[int, list[int]] = {}
    for row in ImagePrediction.objects.order_by("image_id"):
        by_level.setdefault(row.predicted_level, []).append(row.level_rank)
    assert all(ranks == list(range(len(ranks))) for ranks in by_level.values())


def test_a_promotion_replaces_the_older_versions_predictions(faces, admin_user, django_capture_on_commit_callbacks):
    old = make_model_version(tiny_model(), name="v1", stage=Stage.PRODUCTION)
    queue_predictions.predict_unlabeled(version_id=old.pk)
    before = dict(ImagePrediction.objects.values_list("image_id", "margin"))
    new = make_model_version(tiny_model(head_hidden=16), name="v2", stage=Stage.CANDIDATE)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.promote_model_version(
            version=new, actor=admin_user, reason="better on the test patients", confirm_random_init=True
        )
    assert len(callbacks) == 1
    # The worker's task, run here: it predicts with the version now in production.
    result = predict_queue_images.apply(args=[new.pk]).get()

    assert result["version"] == "v2" and result["predicted"] == 4 and result["removed"] == 0
    assert set(ImagePrediction.objects.values_list("model_version_id", flat=True)) == {new.pk}
    after = dict(ImagePrediction.objects.values_list("image_id", "margin"))
    assert set(after) == set(before) and after != before


def test_the_promotion_sends_the_prediction_task_to_the_default_queue(
    faces, admin_user, test_broker_url, django_capture_on_commit_callbacks
):
    version = make_model_version(tiny_model(), name="v1", stage=Stage.CANDIDATE)
    with django_capture_on_commit_callbacks(execute=True):
        services.promote_model_version(
            version=version, actor=admin_user, reason="first model", confirm_random_init=True
        )
    with current_app.connection_for_read() as connection:
        queue = connection.SimpleQueue("default")
        message = queue.get(timeout=5)
        assert message.headers["task"] == queue_predictions.PREDICT_QUEUE_TASK
        assert message.headers["argsrepr"] in (f"({version.pk},)", f"[{version.pk}]")
        message.ack()
        queue.close()


def test_a_task_for_a_version_no_longer_in_production_changes_nothing(faces):
    old = make_model_version(tiny_model(), name="v1", stage=Stage.ARCHIVED)
    make_model_version(tiny_model(head_hidden=16), name="v2", stage=Stage.PRODUCTION)
    report = queue_predictions.predict_unlabeled(version_id=old.pk)
    assert report.predicted == 0 and "no longer" in report.skipped and not ImagePrediction.objects.exists()


def test_without_a_production_model_nothing_is_predicted(faces):
    assert queue_predictions.predict_unlabeled().skipped == "no production model"
    assert queue_predictions.predict_new_images([image.pk for image in faces]).predicted == 0
    assert not ImagePrediction.objects.exists()


def test_a_new_upload_is_predicted_once_its_features_are_cached(patient, faces):
    version = make_model_version(tiny_model(), name="v1", stage=Stage.PRODUCTION)
    queue_predictions.predict_unlabeled(version_id=version.pk)
    ranks_before = dict(ImagePrediction.objects.values_list("image_id", "level_rank"))
    arrived = store_face(patient, 11, nrs=8)
    no_face = make_image(patient)

    report = feature_backlog.work_through_backlog()

    assert report.computed >= 1
    row = ImagePrediction.objects.get(image=arrived)
    assert row.model_version_id == version.pk
    # It joins the end of its predicted level's turn.
    same_level = [
        rank
        for image_id, rank in ranks_before.items()
        if ImagePrediction.objects.get(image_id=image_id).predicted_level == row.predicted_level
    ]
    assert row.level_rank == (max(same_level) + 1 if same_level else 0)
    assert not ImagePrediction.objects.filter(image=no_face).exists()
    assert any(feature_cache_dir().rglob(f"{arrived.sha256}*"))


def test_the_queue_orders_by_the_stored_predictions(faces, clinician, researcher):
    version = make_model_version(tiny_model(), name="v1", stage=Stage.PRODUCTION)
    queue_predictions.predict_unlabeled(version_id=version.pk)
    set_queue_order(order=QueueOrder.UNCERTAINTY, uncertainty_measure="margin", actor=researcher)
    least_confident = ImagePrediction.objects.order_by("margin", "image_id").first().image_id
    assert next_image_for(clinician).pk == least_confident
