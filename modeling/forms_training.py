"""The training page's form: HTML fields only. Checking is the API's serializer's, so the page
shows the same errors as the API and `manage.py train`."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.forms.utils import ErrorDict
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from annotation.models import Cohort
from modeling.label_rules import LABEL_RULE_DESCRIPTIONS, LABEL_RULES
from modeling.serializers_training import clean_training_config
from modeling.training_config import COHORTS, LIMITS, MODES, default_training_config

MODE_LABELS = {
    "head": _("Head only (fast on CPU: frozen VGG16 features, cached)"),
    "finetune": _("Fine-tune last conv block + classifier (needs a GPU worker)"),
}


def _bounds(name: str) -> dict[str, float]:
    low, high = LIMITS[name]
    return {"min_value": low, "max_value": high}


class TrainingRunForm(forms.Form):
    cohorts = forms.MultipleChoiceField(
        label=_("Cohorts"),
        choices=[(value, Cohort(value).label) for value in COHORTS],
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Train on one cohort or both. Every version is scored on the locked test patients of both."),
    )
    mode = forms.ChoiceField(label=_("Mode"), choices=[(mode, MODE_LABELS[mode]) for mode in MODES])
    epochs = forms.IntegerField(label=_("Epochs"), **_bounds("epochs"))
    lr = forms.FloatField(label=_("Learning rate"), **_bounds("lr"), widget=forms.NumberInput(attrs={"step": "any"}))
    batch_size = forms.IntegerField(label=_("Batch size"), **_bounds("batch_size"))
    label_rule = forms.ChoiceField(
        label=_("Label rule"),
        choices=[(rule, format_lazy("{}: {}", rule, LABEL_RULE_DESCRIPTIONS[rule])) for rule in LABEL_RULES],
    )
    seed = forms.IntegerField(label=_("Seed"), **_bounds("seed"))
    image_size = forms.IntegerField(label=_("Image size (pixels)"), **_bounds("image_size"))
    patience = forms.IntegerField(label=_("Early-stopping patience (epochs)"), **_bounds("patience"))

    # Fields of a subclass that are not run settings (the retrain policy's triggers).
    NOT_CONFIG: tuple[str, ...] = ()

    @classmethod
    def with_defaults(cls) -> TrainingRunForm:
        return cls(initial=default_training_config())

    def full_clean(self) -> None:
        """The fields' own checks are replaced by the training settings' one validator."""
        self._errors = ErrorDict()
        self.cleaned_data = {}
        if not self.is_bound:
            return
        raw = {
            name: self.data.getlist(name) if name == "cohorts" else self.data.get(name)
            for name in self.fields
            if name not in self.NOT_CONFIG
        }
        try:
            self.cleaned_data = clean_training_config(raw)
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                self.add_error(field if field in self.fields else None, problems)
