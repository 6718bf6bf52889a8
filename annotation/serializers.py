"""Shapes of patients, labels and queue items in the API. Rules live in annotation.services."""

from __future__ import annotations

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from annotation.models import RECORDABLE_CONSENT, Cohort, Consent, Image, LabelKind, PainLabel, Patient
from annotation.services import NRS_MAX, NRS_MIN


class PatientSerializer(serializers.ModelSerializer):
    image_count = serializers.IntegerField(read_only=True)
    labeled_image_count = serializers.IntegerField(read_only=True)
    consent_recorded_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Patient
        fields = [
            "code",
            "cohort",
            "consent",
            "consent_recorded_by",
            "consent_recorded_at",
            "created_at",
            "image_count",
            "labeled_image_count",
        ]
        read_only_fields = fields


class PatientCreateSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64)
    cohort = serializers.ChoiceField(choices=Cohort.choices)


class ConsentSerializer(serializers.Serializer):
    consent = serializers.ChoiceField(choices=[(value, Consent(value).label) for value in RECORDABLE_CONSENT])
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class StrictNrsField(serializers.IntegerField):
    """A whole number 0-10. Unlike IntegerField it refuses booleans and 5.0-style floats."""

    default_error_messages = {
        "invalid": format_lazy(_("nrs must be a whole number from {low} to {high}."), low=NRS_MIN, high=NRS_MAX)
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or isinstance(data, float):
            self.fail("invalid")
        return super().to_internal_value(data)


class LabelCreateSerializer(serializers.Serializer):
    nrs = StrictNrsField(
        min_value=NRS_MIN,
        max_value=NRS_MAX,
        error_messages={
            "required": _("nrs is required: a whole number from 0 to 10."),
            "min_value": _("nrs must be a whole number from 0 to 10."),
            "max_value": _("nrs must be a whole number from 0 to 10."),
            "null": _("nrs is required: a whole number from 0 to 10."),
        },
    )
    kind = serializers.ChoiceField(choices=LabelKind.choices, default=LabelKind.OBSERVER)


class LabelSerializer(serializers.ModelSerializer):
    rater = serializers.CharField(source="rater.username", read_only=True)
    superseded = serializers.SerializerMethodField()

    class Meta:
        model = PainLabel
        fields = [
            "id",
            "image",
            "rater",
            "nrs",
            "kind",
            "created_at",
            "supersedes",
            "superseded",
            "is_undo",
            "is_retraction",
        ]
        read_only_fields = fields

    def get_superseded(self, label: PainLabel) -> bool:
        # Filled in by the views in one query for a whole page (see api_labeling).
        superseded_ids = self.context.get("superseded_ids")
        if superseded_ids is not None:
            return label.pk in superseded_ids
        return PainLabel.objects.filter(supersedes=label).exists()


class QueueItemSerializer(serializers.ModelSerializer):
    patient = serializers.CharField(source="patient.code", read_only=True)
    cohort = serializers.CharField(source="patient.cohort", read_only=True)
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    reason = serializers.CharField(source="queue_reason", read_only=True)

    class Meta:
        model = Image
        fields = [
            "id",
            "patient",
            "cohort",
            "width",
            "height",
            "face_box",
            "captured_at",
            "label_count",
            "observer_rater_count",
            "reason",
            "file_url",
            "thumbnail_url",
        ]
        read_only_fields = fields

    def get_file_url(self, image: Image) -> str:
        return f"/api/images/{image.pk}/file/"

    def get_thumbnail_url(self, image: Image) -> str:
        return f"/api/images/{image.pk}/file/?thumbnail=1"
