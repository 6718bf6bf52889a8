from __future__ import annotations

from django.urls import path

from modeling import api_training, views_learning_loop, views_training

urlpatterns = [
    path("training/", views_training.training_page, name="training"),
    path("training/loop/", views_learning_loop.learning_loop_page, name="learning-loop"),
    path("training/runs/<int:pk>/progress/", views_training.training_run_progress, name="training-run-progress"),
    path("training/runs/<int:pk>/cancel/", views_training.training_run_cancel, name="training-run-cancel"),
    path("model-versions/<int:pk>/promote/", views_training.promote_version, name="model-version-promote"),
    path("api/training-runs/", api_training.training_runs, name="api-training-runs"),
    path("api/training-runs/<int:pk>/", api_training.training_run_detail, name="api-training-run"),
    path("api/training-runs/<int:pk>/cancel/", api_training.cancel_training_run, name="api-training-run-cancel"),
    path("api/model-versions/", api_training.model_versions, name="api-model-versions"),
    path("api/model-versions/<int:pk>/", api_training.model_version_detail, name="api-model-version"),
    path("api/model-versions/<int:pk>/promote/", api_training.promote_model_version, name="api-model-version-promote"),
]
