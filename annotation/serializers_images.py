"""Shapes of image and import data in the API. Validation of the image itself is intake's job."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from annotation.models import Image, ImportJob


class ImageSerializer(serializers.ModelSerializer):
    patient = serializers.CharField(source="patient.code", read_only=True)
    cohort = serializers.CharField(source="patient.cohort", read_only=True)
    face_box = serializers.ListField(child=serializers.IntegerField(), allow_null=True, read_only=True)
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = [
            "id",
            "patient",
            "cohort",
            "sha256",
            "width",
            "height",
            "face_box",
            "captured_at",
            "uploaded_at",
            "label_count",
            "file_url",
            "thumbnail_url",
        ]
        read_only_fields = fields

    def get_file_url(self, image: Image) -> str:
        return reverse("api-image-file", args=[image.pk])

    def get_thumbnail_url(self, image: Image) -> str:
        return reverse("api-image-file", args=[image.pk]) + "?thumbnail=1"


class ImageUploadSerializer(serializers.Serializer):
    # Empty files reach intake, which names the file in its refusal.
    file = serializers.FileField(allow_empty_file=True)
    patient = serializers.CharField(max_length=64, help_text="the patient's pseudonymous code")
    captured_at = serializers.DateTimeField(required=False, allow_null=True)


class ArchiveUploadSerializer(serializers.Serializer):
    archive = serializers.FileField(
        allow_empty_file=True,
        help_text="a .zip with manifest.csv (filename,patient,cohort,nrs,kind,captured_at); see docs/import-format.md",
    )


class ImportJobSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True)
    is_finished = serializers.BooleanField(read_only=True)
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "status",
            "source_name",
            "total_rows",
            "processed_rows",
            "progress",
            "is_finished",
            "created_count",
            "duplicate_count",
            "rejected_count",
            "report",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "page_url",
        ]
        read_only_fields = fields

    def get_page_url(self, job: ImportJob) -> str:
        return reverse("import-detail", args=[job.pk])
