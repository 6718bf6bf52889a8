"""Reads for labeling: the queue and standing scores.

Training targets are made from these scores by the label rules (modeling/label_rules.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import NamedTuple

from django.contrib.auth.models import User
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from annotation.models import Consent, Image, PainLabel, Patient
from annotation.queue_order import QueueOrderSetting, current_queue_order

QUEUE_UNLABELED = "unlabeled"
QUEUE_SECOND_OBSERVER = "second_observer"


def next_image_for(user: User, *, skip: Iterable[int] = (), for_update: bool = False) -> Image | None:
    """The next image `user` should label, or None when their queue is empty.

    Never-labeled images come first, in the order researchers chose (annotation/queue_order.py:
    arrival, the production model's uncertainty, or level-balanced), then images with exactly one
    observer score, oldest first (they need a second rater for agreement); images the user holds
    a score on, images of patients who withdrew consent and images reserved for another
    clinician (until the reservation ends) are left out; `skip` holds ids the user passed over
    this session. Each step is an index range scan (a partial index, or an index of the queue's
    predictions), so the cost does not grow with the number of images or labels.

    `for_update` locks the row found, passing over rows another transaction holds, for a caller
    that reserves it in the same transaction (annotation.services.reserve_next_image).
    """
    for reason, step in queue_steps(user, skip=skip, for_update=for_update):
        image = step.first()
        if image is not None:
            image.queue_reason = reason
            return image
    return None


def queue_steps(
    user: User, *, skip: Iterable[int] = (), for_update: bool = False, order: QueueOrderSetting | None = None
) -> Iterator[tuple[str, QuerySet[Image]]]:
    """The queue's steps in the order they are asked, each with its images in queue order.
    `order` is the chosen queue order (read from the settings row when not given)."""
    order = order or current_queue_order()
    candidates = (
        Image.objects.filter(patient__consent=Consent.GRANTED)
        .filter(Q(reserved_until__isnull=True) | Q(reserved_until__lte=timezone.now()) | Q(reserved_by=user))
        .select_related("patient")
        .order_by("id")
    )
    skip = list(skip)
    if skip:
        candidates = candidates.exclude(pk__in=skip)
    if for_update:
        candidates = candidates.select_for_update(skip_locked=True, of=("self",))
    # Nobody holds a score on a never-labeled image, the user included: no label lookup needed.
    unlabeled = candidates.filter(label_count=0)
    if order.uses_predictions:
        # Predicted images first, in the chosen order; then those with no prediction (no face, or
        # not predicted yet) oldest first. Both steps answer "unlabeled": the reason a clinician
        # sees says nothing of the model.
        yield QUEUE_UNLABELED, unlabeled.filter(queue_prediction__isnull=False).order_by(*order.prediction_ordering)
        yield QUEUE_UNLABELED, unlabeled.filter(queue_prediction__isnull=True)
    else:
        yield QUEUE_UNLABELED, unlabeled
    # Built only when the first step found nothing: building a queryset costs CPU too.
    rated_by_user = PainLabel.objects.current().filter(image=OuterRef("pk"), rater=user)
    yield QUEUE_SECOND_OBSERVER, candidates.filter(observer_rater_count=1).filter(~Exists(rated_by_user))


def current_labels(image: Image) -> list[PainLabel]:
    """Each rater's standing score on `image` (the latest, not superseded, not retracted)."""
    return list(PainLabel.objects.current().filter(image=image).select_related("rater").order_by("created_at", "id"))


def label_history(*, image_id: int | None = None, include_withdrawn: bool = False) -> QuerySet[PainLabel]:
    """Every label row, superseded ones included, newest first."""
    labels = PainLabel.objects.select_related("rater", "image__patient").order_by("-created_at", "-id")
    if image_id is not None:
        labels = labels.filter(image_id=image_id)
    if not include_withdrawn:
        labels = labels.filter(image__patient__consent=Consent.GRANTED)
    return labels


class CurrentScore(NamedTuple):
    """A standing score as plain values: snapshotting thousands of images needs no model rows."""

    id: int
    image_id: int
    rater_id: int
    nrs: int
    kind: str
    created_at: datetime
    is_retraction: bool


def current_labels_by_image(images: QuerySet[Image] | Iterable[int]) -> dict[int, list[CurrentScore]]:
    """Standing scores of many images in one query; withdrawn patients' images are left out."""
    labels = PainLabel.objects.current().filter(image__patient__consent=Consent.GRANTED)
    if isinstance(images, QuerySet):
        labels = labels.filter(image__in=images.values("pk"))
    else:
        labels = labels.filter(image_id__in=list(images))
    grouped: dict[int, list[CurrentScore]] = defaultdict(list)
    rows = labels.order_by("image_id", "created_at", "id").values_list(*CurrentScore._fields)
    for row in rows:
        score = CurrentScore(*row)
        grouped[score.image_id].append(score)
    return dict(grouped)


def patients_with_counts() -> QuerySet[Patient]:
    return (
        Patient.objects.select_related("consent_recorded_by")
        .annotate(
            image_count=Count("images", distinct=True),
            labeled_image_count=Count("images", filter=Q(images__label_count__gt=0), distinct=True),
        )
        .order_by("code")
    )
