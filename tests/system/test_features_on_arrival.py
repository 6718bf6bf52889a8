"""Features as images arrive, with real `celery worker` processes: images are uploaded, a
`default` worker fills the feature cache, and the retrain that follows computes no feature; a
worker killed in the middle of the backlog leaves nothing lost or computed twice."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation.models import Image
from annotation.services import record_label
from modeling.artifacts import feature_cache_dir
from modeling.models import PendingFeatures, RunStatus, TrainingRun
from painsite.synthetic_faces import draw_face, encode_jpeg, make_identity
from tests.conftest import api_client_for
from tests.modeling.training_data import SMALL_CONFIG, make_dataset
from tests.workers import celery_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.system, pytest.mark.slow]

# The worker computes what a default run would need: the defaults here are the tiny data's.
DEFAULTS = {
    "PAINSITE_TRAINING_IMAGE_SIZE": str(SMALL_CONFIG["image_size"]),
    "PAINSITE_TRAINING_SEED": str(SMALL_CONFIG["seed"]),
}
FEATURES_ON = {**DEFAULTS, "PAINSITE_FEATURES_ON_ARRIVAL": "1"}


def cached_names() -> set[str]:
    return {path.stem for path in feature_cache_dir().rglob("*.npy")}


def upload_face(client, patient: str, seed: int) -> int:
    rng = np.random.default_rng(seed)
    data = encode_jpeg(draw_face(make_identity(rng, "clinical"), 5, rng, size=64))
    response = client.post(
        reverse("api-images"),
        {"file": SimpleUploadedFile(f"{seed}.jpg", data, content_type="image/jpeg"), "patient": patient},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_uploaded_images_get_their_features_and_the_retrain_computes_none(
    researcher, clinician, test_broker_url, worker_log_dir
):
    with (
        celery_worker(broker_url=test_broker_url, queues=("default",), log_dir=worker_log_dir, **FEATURES_ON),
        celery_worker(broker_url=test_broker_url, queues=("training",), log_dir=worker_log_dir, **DEFAULTS),
    ):
        make_dataset(clinician)
        uploaded = upload_face(api_client_for(clinician), "C-train-1", seed=7)
        record_label(image=Image.objects.get(pk=uploaded), rater=clinician, nrs=5, kind="self_report")
        every_image = set(Image.objects.values_list("sha256", flat=True))
        assert len(every_image) == 29 and Image.objects.filter(pk=uploaded).exists()
        wait_for(
            lambda: PendingFeatures.objects.count() == 0 and cached_names() == every_image,
            timeout=300,
            message="the default worker to compute every image's features",
        )
        response = api_client_for(researcher).post(reverse("api-training-runs"), SMALL_CONFIG, format="json")
        assert response.status_code == 202, response.json()
        run_id = response.json()["id"]
        wait_for(lambda: not TrainingRun.objects.get(pk=run_id).is_active, timeout=300, message="the run to end")
    run = TrainingRun.objects.get(pk=run_id)
    assert run.status == RunStatus.SUCCEEDED, run.error
    # Train and validation patients: 5 patients x 4 images, and the uploaded one.
    assert (run.features_computed, run.features_cached) == (0, 21)
    body = api_client_for(researcher).get(reverse("api-training-run", args=[run_id])).json()
    assert (body["features_computed"], body["features_cached"]) == (0, 21)
    assert cached_names() == every_image


def test_a_worker_killed_in_the_backlog_leaves_its_images_to_the_next_one(clinician, test_broker_url, worker_log_dir):
    make_dataset(clinician)
    every_image = set(Image.objects.values_list("sha256", flat=True))
    # A killed worker's claim runs out after 3 s; beat asks every second.
    short_claims = {**FEATURES_ON, "PAINSITE_FEATURES_CLAIM_SECONDS": "3", "PAINSITE_FEATURES_KICK_SECONDS": "1"}
    with celery_worker(
        broker_url=test_broker_url, queues=("default",), log_dir=worker_log_dir, **short_claims
    ) as doomed:
        wait_for(
            lambda: PendingFeatures.objects.exclude(claimed_by="").exists(),
            interval=0.02,
            message="the worker to claim a batch",
        )
        doomed.kill()
    left = PendingFeatures.objects.count()
    assert left == 28 and PendingFeatures.objects.exclude(claimed_by="").exists(), "the batch finished before the kill"
    with celery_worker(
        broker_url=test_broker_url, queues=("default",), log_dir=worker_log_dir, beat=True, **short_claims
    ) as worker:
        wait_for(
            lambda: PendingFeatures.objects.count() == 0 and cached_names() == every_image,
            timeout=300,
            message="the next worker to take over the killed worker's claim",
        )
        log = worker.log()
    assert "Task modeling.tasks.compute_pending_features[" in log and "'computed': 28" in log
