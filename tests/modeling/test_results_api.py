"""GET /api/model-versions/compare/: the paired comparison the compare page shows, as JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from modeling.api_results import ComparisonSerializer
from modeling.ml.comparison import compare_predictions
from modeling.models import ModelVersion, Stage
from tests.conftest import api_client_for
from tests.modeling.factories import LEVEL_NAMES, make_model_version, make_predictions, make_test_set

pytestmark = pytest.mark.django_db
URL = "/api/model-versions/compare/"


@pytest.fixture
def pair():
    test_set = make_test_set()
    a = make_model_version(name="v1", predictions=make_predictions(test_set, skill=0.8, seed=1))
    b = make_model_version(name="v2", predictions=make_predictions(test_set, skill=2.5, seed=2))
    return a, b


def expected_comparison(a, b, cohort: str) -> dict:
    """compare_predictions on the stored predictions of the cohort, aligned by image id."""
    chosen = sorted(
        (p for p in a.test_predictions if cohort == "combined" or p["cohort"] == cohort), key=lambda p: p["image_id"]
    )
    by_image = {p["image_id"]: p for p in b.test_predictions}
    return compare_predictions(
        np.array([p["level"] for p in chosen]),
        np.array([p["probabilities"] for p in chosen]),
        np.array([by_image[p["image_id"]]["probabilities"] for p in chosen]),
        np.array([p["patient"] for p in chosen]),
        LEVEL_NAMES,
        n_bootstrap=2000,
        seed=0,
    )


@pytest.mark.parametrize("cohort", ["clinical", "simulated", "combined"])
def test_it_returns_the_ml_cores_paired_comparison_on_the_stored_predictions(researcher, pair, cohort):
    a, b = pair
    response = api_client_for(researcher).get(URL, {"a": a.pk, "b": b.pk, "cohort": cohort})
    assert response.status_code == 200
    body = response.json()
    expected = expected_comparison(a, b, cohort)
    assert body["same_test_images"] is True and body["statement"] is None
    assert body["n_images"] == expected["n_images"] and body["n_patients"] == expected["n_patients"]
    for name in LEVEL_NAMES:
        level, paired = body["levels"][name], expected["levels"][name]
        assert level["delta_auroc"] == paired["delta_auroc"]
        assert level["delta_ci"] == paired["delta_ci"]
        assert level["delong_p"] == paired["delong_p"]
        assert level["delta_f1"] == paired["delta_f1"]
        # Per-version AUROC and CI are the stored ones, and agree with the paired computation.
        assert level["auroc_a"] == a.metrics[cohort]["levels"][name]["auroc"]
        assert level["ci_b"] == b.metrics[cohort]["levels"][name]["ci"]
        assert level["auroc_b"] == pytest.approx(paired["auroc_b"], abs=1e-12)
    assert body["macro"]["delta_auroc"] == expected["macro"]["delta_auroc"]
    assert body["macro"]["delta_ci"] == expected["macro"]["delta_ci"]
    assert body["bootstrap"]["resamples"] == 2000


def test_it_returns_exactly_the_numbers_the_compare_page_shows(client, researcher, pair):
    a, b = pair
    client.force_login(researcher)
    page = client.get(reverse("results-compare"), {"a": a.pk, "b": b.pk})
    shown = {section["cohort"]: section["comparison"] for section in page.context["sections"]}
    for cohort, comparison in shown.items():
        body = api_client_for(researcher).get(URL, {"a": a.pk, "b": b.pk, "cohort": cohort}).json()
        assert body == json.loads(json.dumps(ComparisonSerializer(comparison).data))


def test_it_leaves_out_the_paired_test_when_the_test_images_differ(researcher):
    a = make_model_version(name="v1", predictions=make_predictions(make_test_set(), seed=1))
    b = make_model_version(name="v2", predictions=make_predictions(make_test_set(first_image_id=900), seed=2))
    body = api_client_for(researcher).get(URL, {"a": a.pk, "b": b.pk, "cohort": "clinical"}).json()
    assert body["same_test_images"] is False
    assert "not evaluated on the same test images" in body["statement"]
    assert all(body["levels"][n]["delta_auroc"] is None and body["levels"][n]["delong_p"] is None for n in LEVEL_NAMES)
    assert body["levels"]["severe"]["auroc_b"] == b.metrics["clinical"]["levels"]["severe"]["auroc"]
    assert body["bootstrap"] is None


def test_a_cached_comparison_does_not_load_the_predictions_again(researcher, pair):
    a, b = pair
    client = api_client_for(researcher)
    client.get(URL, {"a": a.pk, "b": b.pk})
    with CaptureQueriesContext(connection) as captured:
        second = client.get(URL, {"a": a.pk, "b": b.pk})
    assert second.status_code == 200
    assert not any("predictions" in query["sql"] for query in captured.captured_queries)


def test_it_defaults_to_the_combined_cohort(researcher, pair):
    a, b = pair
    body = api_client_for(researcher).get(URL, {"a": a.pk, "b": b.pk}).json()
    assert body["cohort"] == "combined"
    assert body["n_images"] == len(a.test_predictions)


def test_it_rejects_an_unknown_cohort_with_a_json_error(researcher, pair):
    a, b = pair
    response = api_client_for(researcher).get(URL, {"a": a.pk, "b": b.pk, "cohort": "everyone"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("cohort:")


def test_it_rejects_a_missing_version_id_and_answers_404_for_an_unknown_one(researcher, pair):
    a, _ = pair
    client = api_client_for(researcher)
    missing = client.get(URL, {"a": a.pk})
    assert missing.status_code == 400 and missing.json()["error"].startswith("b:")
    unknown = client.get(URL, {"a": a.pk, "b": 987654})
    assert unknown.status_code == 404 and "error" in unknown.json()


def test_anonymous_callers_get_401_and_clinicians_and_outsiders_get_403(clinician, outsider, pair):
    a, b = pair
    assert api_client_for(None).get(URL, {"a": a.pk, "b": b.pk}).status_code == 401
    assert api_client_for(clinician).get(URL, {"a": a.pk, "b": b.pk}).status_code == 403
    assert api_client_for(outsider).get(URL, {"a": a.pk, "b": b.pk}).status_code == 403


def test_the_openapi_schema_documents_the_comparison(researcher):
    response = api_client_for(researcher).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    operation = json.loads(response.content)["paths"]["/api/model-versions/compare/"]["get"]
    assert {parameter["name"] for parameter in operation["parameters"]} >= {"a", "b", "cohort"}
    schema_ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref.endswith("/Comparison")


def test_a_promotion_after_the_comparison_was_cached_shows_the_new_stage(researcher, pair):
    a, b = pair
    client = api_client_for(researcher)
    assert client.get(URL, {"a": a.pk, "b": b.pk}).json()["b"]["stage"] == "candidate"
    ModelVersion.objects.filter(pk=b.pk).update(stage=Stage.PRODUCTION)
    assert client.get(URL, {"a": a.pk, "b": b.pk}).json()["b"]["stage"] == "production"
