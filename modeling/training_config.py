"""What a training run may ask for: the choices, their limits and defaults, and one validator.

The page form, the API and `manage.py train` all hand a plain dict to `clean_training_config`, so a
rule is written once. Defaults come from settings (PAINSITE_TRAINING_*); each run stores the
complete, cleaned config it used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from annotation.models import Cohort

COHORTS: tuple[str, ...] = tuple(Cohort.values)
MODES = ("head", "finetune")
LABEL_RULES = ("self_report_first", "self_report_only", "observer_median")
LABEL_RULE_DESCRIPTIONS = {
    "self_report_first": "the latest self-report, else the median of the raters' latest observer scores",
    "self_report_only": "images with a self-report only",
    "observer_median": "the median of the raters' latest observer scores",
}

# (lowest, highest) accepted value of each numeric setting.
LIMITS: dict[str, tuple[float, float]] = {
    "epochs": (1, 500),
    "lr": (1e-6, 1.0),
    "batch_size": (1, 1024),
    "seed": (0, 2**31 - 1),
    "image_size": (32, 512),
    "patience": (1, 500),
}
INTEGER_FIELDS = ("epochs", "batch_size", "seed", "image_size", "patience")


def default_training_config() -> dict[str, Any]:
    return {
        "cohorts": list(COHORTS),
        "mode": "head",
        "epochs": settings.PAINSITE_TRAINING_EPOCHS,
        "lr": settings.PAINSITE_TRAINING_LR,
        "batch_size": settings.PAINSITE_TRAINING_BATCH_SIZE,
        "label_rule": "self_report_first",
        "seed": settings.PAINSITE_TRAINING_SEED,
        "image_size": settings.PAINSITE_TRAINING_IMAGE_SIZE,
        "patience": settings.PAINSITE_TRAINING_PATIENCE,
    }


def clean_training_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The complete config for a run: `raw` over the defaults, checked. Raises ValidationError
    with a message per field, naming the valid options."""
    config = default_training_config()
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(raw) - set(config))
    if unknown:
        errors["non_field_errors"] = [f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(config)}"]
    config.update({key: value for key, value in raw.items() if key in config and value not in (None, "")})

    cohorts = config["cohorts"]
    if isinstance(cohorts, str):
        cohorts = [cohorts]
    if not isinstance(cohorts, (list, tuple)) or not cohorts:
        errors["cohorts"] = [f"choose at least one cohort: {', '.join(COHORTS)}"]
    elif bad := [c for c in cohorts if c not in COHORTS]:
        errors["cohorts"] = [f"unknown cohort(s) {', '.join(map(str, bad))}; valid: {', '.join(COHORTS)}"]
    else:
        config["cohorts"] = [c for c in COHORTS if c in cohorts]

    for name, valid in (("mode", MODES), ("label_rule", LABEL_RULES)):
        if config[name] not in valid:
            errors[name] = [f"unknown {name} {config[name]!r}; valid: {', '.join(valid)}"]

    for name, (low, high) in LIMITS.items():
        try:
            value = float(config[name])
            if name in INTEGER_FIELDS:
                if value != int(value):
                    raise ValueError
                value = int(value)
        except (TypeError, ValueError):
            errors[name] = [f"{name} must be a {'whole ' if name in INTEGER_FIELDS else ''}number"]
            continue
        if not low <= value <= high:
            errors[name] = [f"{name} must be between {low:g} and {high:g}, got {value:g}"]
            continue
        config[name] = value

    if errors:
        raise ValidationError(errors)
    return config
