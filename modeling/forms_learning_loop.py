"""The learning loop's forms (/training/loop/): the retrain policy and the gate rule. The run
settings are checked by the training settings' one validator, as on the start form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from modeling.forms_training import TrainingRunForm


class RetrainPolicyForm(TrainingRunForm):
    enabled = forms.BooleanField(label=_("Retrain by itself"), required=False)
    min_new_labels = forms.IntegerField(
        label=_("When at least this many labels were added or changed"),
        required=False,
        min_value=1,
        max_value=1_000_000,
        help_text=_("Since the newest model version (or the policy's last run). Leave empty for none."),
    )
    daily_at = forms.TimeField(
        label=_("And/or every day at"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}),
        help_text=_("Local time; only when at least one label changed."),
    )

    TRIGGER_FIELDS = ("enabled", "min_new_labels", "daily_at")
    NOT_CONFIG = TRIGGER_FIELDS

    def full_clean(self) -> None:
        """Trigger fields by their own checks; the run settings by the training validator."""
        super().full_clean()
        if not self.is_bound:
            return
        trigger_form = forms.Form(self.data, prefix=self.prefix)
        trigger_form.fields = {name: self.fields[name] for name in self.TRIGGER_FIELDS}
        if trigger_form.is_valid():
            self.cleaned_data.update(trigger_form.cleaned_data)
        else:
            for field, problems in trigger_form.errors.items():
                self.add_error(field, problems)

    def trigger_settings(self) -> dict[str, Any]:
        return {name: self.cleaned_data.get(name) for name in self.TRIGGER_FIELDS}

    def run_config(self) -> dict[str, Any]:
        return {name: value for name, value in self.cleaned_data.items() if name not in self.TRIGGER_FIELDS}


class GateRuleForm(forms.Form):
    margin = forms.FloatField(
        label=_("Non-inferiority margin (macro AUROC)"),
        min_value=0,
        max_value=0.5,
        widget=forms.NumberInput(attrs={"step": "0.005"}),
        help_text=_("Recommend when the lower bound of the macro-AUROC difference is above −margin."),
    )
    alpha = forms.FloatField(
        label=_("Significance level for the severe level"),
        min_value=0.001,
        max_value=0.5,
        widget=forms.NumberInput(attrs={"step": "0.005"}),
        help_text=_("Hold back when severe-level AUROC is lower with a clustered p-value below this."),
    )
    auto_promote = forms.BooleanField(
        label=_("Promote recommended versions automatically"),
        required=False,
        help_text=_("Off by default. Never for a random-init backbone. Rollback: promote the previous version."),
    )
