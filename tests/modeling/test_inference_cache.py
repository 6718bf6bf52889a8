"""The process-wide model cache: one load per version, promotions picked up, consistent answers."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from modeling.inference import ModelCache, models
from modeling.ml.levels import PainLevels
from modeling.models import Stage
from modeling.services import promote_model_version
from tests.conftest import api_client_for
from tests.modeling.tiny_model import make_face_jpeg, make_model_version, tiny_model

LEVEL_NAMES = PainLevels.parse().names


def assess(client, jpeg: bytes) -> dict:
    upload = SimpleUploadedFile("face.jpg", jpeg, content_type="image/jpeg")
    response = client.post("/api/assessments/", {"file": upload}, format="multipart")
    assert response.status_code == 200, response.json()
    return response.json()


def probabilities_of(body: dict) -> np.ndarray:
    return np.array([body["probabilities"][name] for name in LEVEL_NAMES])


def test_the_model_is_loaded_once_across_many_requests(clinician):
    make_model_version(tiny_model(), name="v1", stage=Stage.PRODUCTION)
    models.clear()
    client = api_client_for(clinician)
    bodies = [assess(client, make_face_jpeg(seed=seed)) for seed in (1, 3, 4, 6, 9, 11)]
    assert models.loads == 1
    assert {body["model_version_name"] for body in bodies} == {"v1"}


def test_simultaneous_first_requests_share_one_load(db):
    version = make_model_version(tiny_model(), name="v1", stage=Stage.PRODUCTION)
    cache = ModelCache(capacity=2)
    served = []
    start = threading.Barrier(4)

    def get() -> None:
        start.wait()
        served.append(cache.get(version))

    threads = [threading.Thread(target=get) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.loads == 1
    assert len({id(model) for model in served}) == 1


def test_the_cache_keeps_only_the_most_recently_used_versions(db):
    first = make_model_version(tiny_model(), name="v1", stage=Stage.CANDIDATE)
    second = make_model_version(tiny_model(), name="v2", stage=Stage.CANDIDATE)
    cache = ModelCache(capacity=1)
    cache.get(first)
    cache.get(second)
    assert cache.loaded_versions() == [second.pk]
    cache.get(first)
    assert cache.loads == 3


def test_a_promotion_is_picked_up_by_the_next_request(clinician, admin_user):
    first = make_model_version(tiny_model(), name="v1", stage=Stage.PRODUCTION)
    second = make_model_version(tiny_model(head_hidden=0), name="v2", stage=Stage.CANDIDATE)
    models.clear()
    client = api_client_for(clinician)
    jpeg = make_face_jpeg(seed=3)
    before = assess(client, jpeg)
    promote_model_version(version=second, actor=admin_user, reason="better severe-pain AUROC", confirm_random_init=True)
    after = assess(client, jpeg)
    assert (before["model_version"], after["model_version"]) == (first.pk, second.pk)
    assert not np.allclose(probabilities_of(before), probabilities_of(after))
    assert models.loads == 2


@pytest.mark.django_db(transaction=True)
def test_requests_during_a_production_switch_each_get_one_consistent_version(clinician, admin_user):
    versions = [
        make_model_version(tiny_model(), name="v1", stage=Stage.PRODUCTION),
        make_model_version(tiny_model(head_hidden=0), name="v2", stage=Stage.CANDIDATE),
    ]
    jpeg = make_face_jpeg(seed=4)
    client = api_client_for(clinician)
    expected = {}
    for index, version in enumerate(versions):
        if index:
            promote_model_version(version=version, actor=admin_user, reason="switch", confirm_random_init=True)
        expected[version.pk] = probabilities_of(assess(client, jpeg))
    assert not np.allclose(*expected.values())

    answers: list[dict] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def keep_assessing() -> None:
        own_client = api_client_for(clinician)
        try:
            while not done.is_set():
                answers.append(assess(own_client, jpeg))
        except BaseException as error:  # surfaced in the main thread below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=keep_assessing) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for round_number in range(6):
            promote_model_version(
                version=versions[round_number % 2],
                actor=admin_user,
                reason="switch back and forth",
                confirm_random_init=True,
            )
            # Let a few requests through under this version before switching again.
            wanted = len(answers) + 3
            for _ in range(3000):
                if len(answers) >= wanted or errors:
                    break
                time.sleep(0.01)
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert not errors, errors
    assert {body["model_version"] for body in answers} == set(expected)
    for body in answers:
        np.testing.assert_allclose(probabilities_of(body), expected[body["model_version"]], atol=1e-6)
