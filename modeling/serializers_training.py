"""Training settings (their one validator) and the API shapes of training runs and model versions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from modeling.label_rules import LABEL_RULES
from modeling.models import ModelVersion, PromotionEvent, TrainingRun
from modeling.training_config import COHORTS, LIMITS, MODES, default_training_config


class StrictIntegerField(serializers.IntegerField):
    """A whole number. Refuses JSON booleans (`true` is not 1 epoch) and fractions like 2.5."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or (isinstance(data, float) and not data.is_integer()):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


def _number(name: str, field_class: type[serializers.Field]) -> serializers.Field:
    low, high = LIMITS[name]
    # Lazy: the messages are read in the language of the request that fails the check.
    between = format_lazy(_("{name} must be between {low} and {high}"), name=name, low=f"{low:g}", high=f"{high:g}")
    if field_class is StrictIntegerField:
        invalid = format_lazy(_("{name} must be a whole number"), name=name)
    else:
        invalid = format_lazy(_("{name} must be a number"), name=name)
    return field_class(
        required=False,
        min_value=low,
        max_value=high,
        error_messages={"invalid": invalid, "min_value": between, "max_value": between},
    )


def _choice(name: str, choices: tuple[str, ...]) -> serializers.ChoiceField:
    # DRF fills in {input} itself, so it reaches it still in braces.
    message = format_lazy(_("unknown {name} '{{input}}'; valid: {choices}"), name=name, choices=", ".join(choices))
    return serializers.ChoiceField(choices=choices, required=False, error_messages={"invalid_choice": message})


class CohortsField(serializers.ListField):
    """One cohort or a list of them; answered in the canonical order."""

    child = serializers.ChoiceField(choices=COHORTS)

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = [data]
        if not isinstance(data, (list, tuple)) or not data:
            raise serializers.ValidationError(
                gettext("choose at least one cohort: %(cohorts)s") % {"cohorts": ", ".join(COHORTS)}
            )
        if bad := [cohort for cohort in data if cohort not in COHORTS]:
            raise serializers.ValidationError(
                gettext("unknown cohort(s) %(bad)s; valid: %(cohorts)s")
                % {"bad": ", ".join(map(str, bad)), "cohorts": ", ".join(COHORTS)}
            )
        return [cohort for cohort in COHORTS if cohort in data]


class TrainingConfigSerializer(serializers.Serializer):
    """The one definition of what a training run may ask for: the API's body, the training page's
    form and `manage.py train` are all checked by it (clean_training_config, below).
    Settings left out (or empty) take their defaults; unknown settings are refused."""

    cohorts = CohortsField(required=False)
    mode = _choice("mode", MODES)
    epochs = _number("epochs", StrictIntegerField)
    lr = _number("lr", StrictFloatField)
    batch_size = _number("batch_size", StrictIntegerField)
    label_rule = _choice("label_rule", LABEL_RULES)
    seed = _number("seed", StrictIntegerField)
    image_size = _number("image_size", StrictIntegerField)
    patience = _number("patience", StrictIntegerField)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise serializers.ValidationError(
                {"non_field_errors": [gettext("the training settings must be an object of name: value")]}
            )
        given = {name: value for name, value in data.items() if value is not None and value != ""}
        errors: dict[str, Any] = {}
        if unknown := sorted(set(given) - set(self.fields)):
            errors["non_field_errors"] = [
                gettext("unknown setting(s) %(unknown)s; valid: %(valid)s")
                % {"unknown": ", ".join(unknown), "valid": ", ".join(self.fields)}
            ]
        try:
            values = super().to_internal_value({name: value for name, value in given.items() if name in self.fields})
        except serializers.ValidationError as error:
            errors.update(error.detail)
            values = {}
        if errors:
            raise serializers.ValidationError(errors)
        return {**default_training_config(), **values}


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
            "features_computed", "features_cached",
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


def clean_training_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The complete config for a run: `raw` over the defaults, checked by the one serializer that
    defines the settings. Raises ValidationError with a message per field, naming the valid options."""
    form = TrainingConfigSerializer(data=raw)
    if not form.is_valid():
        raise ValidationError(
            {field: [str(problem) for problem in problems] for field, problems in form.errors.items()}
        )
    return dict(form.validated_data)
