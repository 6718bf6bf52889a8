"""Shapes of training runs and model versions in the API. Rules live in services."""

from __future__ import annotations

from rest_framework import serializers

from modeling.models import ModelVersion, PromotionEvent, TrainingRun
from modeling.training_config import COHORTS, LABEL_RULES, MODES


class TrainingRunRequestSerializer(serializers.Serializer):
    """The body of POST /api/training-runs/ (documentation; services.start_training checks it)."""

    cohorts = serializers.ListField(child=serializers.ChoiceField(choices=COHORTS), required=False)
    mode = serializers.ChoiceField(choices=MODES, required=False)
    epochs = serializers.IntegerField(required=False)
    lr = serializers.FloatField(required=False)
    batch_size = serializers.IntegerField(required=False)
    label_rule = serializers.ChoiceField(choices=LABEL_RULES, required=False)
    seed = serializers.IntegerField(required=False)
    image_size = serializers.IntegerField(required=False)
    patience = serializers.IntegerField(required=False)


class TrainingRunSerializer(serializers.ModelSerializer):
    model_version = serializers.SerializerMethodField()
    model_version_name = serializers.SerializerMethodField()
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    epochs = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRun
        fields = [
            "id", "status", "progress", "epoch", "epochs", "loss", "message", "eta_seconds",
            "model_version", "model_version_name", "error", "config", "queue", "cancel_requested",
            "attempts", "requested_by", "created_at", "started_at", "finished_at", "heartbeat_at",
        ]  # fmt: skip
        read_only_fields = fields

    def _version(self, run: TrainingRun) -> ModelVersion | None:
        try:
            return run.model_version
        except ModelVersion.DoesNotExist:
            return None

    def get_model_version(self, run: TrainingRun) -> int | None:
        version = self._version(run)
        return version.pk if version else None

    def get_model_version_name(self, run: TrainingRun) -> str | None:
        version = self._version(run)
        return version.name if version else None

    def get_epochs(self, run: TrainingRun) -> int | None:
        return (run.config or {}).get("epochs")


class PromotionEventSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = PromotionEvent
        fields = ["id", "from_stage", "to_stage", "actor", "reason", "created_at"]
        read_only_fields = fields


class ModelVersionListSerializer(serializers.ModelSerializer):
    """Light: no manifest, predictions or curves (use the detail endpoint)."""

    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    random_init = serializers.BooleanField(source="is_random_init", read_only=True)

    class Meta:
        model = ModelVersion
        fields = [
            "id", "name", "stage", "created_at", "training_run", "cohorts", "mode", "label_rule", "seed",
            "backbone", "random_init", "n_train_images", "n_train_patients", "created_by",
        ]  # fmt: skip
        read_only_fields = fields


class ModelVersionSerializer(serializers.ModelSerializer):
    """Everything that identifies and reproduces a version, with its metrics per cohort."""

    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    random_init = serializers.BooleanField(source="is_random_init", read_only=True)
    promotions = PromotionEventSerializer(many=True, read_only=True)

    class Meta:
        model = ModelVersion
        fields = [
            "id", "name", "stage", "created_at", "training_run", "metrics", "cohorts", "mode",
            "label_rule", "pain_levels", "hyperparameters", "seed", "data_manifest_sha256", "split_sha256",
            "code_version", "library_versions", "device", "backbone", "backbone_sha256", "random_init",
            "weights_path", "weights_sha256", "n_train_images", "n_train_patients", "training_history",
            "created_by", "promotions",
        ]  # fmt: skip
        read_only_fields = fields


class PromoteSerializer(serializers.Serializer):
    reason = serializers.CharField(allow_blank=False, trim_whitespace=True)
    confirm_random_init = serializers.BooleanField(
        default=False, help_text="required (true) to promote a version whose backbone is random-init"
    )
