"""API of test snapshots and evaluations: score a model version on a snapshot, follow it, list them."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from modeling import evaluations, selectors
from modeling.models import Evaluation, EvaluationStatus, ModelVersion
from modeling.snapshots import take_test_snapshot
from painsite.core.api import ERROR_SCHEMA, error_response, paginated_schema, permission_classes_for

VIEW_VERSIONS = ["modeling.view_modelversion"]
ADD_EVALUATION = ["modeling.add_evaluation"]
MAX_ID = 2**63 - 1  # the largest id a database row can have


class SnapshotSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField(help_text="When the test set was frozen.")
    n_images = serializers.IntegerField()
    n_patients = serializers.IntegerField()
    sha256 = serializers.CharField(help_text="Over (image sha256, patient, cohort, NRS, level) of every image.")


class TestSnapshotSerializer(SnapshotSummarySerializer):
    label_rule = serializers.CharField(help_text="The rule that gave each image its reference NRS.")
    pain_levels = serializers.DictField(help_text='{"names": [...], "ranges": [[low, high], ...]}')
    reason = serializers.CharField(help_text='"publish", "requested" or "migrated".')
    n_evaluations = serializers.IntegerField(help_text="Finished evaluations on this snapshot.")


class EvaluationSerializer(serializers.ModelSerializer):
    model_version = serializers.IntegerField(source="model_version_id")
    snapshot = SnapshotSummarySerializer()
    requested_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Null when the system queued it."
    )

    class Meta:
        model = Evaluation
        fields = [
            "id", "model_version", "snapshot", "status", "progress", "message", "error", "at_training",
            "seed", "resamples", "metrics", "requested_by", "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields


class EvaluationRequestSerializer(serializers.Serializer):
    snapshot = serializers.CharField(
        default="current",
        help_text='"current" (freeze the locked test set now; the same content gives the same snapshot) '
        "or the id of a test snapshot.",
    )

    def validate_snapshot(self, value: str) -> str | int:
        value = str(value).strip()
        if value == "current":
            return value
        if not value.isdigit() or int(value) > MAX_ID:
            raise serializers.ValidationError(gettext('give "current" or the id of a test snapshot'))
        return int(value)


def _evaluations_of(version: ModelVersion):
    return (
        Evaluation.objects.filter(model_version=version)
        .select_related("snapshot", "requested_by")
        .defer("predictions", "snapshot__images")
    )


@extend_schema(
    methods=["POST"],
    request=EvaluationRequestSerializer,
    responses={
        202: OpenApiResponse(EvaluationSerializer, description="queued now, or already queued or running"),
        200: OpenApiResponse(EvaluationSerializer, description="already evaluated on that snapshot: returned as is"),
        400: OpenApiResponse(ERROR_SCHEMA, description="unknown snapshot, no test images, or other pain levels"),
    },
    operation_id="model_version_evaluations_create",
    tags=["model-versions"],
)
@extend_schema(
    methods=["GET"],
    responses=paginated_schema(EvaluationSerializer, "EvaluationPage"),
    operation_id="model_version_evaluations_list",
    tags=["model-versions"],
)
@api_view(["GET", "HEAD", "POST"])
@permission_classes(permission_classes_for(GET=VIEW_VERSIONS, POST=ADD_EVALUATION))
def model_version_evaluations(request: Request, pk: int) -> Response:
    version = get_object_or_404(selectors.model_versions_light(), pk=pk)
    if request.method in ("GET", "HEAD"):
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(_evaluations_of(version), request)
        return paginator.get_paginated_response(EvaluationSerializer(page, many=True).data)
    body = EvaluationRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    chosen = body.validated_data["snapshot"]
    if chosen != "current" and not selectors.snapshots_light().filter(pk=chosen).exists():
        return error_response(
            gettext("snapshot: there is no test snapshot %(chosen)s") % {"chosen": chosen}, status_code=400
        )
    try:
        # One transaction: a refusal leaves no snapshot and no split assignment behind.
        with transaction.atomic():
            if chosen == "current":
                snapshot = take_test_snapshot(label_rule=version.label_rule)
            else:
                snapshot = selectors.snapshots_light().get(pk=chosen)
            evaluation, _ = evaluations.request_evaluation(
                version=version, snapshot=snapshot, requested_by=request.user
            )
    except ValidationError as error:
        messages = error.message_dict.get("snapshot") or error.messages
        return error_response(
            gettext("snapshot: %(messages)s") % {"messages": messages[0]}, status_code=400, details=error.message_dict
        )
    finished = evaluation.status == EvaluationStatus.SUCCEEDED
    return Response(
        EvaluationSerializer(_evaluations_of(version).get(pk=evaluation.pk)).data,
        status=status.HTTP_200_OK if finished else status.HTTP_202_ACCEPTED,
    )


@extend_schema(
    responses=paginated_schema(TestSnapshotSerializer, "TestSnapshotPage"),
    operation_id="test_snapshots_list",
    tags=["model-versions"],
)
@api_view(["GET", "HEAD"])
@permission_classes(permission_classes_for(GET=VIEW_VERSIONS))
def test_snapshots(request: Request) -> Response:
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(selectors.snapshots_with_counts(), request)
    return paginator.get_paginated_response(TestSnapshotSerializer(page, many=True).data)
