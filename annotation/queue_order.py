"""The labeling queue's order and the predictions it orders by.

Researchers choose how never-labeled images are ordered (QueueSettings, one row): by arrival
(the default), by the production model's uncertainty (entropy or margin), or round-robin over the
predicted levels. The predictions live here, in annotation, because the queue reads them;
modeling computes them (modeling/queue_predictions.py) and stores them through
`store_predictions`. A clinician never sees them: the queue's answer has no prediction field,
and the order alone names no level and no probability.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from annotation.models import Consent, Image, ImagePrediction, QueueOrder, QueueSettings, UncertaintyMeasure
from painsite.core.services import record_event

# How each order sorts the predicted images; ties go to the oldest image. Each matches an index
# of ImagePrediction, so the queue reads the first rows of one index range.
UNCERTAINTY_ORDERINGS: dict[str, tuple[str, ...]] = {
    UncertaintyMeasure.ENTROPY: ("-queue_prediction__entropy", "id"),
    UncertaintyMeasure.MARGIN: ("queue_prediction__margin", "id"),
}
LEVEL_BALANCED_ORDERING = ("queue_prediction__level_rank", "queue_prediction__predicted_level", "id")


class QueueOrderError(ValueError):
    """An order or measure that does not exist; the message lists the valid ones."""


@dataclass(frozen=True)
class QueueOrderSetting:
    order: str
    uncertainty_measure: str
    changed_by: str | None = None
    changed_at: datetime | None = None

    @property
    def uses_predictions(self) -> bool:
        return self.order != QueueOrder.ARRIVAL

    @property
    def prediction_ordering(self) -> tuple[str, ...]:
        if self.order == QueueOrder.LEVEL_BALANCED:
            return LEVEL_BALANCED_ORDERING
        return UNCERTAINTY_ORDERINGS[self.uncertainty_measure]


DEFAULT_SETTING = QueueOrderSetting(order=QueueOrder.ARRIVAL, uncertainty_measure=UncertaintyMeasure.MARGIN)


def current_queue_order() -> QueueOrderSetting:
    """The chosen order (one indexed query); the defaults while nobody has chosen one."""
    row = (
        QueueSettings.objects.filter(pk=QueueSettings.SINGLE_ROW_ID)
        .values_list("order", "uncertainty_measure", "changed_by__username", "changed_at")
        .first()
    )
    return DEFAULT_SETTING if row is None else QueueOrderSetting(*row)


def set_queue_order(*, order: str, uncertainty_measure: str | None = None, actor: User | None) -> QueueOrderSetting:
    """Choose the queue's order (and, optionally, the uncertainty measure); a change is
    audit-logged as queue.order_change. Choosing what is already set changes nothing."""
    if order not in QueueOrder.values:
        raise QueueOrderError(
            _("order must be one of %(valid)s, not %(given)r") % {"valid": ", ".join(QueueOrder.values), "given": order}
        )
    if uncertainty_measure is not None and uncertainty_measure not in UncertaintyMeasure.values:
        raise QueueOrderError(
            _("uncertainty_measure must be one of %(valid)s, not %(given)r")
            % {"valid": ", ".join(UncertaintyMeasure.values), "given": uncertainty_measure}
        )
    with transaction.atomic():
        row, _created = QueueSettings.objects.select_for_update().get_or_create(pk=QueueSettings.SINGLE_ROW_ID)
        before = {"order": row.order, "uncertainty_measure": row.uncertainty_measure}
        after = {"order": order, "uncertainty_measure": uncertainty_measure or row.uncertainty_measure}
        if after != before:
            row.order, row.uncertainty_measure = after["order"], after["uncertainty_measure"]
            row.changed_by, row.changed_at = actor, timezone.now()
            row.save()
            record_event(actor=actor, action="queue.order_change", target=row, details={"from": before, "to": after})
    return current_queue_order()


# ---------------------------------------------------------------------------------------------
# Predictions (written by modeling)


@dataclass(frozen=True)
class PredictionRow:
    image_id: int
    predicted_level: int
    predicted_level_name: str
    entropy: float
    margin: float
    level_rank: int


def images_to_predict(
    *, after_id: int = 0, limit: int, image_ids: Iterable[int] | None = None, not_predicted_by: int | None = None
) -> list[Image]:
    """Never-labeled images with a face, of consenting patients, oldest first from `after_id`
    (or those of `image_ids` that are): the images the queue's predictions are for. With
    `not_predicted_by`, only those that model version has not predicted yet."""
    found = Image.objects.filter(
        label_count=0, face_box__isnull=False, patient__consent=Consent.GRANTED, pk__gt=after_id
    )
    if image_ids is not None:
        found = found.filter(pk__in=list(image_ids))
    if not_predicted_by is not None:
        found = found.exclude(queue_prediction__model_version_id=not_predicted_by)
    return list(found.select_related("patient").order_by("pk")[:limit])


def next_level_ranks(*, model_version_id: int) -> dict[int, int]:
    """Per predicted level, the rank the next image predicted at it gets (one past the last)."""
    rows = (
        ImagePrediction.objects.filter(model_version_id=model_version_id)
        .values("predicted_level")
        .annotate(last=Max("level_rank"))
    )
    return {row["predicted_level"]: row["last"] + 1 for row in rows}


def store_predictions(*, model_version_id: int, rows: list[PredictionRow]) -> int:
    """Write (or replace) the predictions of `rows`' images by `model_version_id`. Images scored
    meanwhile are left without one: the queue orders only never-labeled images."""
    if not rows:
        return 0
    now = timezone.now()
    with transaction.atomic():
        ImagePrediction.objects.bulk_create(
            [
                ImagePrediction(
                    image_id=row.image_id,
                    model_version_id=model_version_id,
                    predicted_level=row.predicted_level,
                    predicted_level_name=row.predicted_level_name,
                    entropy=row.entropy,
                    margin=row.margin,
                    level_rank=row.level_rank,
                    computed_at=now,
                )
                for row in rows
            ],
            update_conflicts=True,
            unique_fields=["image"],
            update_fields=[
                "model_version_id",
                "predicted_level",
                "predicted_level_name",
                "entropy",
                "margin",
                "level_rank",
                "computed_at",
            ],
        )
        ids = [row.image_id for row in rows]
        ImagePrediction.objects.filter(image_id__in=ids, image__label_count__gt=0).delete()
    return len(rows)


def remove_predictions_not_by(*, model_version_id: int) -> int:
    """Drop every prediction another model version made (after a promotion has replaced them)."""
    deleted, _by_model = ImagePrediction.objects.exclude(model_version_id=model_version_id).delete()
    return deleted


def prediction_counts() -> dict[str, int]:
    """For researchers' pages: how many never-labeled images the ordering can use."""
    unlabeled = Image.objects.filter(label_count=0, patient__consent=Consent.GRANTED)
    return {
        "unlabeled": unlabeled.count(),
        "predicted": unlabeled.filter(queue_prediction__isnull=False).count(),
    }
