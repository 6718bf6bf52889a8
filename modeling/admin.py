"""The Django admin shows the registry and the run history read-only: model versions are
immutable, stages change only through a promotion (with its reason), runs through services."""

from __future__ import annotations

from django.contrib import admin

from modeling.models import Assessment, ModelVersion, PromotionEvent, SplitAssignment, TrainingRun
from painsite.core.admin import ReadOnlyAdmin


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ["name", "stage", "cohorts", "mode", "backbone", "created_at", "training_run"]
    list_filter = ["stage", "mode", "backbone"]
    search_fields = ["name", "weights_sha256", "data_manifest_sha256"]
    # The manifest and per-image predictions are large: the API and evaluate command show them.
    exclude = ["data_manifest", "test_predictions"]


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "status", "queue", "progress", "epoch", "attempts", "requested_by", "created_at"]
    list_filter = ["status", "queue"]
    exclude = ["data_manifest"]


@admin.register(PromotionEvent)
class PromotionEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "model_version", "from_stage", "to_stage", "actor", "reason"]
    list_filter = ["to_stage"]


@admin.register(Assessment)
class AssessmentAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "model_version", "patient", "image", "level", "assessed_by"]
    list_filter = ["level", "model_version"]


@admin.register(SplitAssignment)
class SplitAssignmentAdmin(ReadOnlyAdmin):
    list_display = ["patient", "split", "seed", "assigned_at"]
    list_filter = ["split"]
