"""The Django admin shows the registry and the run history read-only: model versions are
immutable, stages change only through a promotion (with its reason), runs through services."""

from __future__ import annotations

from django.contrib import admin

from modeling import ward
from modeling.models import Assessment, ModelVersion, PromotionEvent, SplitAssignment, TrainingRun
from modeling.ward_models import CameraSource, StreamAssessment, WardAlert
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


@admin.register(CameraSource)
class CameraSourceAdmin(admin.ModelAdmin):
    """Admins register bedside cameras here (or through /api/ward/sources/); every change goes
    through the same service, so a new patient in a bed is audited the same way."""

    list_display = ["bed", "name", "patient", "interval_seconds", "active", "status", "last_frame_at"]
    list_filter = ["active", "status"]
    search_fields = ["name", "bed", "patient__code"]
    fields = ["name", "url", "bed", "patient", "interval_seconds", "active"]
    raw_id_fields = ["patient"]

    def save_model(self, request, obj: CameraSource, form, change: bool) -> None:
        values = {name: form.cleaned_data[name] for name in form.changed_data if name in ward.SOURCE_FIELDS}
        if change:
            current = CameraSource.objects.get(pk=obj.pk)
            ward.change_source(source=current, actor=request.user, **values)
        else:
            values = {name: form.cleaned_data[name] for name in self.fields if name in form.cleaned_data}
            created = ward.register_source(actor=request.user, **values)
            obj.pk = created.pk

    def delete_model(self, request, obj: CameraSource) -> None:
        ward.remove_source(source=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for source in queryset:
            ward.remove_source(source=source, actor=request.user)


@admin.register(StreamAssessment)
class StreamAssessmentAdmin(ReadOnlyAdmin):
    list_display = ["slot", "bed", "patient", "kind", "level", "severe_probability", "frame_at", "model_version"]
    list_filter = ["kind", "level"]


@admin.register(WardAlert)
class WardAlertAdmin(ReadOnlyAdmin):
    list_display = ["raised_at", "bed", "patient", "severe_run", "acknowledged_at", "acknowledged_by", "escalated_at"]
