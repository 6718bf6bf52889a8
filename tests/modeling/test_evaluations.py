"""Test snapshots and evaluations: freezing the test set, scoring a version on it, the API."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.urls import reverse

from annotation.services import record_label, withdraw_consent
from modeling import evaluations
from modeling.ml.comparison import compare_predictions
from modeling.ml.metrics import evaluate_predictions
from modeling.models import Evaluation, EvaluationStatus, ModelVersion
from modeling.models import TestSnapshot as Snapshot  # a "Test..." name would look like a test class to pytest
from modeling.snapshots import snapshot_sha256, take_test_snapshot
from painsite.core.models import AuditEvent
from tests.conftest import api_client_for
from tests.modeling.factories import (
    LEVEL_NAMES,
    make_predictions,
    make_test_set,
    record_evaluation,
)
from tests.modeling.factories import make_model_version as make_scored_version
from tests.modeling.tiny_model import make_model_version, tiny_model
from tests.modeling.training_data import make_dataset

pytestmark = pytest.mark.django_db
COMPARE = "/api/model-versions/compare/"


def evaluations_url(version) -> str:
    return reverse("api-model-version-evaluations", args=[version.pk])


@pytest.fixture
def dataset(clinician):
    return make_dataset(clinician)


@pytest.fixture
def version(dataset):
    return make_model_version(tiny_model(), name="v1")


def test_a_snapshot_holds_the_labelled_test_images_of_every_cohort_with_their_reference_levels(dataset):
    snapshot = take_test_snapshot(label_rule="self_report_first")
    assert {item["patient"] for item in snapshot.images} == {"C-test-4", "S-test-3"}
    assert snapshot.n_images == 8 and snapshot.n_patients == 2
    assert sorted(item["nrs"] for item in snapshot.images) == [0, 0, 2, 2, 5, 5, 8, 8]
    assert {(item["nrs"], item["level"]) for item in snapshot.images} == {(0, 0), (2, 1), (5, 2), (8, 3)}
    assert snapshot.sha256 == snapshot_sha256(snapshot.images)


def test_identical_content_is_one_snapshot_and_a_new_label_makes_another(dataset, clinician):
    first = take_test_snapshot(label_rule="self_report_first")
    assert take_test_snapshot(label_rule="self_report_first").pk == first.pk
    test_image = dataset[3].images.first()  # C-test-4
    record_label(image=test_image, rater=clinician, nrs=9, kind="self_report")
    second = take_test_snapshot(label_rule="self_report_first")
    assert second.pk != first.pk and second.sha256 != first.sha256
    assert Snapshot.objects.count() == 2


def test_scoring_a_version_on_a_snapshot_stores_the_ml_cores_metrics_of_its_probabilities(version, settings):
    settings.PAINSITE_BOOTSTRAP_RESAMPLES = 50
    snapshot = take_test_snapshot(label_rule="self_report_first")
    evaluation, queued = evaluations.request_evaluation(
        version=version, snapshot=snapshot, requested_by=None, enqueue=False
    )
    assert queued and evaluation.status == EvaluationStatus.QUEUED
    assert evaluations.run_evaluation(evaluation.pk) == EvaluationStatus.SUCCEEDED
    evaluation.refresh_from_db()
    assert evaluation.progress == 1.0 and evaluation.resamples == 50 and evaluation.seed == version.seed
    assert [p["image_id"] for p in evaluation.predictions] == [item["image_id"] for item in snapshot.images]
    rows = evaluation.predictions
    expected = evaluate_predictions(
        np.array([p["level"] for p in rows]),
        np.array([p["nrs"] for p in rows], dtype=float),
        np.array([p["probabilities"] for p in rows]),
        [p["patient"] for p in rows],
        LEVEL_NAMES,
        n_bootstrap=50,
        seed=version.seed,
        level_ranges=[(0, 0), (1, 3), (4, 6), (7, 10)],
    )
    assert evaluation.metrics["combined"] == json.loads(json.dumps(expected))
    # A second delivery of the same task finds nothing to do.
    assert evaluations.run_evaluation(evaluation.pk) == EvaluationStatus.SUCCEEDED


def test_a_researcher_queues_an_evaluation_on_the_current_test_set_and_a_repeat_returns_it(researcher, version):
    client = api_client_for(researcher)
    response = client.post(evaluations_url(version), {"snapshot": "current"}, format="json")
    assert response.status_code == 202
    body = response.json()
    snapshot = Snapshot.objects.get()
    assert body["status"] == "queued" and body["progress"] == 0.0 and body["model_version"] == version.pk
    assert body["snapshot"]["id"] == snapshot.pk and body["snapshot"]["sha256"] == snapshot.sha256
    assert body["snapshot"]["n_images"] == 8 and body["snapshot"]["n_patients"] == 2
    assert AuditEvent.objects.filter(action="evaluation.request", object_id=str(body["id"])).exists()

    again = client.post(evaluations_url(version), {"snapshot": snapshot.pk}, format="json")
    assert again.status_code == 202 and again.json()["id"] == body["id"]
    assert Evaluation.objects.count() == 1

    evaluations.run_evaluation(body["id"])
    finished = client.post(evaluations_url(version), {"snapshot": "current"}, format="json")
    assert finished.status_code == 200 and finished.json()["status"] == "succeeded"
    listed = client.get(evaluations_url(version)).json()["results"]
    assert [item["id"] for item in listed] == [body["id"]] and "predictions" not in listed[0]
    snapshots = client.get(reverse("api-test-snapshots")).json()["results"]
    assert [(item["id"], item["n_evaluations"]) for item in snapshots] == [(snapshot.pk, 1)]
    assert "images" not in snapshots[0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"snapshot": "newest"}, 'snapshot: give "current" or the id of a test snapshot'),
        ({"snapshot": 987654}, "snapshot: there is no test snapshot 987654"),
    ],
)
def test_a_bad_snapshot_is_refused_with_a_json_error_and_nothing_is_stored(researcher, version, body, message):
    response = api_client_for(researcher).post(evaluations_url(version), body, format="json")
    assert response.status_code == 400 and response.json()["error"] == message
    assert not Evaluation.objects.exists() and not Snapshot.objects.exists()


def test_without_labelled_test_images_the_request_is_refused_and_no_split_is_assigned(researcher, clinician):
    version = make_model_version(tiny_model(), name="v1")
    response = api_client_for(researcher).post(evaluations_url(version), {"snapshot": "current"}, format="json")
    assert response.status_code == 400 and "no labelled test images" in response.json()["error"]
    assert not Snapshot.objects.exists()


def test_a_snapshot_holding_a_withdrawn_patient_is_not_scored_again(researcher, admin_user, version, dataset):
    snapshot = take_test_snapshot(label_rule="self_report_first")
    withdraw_consent(patient=dataset[3], actor=admin_user, reason="asked to leave the study")
    response = api_client_for(researcher).post(evaluations_url(version), {"snapshot": snapshot.pk}, format="json")
    assert response.status_code == 400 and "withdrew consent" in response.json()["error"]
    assert not Evaluation.objects.exists()
    current = api_client_for(researcher).post(evaluations_url(version), {"snapshot": "current"}, format="json")
    assert current.status_code == 202 and current.json()["snapshot"]["n_images"] == 4


def test_clinicians_may_not_evaluate_and_anonymous_callers_get_401(clinician, outsider, version):
    assert api_client_for(clinician).post(evaluations_url(version), {}, format="json").status_code == 403
    assert api_client_for(clinician).get(evaluations_url(version)).status_code == 403
    assert api_client_for(outsider).post(evaluations_url(version), {}, format="json").status_code == 403
    assert api_client_for(None).post(evaluations_url(version), {}, format="json").status_code == 401
    assert api_client_for(clinician).get(reverse("api-test-snapshots")).status_code == 403
    assert not Evaluation.objects.exists()


# ---------------------------------------------------------------------------------------------
# Pairing


def test_versions_on_different_snapshots_are_not_paired_and_the_answer_says_why(researcher):
    a = make_scored_version(name="v1", predictions=make_predictions(make_test_set(), seed=1))
    b = make_scored_version(name="v2", predictions=make_predictions(make_test_set(first_image_id=900), seed=2))
    body = api_client_for(researcher).get(COMPARE, {"a": a.pk, "b": b.pk}).json()
    assert body["paired"] is False and body["snapshot"] is None
    assert "no test snapshot holds a finished evaluation of both" in body["reason"]
    assert all(body["levels"][name]["p_value"] is None for name in LEVEL_NAMES)
    assert body["a"]["snapshot"] == a.evaluations.get().snapshot_id


def test_once_both_are_evaluated_on_one_snapshot_the_comparison_is_paired_on_it(researcher):
    old_set, new_set = make_test_set(), make_test_set(patients_per_cohort=7, first_image_id=500)
    a = make_scored_version(name="v1", predictions=make_predictions(old_set, skill=0.8, seed=1))
    b = make_scored_version(name="v2", predictions=make_predictions(new_set, skill=2.5, seed=2))
    on_new = record_evaluation(a, make_predictions(new_set, skill=0.8, seed=3))
    snapshot = b.evaluations.get(at_training=True).snapshot
    assert on_new.snapshot_id == snapshot.pk

    body = api_client_for(researcher).get(COMPARE, {"a": a.pk, "b": b.pk, "cohort": "combined"}).json()
    assert body["paired"] is True and body["reason"] is None
    assert body["snapshot"]["id"] == snapshot.pk and body["snapshot"]["sha256"] == snapshot.sha256
    assert (body["snapshot"]["n_images"], body["snapshot"]["n_patients"]) == (56, 14)
    assert body["a"]["evaluation"] == on_new.pk
    by_image = {p["image_id"]: p for p in b.evaluations.get().predictions}
    rows = sorted(on_new.predictions, key=lambda p: p["image_id"])
    expected = compare_predictions(
        np.array([p["level"] for p in rows]),
        np.array([p["probabilities"] for p in rows]),
        np.array([by_image[p["image_id"]]["probabilities"] for p in rows]),
        np.array([p["patient"] for p in rows]),
        LEVEL_NAMES,
        n_bootstrap=2000,
        seed=0,
    )
    for name in LEVEL_NAMES:
        assert body["levels"][name]["p_value"] == expected["levels"][name]["delong_p"]
        assert body["levels"][name]["delta_ci"] == expected["levels"][name]["delta_ci"]
        assert body["levels"][name]["auroc_a"] == on_new.metrics["combined"]["levels"][name]["auroc"]


def test_the_newest_shared_snapshot_is_used(researcher):
    first_set, second_set = make_test_set(), make_test_set(first_image_id=300, seed=1)
    a = make_scored_version(name="v1", predictions=make_predictions(first_set, seed=1))
    b = make_scored_version(name="v2", predictions=make_predictions(first_set, seed=2))
    newer = record_evaluation(a, make_predictions(second_set, seed=3))
    record_evaluation(b, make_predictions(second_set, seed=4))
    body = api_client_for(researcher).get(COMPARE, {"a": a.pk, "b": b.pk}).json()
    assert body["paired"] is True and body["snapshot"]["id"] == newer.snapshot_id


def test_the_openapi_schema_documents_evaluations_snapshots_and_pairing(researcher):
    schema = json.loads(api_client_for(researcher).get("/api/schema/", {"format": "json"}).content)
    paths = schema["paths"]
    evaluations_path = paths["/api/model-versions/{id}/evaluations/"]
    assert {"get", "post"} <= set(evaluations_path)
    assert {"200", "202", "400"} <= set(evaluations_path["post"]["responses"])
    assert "get" in paths["/api/test-snapshots/"]
    components = schema["components"]["schemas"]
    assert {"paired", "snapshot", "reason"} <= set(components["Comparison"]["properties"])
    assert {"id", "created_at", "n_images", "n_patients", "sha256"} <= set(components["SnapshotSummary"]["properties"])
    assert {"p_value", "delta_ci"} <= set(components["LevelComparison"]["properties"])


def test_a_version_whose_weights_are_gone_fails_with_the_reason_and_a_new_request_queues_it_again(researcher, version):
    ModelVersion.objects.filter(pk=version.pk).update(weights_path="/nonexistent/weights.pt")
    client = api_client_for(researcher)
    queued = client.post(evaluations_url(version), {"snapshot": "current"}, format="json").json()
    assert evaluations.run_evaluation(queued["id"]) == EvaluationStatus.FAILED
    failed = Evaluation.objects.get(pk=queued["id"])
    assert failed.status == EvaluationStatus.FAILED and "/nonexistent/weights.pt" in failed.error
    again = client.post(evaluations_url(version), {"snapshot": "current"}, format="json")
    assert again.status_code == 202 and again.json()["id"] == queued["id"] and again.json()["status"] == "queued"
    assert again.json()["error"] == "" and Evaluation.objects.count() == 1
