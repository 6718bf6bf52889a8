from __future__ import annotations

from django.urls import path

from modeling import api_evaluations, api_results, views_results

urlpatterns = [
    path("results/", views_results.results_list, name="results"),
    path("results/paper/", views_results.results_paper, name="results-paper"),
    path("results/compare/", views_results.results_compare, name="results-compare"),
    path("results/<int:pk>/", views_results.version_detail, name="results-version"),
    path("api/model-versions/compare/", api_results.compare_model_versions, name="api-model-versions-compare"),
    path(
        "api/model-versions/<int:pk>/evaluations/",
        api_evaluations.model_version_evaluations,
        name="api-model-version-evaluations",
    ),
    path("api/test-snapshots/", api_evaluations.test_snapshots, name="api-test-snapshots"),
]
