"""API for the labeling queue's order: everyone who labels may read it, researchers change it."""

from __future__ import annotations

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.models import QueueOrder, UncertaintyMeasure
from annotation.queue_order import QueueOrderError, QueueOrderSetting, current_queue_order, set_queue_order
from painsite.core.api import ERROR_SCHEMA, error_response, permission_classes_for


def _invalid_choice(valid: list[str]) -> dict[str, str]:
    # DRF fills in {input}; the valid values are named so the caller can fix the request.
    return {"invalid_choice": format_lazy(_("{input} is not one of: {valid}"), input="{input}", valid=", ".join(valid))}


class QueueOrderSerializer(serializers.Serializer):
    order = serializers.ChoiceField(choices=QueueOrder.choices, error_messages=_invalid_choice(QueueOrder.values))
    uncertainty_measure = serializers.ChoiceField(
        choices=UncertaintyMeasure.choices, required=False, error_messages=_invalid_choice(UncertaintyMeasure.values)
    )
    changed_by = serializers.CharField(read_only=True, allow_null=True)
    changed_at = serializers.DateTimeField(read_only=True, allow_null=True)


def _answer(setting: QueueOrderSetting) -> Response:
    return Response(QueueOrderSerializer(setting).data)


@extend_schema(
    methods=["GET"],
    responses={200: QueueOrderSerializer},
    description="How the queue orders never-labeled images: `arrival` (oldest first, the default), "
    "`uncertainty` (the production model's least confident first, by `uncertainty_measure`: `margin`, the "
    "default, or `entropy`) or `level-balanced` (round-robin over the predicted levels). The order names "
    "no image's level or probabilities.",
)
@extend_schema(
    methods=["PUT"],
    request=QueueOrderSerializer,
    responses={200: QueueOrderSerializer, 400: ERROR_SCHEMA},
    description="Choose the order (researchers and admins); a change is audit-logged as queue.order_change.",
)
@api_view(["GET", "HEAD", "PUT"])
@permission_classes(
    permission_classes_for(GET=["annotation.view_queuesettings"], PUT=["annotation.change_queuesettings"])
)
def queue_order(request: Request) -> Response:
    if request.method == "PUT":
        form = QueueOrderSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            setting = set_queue_order(actor=request.user, **form.validated_data)
        except QueueOrderError as error:
            return error_response(str(error))
        return _answer(setting)
    return _answer(current_queue_order())
