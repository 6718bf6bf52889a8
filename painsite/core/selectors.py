from __future__ import annotations

from django.db.models import Count, Q

from annotation.models import Image, Patient
from modeling.models import ModelVersion, Stage


def dashboard_counts() -> dict[str, object]:
    """The state of the platform at a glance, in a handful of queries."""
    images = Image.objects.aggregate(total=Count("id"), labeled=Count("id", filter=Q(label_count__gt=0)))
    return {
        "patients": Patient.objects.count(),
        "images": images["total"],
        "labeled": images["labeled"],
        "unlabeled": images["total"] - images["labeled"],
        "model_versions": ModelVersion.objects.count(),
        "production_model": ModelVersion.objects.filter(stage=Stage.PRODUCTION).first(),
    }
