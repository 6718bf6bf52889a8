"""API of training runs and the model registry: validate, call one service, respond."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from modeling import selectors, services
from modeling.models import ModelVersion, TrainingRun
from modeling.serializers_training import (
    ModelVersionListSerializer,
    ModelVersionSerializer,
    PromoteSerializer,
    TrainingConfigSerializer,
    TrainingRunSerializer,
)
from painsite.core.api import error_response, paginated_schema, permission_classes_for

VIEW_RUNS = ["modeling.view_trainingrun"]
VIEW_VERSIONS = ["modeling.view_modelversion"]


def _validation_error(error: ValidationError) -> Response:
    details = error.message_dict if hasattr(error, "error_dict") else {"non_field_errors": error.messages}
    field, messages = next(iter(details.items()))
    message = messages[0] if field == "non_field_errors" else f"{field}: {messages[0]}"
    return error_response(message, status_code=400, details=details)


@extend_schema(
    methods=["POST"],
    request=TrainingConfigSerializer,
    responses={
        202: TrainingRunSerializer,
        400: OpenApiResponse(description="invalid config or not enough labelled data"),
        409: OpenApiResponse(description="a run is already queued or running; details.active_run is its id"),
    },
)
@extend_schema(
    methods=["GET"],
    responses=paginated_schema(TrainingRunSerializer, "TrainingRunPage"),
    operation_id="training_runs_list",
)
@api_view(["GET", "HEAD", "POST"])
@permission_classes(permission_classes_for(GET=VIEW_RUNS, POST=["modeling.add_trainingrun"]))
def training_runs(request: Request) -> Response:
    if request.method in ("GET", "HEAD"):
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(selectors.training_runs(), request)
        return paginator.get_paginated_response(TrainingRunSerializer(page, many=True).data)
    if not isinstance(request.data, dict):
        return error_response(gettext("the body must be a JSON object of training settings"), status_code=400)
    try:
        run = services.start_training(requested_by=request.user, config=dict(request.data))
    except ValidationError as error:
        return _validation_error(error)
    except services.TrainingAlreadyActive as conflict:
        return error_response(
            str(conflict),
            status_code=status.HTTP_409_CONFLICT,
            details={"active_run": conflict.active_run.pk, "status": conflict.active_run.status},
        )
    return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(responses=TrainingRunSerializer)
@api_view(["GET", "HEAD"])
@permission_classes(permission_classes_for(GET=VIEW_RUNS))
def training_run_detail(request: Request, pk: int) -> Response:
    run = get_object_or_404(selectors.training_runs(), pk=pk)
    return Response(TrainingRunSerializer(run).data)


@extend_schema(
    request=None, responses={200: TrainingRunSerializer, 409: OpenApiResponse(description="already finished")}
)
@api_view(["POST"])
@permission_classes(permission_classes_for(POST=["modeling.cancel_trainingrun"]))
def cancel_training_run(request: Request, pk: int) -> Response:
    run = get_object_or_404(TrainingRun, pk=pk)
    try:
        run = services.cancel_training(run=run, actor=request.user)
    except services.RunNotActive as error:
        return error_response(str(error), status_code=status.HTTP_409_CONFLICT, details={"status": run.status})
    return Response(TrainingRunSerializer(get_object_or_404(selectors.training_runs(), pk=run.pk)).data)


@extend_schema(
    responses=paginated_schema(ModelVersionListSerializer, "ModelVersionPage"), operation_id="model_versions_list"
)
@api_view(["GET", "HEAD"])
@permission_classes(permission_classes_for(GET=VIEW_VERSIONS))
def model_versions(request: Request) -> Response:
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(selectors.model_versions_light(), request)
    return paginator.get_paginated_response(ModelVersionListSerializer(page, many=True).data)


@extend_schema(responses=ModelVersionSerializer)
@api_view(["GET", "HEAD"])
@permission_classes(permission_classes_for(GET=VIEW_VERSIONS))
def model_version_detail(request: Request, pk: int) -> Response:
    return Response(ModelVersionSerializer(_version_with_provenance(pk)).data)


def _version_with_provenance(pk: int) -> ModelVersion:
    # The manifest and per-image predictions stay in the database: the detail is already large.
    versions = (
        ModelVersion.objects.defer("data_manifest", "test_predictions")
        .select_related("created_by")
        .prefetch_related("promotions__actor")
    )
    return get_object_or_404(versions, pk=pk)


@extend_schema(
    request=PromoteSerializer,
    responses={
        200: ModelVersionSerializer,
        400: OpenApiResponse(description="reason missing, or a random-init version without confirm_random_init"),
        409: OpenApiResponse(description="already in production"),
    },
)
@api_view(["POST"])
@permission_classes(permission_classes_for(POST=["modeling.promote_modelversion"]))
def promote_model_version(request: Request, pk: int) -> Response:
    version = get_object_or_404(ModelVersion.objects.only("pk", "name", "stage"), pk=pk)
    body = PromoteSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    try:
        services.promote_model_version(
            version=version,
            actor=request.user,
            reason=body.validated_data["reason"],
            confirm_random_init=body.validated_data["confirm_random_init"],
        )
    except services.AlreadyInProduction as error:
        return error_response(str(error), status_code=status.HTTP_409_CONFLICT)
    except services.RandomInitNotConfirmed as error:
        return error_response(str(error), details={"confirm_random_init": "required for a random-init backbone"})
    return Response(ModelVersionSerializer(_version_with_provenance(pk)).data)
