"""The training runs and model registry API."""

from __future__ import annotations

import pytest
from django.urls import reverse

from modeling.models import RunStatus, TrainingRun
from painsite.core.models import AuditEvent
from tests.conftest import api_client_for
from tests.modeling.registry_data import make_model_version
from tests.modeling.training_data import SMALL_CONFIG, make_dataset

pytestmark = pytest.mark.django_db
RUN_FIELDS = {"id", "status", "progress", "epoch", "loss", "message", "model_version", "error"}


@pytest.fixture
def small_dataset(clinician):
    return make_dataset(clinician, splits={"clinical": ["train", "val"], "simulated": ["test"]})


def start(user, **config):
    return api_client_for(user).post(reverse("api-training-runs"), {**SMALL_CONFIG, **config}, format="json")


def test_a_researcher_starts_a_run_and_gets_202(researcher, small_dataset, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = start(researcher, cohorts=["clinical"])
    assert response.status_code == 202
    body = response.json()
    assert RUN_FIELDS <= set(body)
    assert body["status"] == "queued" and body["progress"] == 0 and body["model_version"] is None
    assert body["config"]["cohorts"] == ["clinical"] and body["config"]["image_size"] == 64
    assert len(callbacks) == 1


def test_a_second_request_gets_409_with_the_active_run(researcher, small_dataset):
    first = start(researcher).json()
    response = start(researcher)
    assert response.status_code == 409
    assert response.json()["details"]["active_run"] == first["id"]
    assert str(first["id"]) in response.json()["error"]


def test_an_invalid_config_gets_400_naming_the_field(researcher, small_dataset):
    response = start(researcher, mode="turbo")
    assert response.status_code == 400
    assert response.json()["error"].startswith("mode: unknown mode 'turbo'")
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize("who,expected", [("clinician", 403), ("outsider", 403), (None, 401)])
def test_non_researchers_cannot_start_runs(request, who, expected, small_dataset):
    user = request.getfixturevalue(who) if who else None
    assert start(user).status_code == expected
    assert not TrainingRun.objects.exists()


def test_the_detail_and_cancel_endpoints(researcher, clinician, small_dataset):
    run_id = start(researcher).json()["id"]
    client = api_client_for(researcher)
    detail = client.get(reverse("api-training-run", args=[run_id])).json()
    assert detail["id"] == run_id and detail["status"] == "queued"
    assert api_client_for(clinician).post(reverse("api-training-run-cancel", args=[run_id])).status_code == 403
    response = client.post(reverse("api-training-run-cancel", args=[run_id]))
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert client.post(reverse("api-training-run-cancel", args=[run_id])).status_code == 409
    assert AuditEvent.objects.filter(action="training.cancel", actor=researcher).count() == 1


def test_the_run_list_costs_the_same_queries_for_many_runs(researcher, django_assert_num_queries):
    for _ in range(5):
        TrainingRun.objects.create(status=RunStatus.FAILED)
    make_model_version("v1")
    client = api_client_for(researcher)
    with django_assert_num_queries(3):  # permissions (user and role in one query), count, page
        response = client.get(reverse("api-training-runs"))
    assert response.json()["count"] == 6
    assert response.json()["results"][0]["model_version_name"] == "v1"


def test_the_model_version_list_is_light_and_the_detail_has_provenance(researcher, django_assert_num_queries):
    for number in range(1, 4):
        make_model_version(f"v{number}")
    client = api_client_for(researcher)
    with django_assert_num_queries(3):  # permissions (user and role in one query), count, page
        listing = client.get(reverse("api-model-versions")).json()
    assert listing["count"] == 3
    assert "test_predictions" not in listing["results"][0] and "metrics" not in listing["results"][0]
    version_id = listing["results"][0]["id"]
    detail = client.get(reverse("api-model-version", args=[version_id])).json()
    assert {"id", "name", "stage", "created_at", "training_run", "metrics"} <= set(detail)
    assert {"data_manifest_sha256", "split_sha256", "weights_sha256", "backbone", "library_versions"} <= set(detail)
    assert detail["random_init"] is True


def test_clinicians_cannot_see_the_registry(clinician):
    make_model_version("v1")
    assert api_client_for(clinician).get(reverse("api-model-versions")).status_code == 403
    assert api_client_for(clinician).get(reverse("api-training-runs")).status_code == 403


def test_a_head_request_on_the_run_list_reads_and_starts_nothing(researcher, small_dataset):
    """HEAD is answered like GET: before, the list view took it for the POST that starts a run."""
    response = api_client_for(researcher).head(reverse("api-training-runs"))
    assert response.status_code == 200
    assert not TrainingRun.objects.exists()
    assert not AuditEvent.objects.filter(action="training.start").exists()
