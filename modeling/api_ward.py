"""Ward monitoring API: the board's beds (clinicians), acknowledging alerts (clinicians) and the
cameras themselves (admins)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.models import Patient
from modeling.ward import (
    AlertAlreadyAcknowledged,
    SourceRefused,
    acknowledge_alert,
    change_source,
    register_source,
    remove_source,
)
from modeling.ward_board import board_etag, ward_board
from modeling.ward_models import CameraSource, WardAlert
from painsite.core.api import error_response, permission_classes_for

ERROR = OpenApiResponse(description='{"error": "...", "details": ...}')
VIEW_BOARD = "modeling.view_camerasource"
ACKNOWLEDGE = "modeling.acknowledge_wardalert"
MANAGE_CAMERAS = "modeling.change_camerasource"


class CameraSourceSerializer(serializers.ModelSerializer):
    patient = serializers.SlugRelatedField(
        slug_field="code", queryset=Patient.objects.all(), allow_null=True, required=False
    )
    interval_seconds = serializers.IntegerField(min_value=1, max_value=3600, required=False)

    class Meta:
        model = CameraSource
        fields = [
            "id", "name", "url", "bed", "patient", "interval_seconds", "active",
            "status", "last_frame_at", "last_assessment", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["status", "last_frame_at", "last_assessment", "created_at", "updated_at"]
        # The service checks uniqueness itself (one message for the API, the admin and tests).
        extra_kwargs = {"name": {"validators": []}, "bed": {"validators": []}}


@extend_schema(
    responses={200: OpenApiResponse(description="the ward board: every bed with its state, trend and open alerts")},
    description="Every bed's state for the ward board. Send If-None-Match with the last ETag: 304 while "
    "nothing changed.",
)
@api_view(["GET", "HEAD"])
@permission_classes(permission_classes_for(GET=[VIEW_BOARD]))
def beds(request: Request) -> Response:
    etag = board_etag()
    if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag, "Cache-Control": "no-cache"})
    return Response(ward_board(), headers={"ETag": etag, "Cache-Control": "no-cache"})


@extend_schema(request=None, responses={200: OpenApiResponse(description="the alert"), 404: ERROR, 409: ERROR})
@api_view(["POST"])
@permission_classes(permission_classes_for(POST=[ACKNOWLEDGE]))
def acknowledge(request: Request, pk: int) -> Response:
    alert = get_object_or_404(WardAlert.objects.select_related("patient"), pk=pk)
    try:
        alert = acknowledge_alert(alert=alert, actor=request.user)
    except AlertAlreadyAcknowledged as done:
        return error_response(str(done), status_code=status.HTTP_409_CONFLICT, details={"alert": pk})
    return Response(
        {
            "id": alert.pk,
            "bed": alert.bed,
            "patient": alert.patient.code,
            "acknowledged_at": alert.acknowledged_at,
            "acknowledged_by": request.user.get_username(),
        }
    )


@extend_schema(
    request=CameraSourceSerializer,
    responses={200: CameraSourceSerializer(many=True), 201: CameraSourceSerializer, 400: ERROR},
)
@api_view(["GET", "HEAD", "POST"])
@permission_classes(permission_classes_for(GET=[MANAGE_CAMERAS], POST=["modeling.add_camerasource"]))
def sources(request: Request) -> Response:
    if request.method != "POST":
        return Response(CameraSourceSerializer(CameraSource.objects.select_related("patient"), many=True).data)
    form = CameraSourceSerializer(data=request.data)
    if not form.is_valid():
        return error_response(_("the camera was not registered"), details=form.errors)
    try:
        source = register_source(actor=request.user, **form.validated_data)
    except SourceRefused as refused:
        return error_response(str(refused))
    return Response(CameraSourceSerializer(source).data, status=status.HTTP_201_CREATED)


@extend_schema(
    request=CameraSourceSerializer, responses={200: CameraSourceSerializer, 204: None, 400: ERROR, 404: ERROR}
)
@api_view(["GET", "HEAD", "PATCH", "DELETE"])
@permission_classes(
    permission_classes_for(GET=[MANAGE_CAMERAS], PATCH=[MANAGE_CAMERAS], DELETE=["modeling.delete_camerasource"])
)
def source_detail(request: Request, pk: int) -> Response:
    source = get_object_or_404(CameraSource.objects.select_related("patient"), pk=pk)
    if request.method == "DELETE":
        remove_source(source=source, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
    if request.method == "PATCH":
        form = CameraSourceSerializer(source, data=request.data, partial=True)
        if not form.is_valid():
            return error_response(_("the camera was not changed"), details=form.errors)
        try:
            source = change_source(source=source, actor=request.user, **form.validated_data)
        except SourceRefused as refused:
            return error_response(str(refused))
    return Response(CameraSourceSerializer(source).data)
