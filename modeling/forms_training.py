"""The training page's form: HTML fields and type coercion. The rules are in training_config."""

from __future__ import annotations

from django import forms

from modeling.training_config import (
    COHORTS,
    LABEL_RULE_DESCRIPTIONS,
    LABEL_RULES,
    LIMITS,
    MODES,
    default_training_config,
)
from annotation.models import Cohort

MODE_LABELS = {
    "head": "Head only (fast on CPU: frozen VGG16 features, cached)",
    "finetune": "Fine-tune last conv block + classifier (needs a GPU worker)",
}


def _bounds(name: str) -> dict[str, float]:
    low, high = LIMITS[name]
    return {"min_value": low, "max_value": high}


class TrainingRunForm(forms.Form):
    cohorts = forms.MultipleChoiceField(
        choices=[(value, Cohort(value).label) for value in COHORTS],
        widget=forms.CheckboxSelectMultiple,
        help_text="Train on one cohort or both. Every version is scored on the locked test patients of both.",
    )
    mode = forms.ChoiceField(choices=[(mode, MODE_LABELS[mode]) for mode in MODES])
    epochs = forms.IntegerField(**_bounds("epochs"))
    lr = forms.FloatField(label="Learning rate", **_bounds("lr"), widget=forms.NumberInput(attrs={"step": "any"}))
    batch_size = forms.IntegerField(label="Batch size", **_bounds("batch_size"))
    label_rule = forms.ChoiceField(
        label="Label rule", choices=[(rule, f"{rule}: {LABEL_RULE_DESCRIPTIONS[rule]}") for rule in LABEL_RULES]
    )
    seed = forms.IntegerField(**_bounds("seed"))
    image_size = forms.IntegerField(label="Image size (pixels)", **_bounds("image_size"))
    patience = forms.IntegerField(label="Early-stopping patience (epochs)", **_bounds("patience"))

    @classmethod
    def with_defaults(cls) -> TrainingRunForm:
        return cls(initial=default_training_config())
