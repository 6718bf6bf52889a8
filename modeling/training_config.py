"""What a training run may ask for: the choices, their limits and defaults.

The page form, the API and `manage.py train` all hand a plain dict to `clean_training_config`
(modeling/serializers_training.py), which checks it with the one serializer, so a rule is written
once. Defaults come from settings (PAINSITE_TRAINING_*); each run stores the complete, cleaned
config it used.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from annotation.models import Cohort
from modeling.label_rules import SELF_REPORT_FIRST

COHORTS: tuple[str, ...] = tuple(Cohort.values)
MODES = ("head", "finetune")

# (lowest, highest) accepted value of each numeric setting.
LIMITS: dict[str, tuple[float, float]] = {
    "epochs": (1, 500),
    "lr": (1e-6, 1.0),
    "batch_size": (1, 1024),
    "seed": (0, 2**31 - 1),
    "image_size": (32, 512),
    "patience": (1, 500),
}


def default_training_config() -> dict[str, Any]:
    return {
        "cohorts": list(COHORTS),
        "mode": "head",
        "epochs": settings.PAINSITE_TRAINING_EPOCHS,
        "lr": settings.PAINSITE_TRAINING_LR,
        "batch_size": settings.PAINSITE_TRAINING_BATCH_SIZE,
        "label_rule": SELF_REPORT_FIRST,
        "seed": settings.PAINSITE_TRAINING_SEED,
        "image_size": settings.PAINSITE_TRAINING_IMAGE_SIZE,
        "patience": settings.PAINSITE_TRAINING_PATIENCE,
    }
