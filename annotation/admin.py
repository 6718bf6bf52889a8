from __future__ import annotations

from django.contrib import admin

from annotation.models import Image, PainLabel, Patient
from painsite.core.admin import ReadOnlyAdmin


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["code", "cohort", "consent", "created_at"]
    list_filter = ["cohort", "consent"]
    search_fields = ["code"]
    # Consent changes go through the patient page, where they are audit-logged.
    readonly_fields = ["consent", "created_at"]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["id", "patient", "width", "height", "label_count", "observer_rater_count", "uploaded_at"]
    list_filter = ["patient__cohort"]
    search_fields = ["sha256", "patient__code"]
    list_select_related = ["patient"]
    # Files, hashes and the queue counters are written by the intake and labeling services only.
    readonly_fields = [
        "file",
        "thumbnail",
        "sha256",
        "width",
        "height",
        "face_box",
        "uploaded_by",
        "uploaded_at",
        "label_count",
        "observer_rater_count",
    ]


@admin.register(PainLabel)
class PainLabelAdmin(ReadOnlyAdmin):
    """Labels are append-only: the admin shows them and changes nothing."""

    list_display = ["id", "image", "rater", "nrs", "kind", "is_undo", "is_retraction", "created_at"]
    list_filter = ["kind", "is_undo", "is_retraction"]
    search_fields = ["rater__username", "image__patient__code"]
    list_select_related = ["image", "rater"]
