"""Image API: upload, list, metadata, the image bytes, bulk archive import and its progress."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.archive import ArchiveRejected
from annotation.bulk_import import start_archive_import
from annotation.image_access import (
    filter_images,
    may_view_image,
    parse_labeled,
    record_image_view,
    visible_images,
)
from annotation.intake import DuplicateImage, ImageRejected, read_upload, store_image
from annotation.models import Image, ImportJob, ImportStatus, Patient
from annotation.serializers_images import (
    ArchiveUploadSerializer,
    ImageSerializer,
    ImageUploadSerializer,
    ImportJobSerializer,
)
from painsite.core.api import HasPermission, error_response
from painsite.core.throttles import UploadThrottle

ERROR_SCHEMA = OpenApiResponse(description='{"error": "...", "details": ...}')
LIST_FILTERS = [
    OpenApiParameter("patient", str, description="patient code"),
    OpenApiParameter("cohort", str, enum=["clinical", "simulated"]),
    OpenApiParameter("labeled", bool, description="true: with at least one label; false: none yet"),
]


def _visible_image_or_403(request: Request, image_id: int) -> Image:
    image = get_object_or_404(Image.objects.select_related("patient"), pk=image_id)
    if not may_view_image(request.user, image):
        raise PermissionDenied(
            gettext("patient %(code)s withdrew consent: their images are hidden") % {"code": image.patient.code}
        )
    return image


class ImagePagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class ImageListCreate(generics.GenericAPIView):
    permission_classes = [HasPermission]
    pagination_class = ImagePagination
    required_permissions = {"GET": ["annotation.view_image"], "POST": ["annotation.add_image"]}
    throttle_classes = [UploadThrottle]
    serializer_class = ImageSerializer
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        return filter_images(
            visible_images(self.request.user),
            patient=self.request.query_params.get("patient", ""),
            cohort=self.request.query_params.get("cohort", ""),
            labeled=parse_labeled(self.request.query_params.get("labeled")),
        )

    @extend_schema(parameters=LIST_FILTERS, responses=ImageSerializer(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ImageSerializer(page, many=True).data)

    @extend_schema(
        request=ImageUploadSerializer,
        responses={201: ImageSerializer, 400: ERROR_SCHEMA, 409: ERROR_SCHEMA},
    )
    def post(self, request: Request) -> Response:
        form = ImageUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        code = form.validated_data["patient"].strip()
        patient = Patient.objects.filter(code=code).first()
        if patient is None:
            return error_response(gettext("unknown patient %(code)s") % {"code": repr(code)}, details={"patient": code})
        upload = form.validated_data["file"]
        try:
            stored = store_image(
                data=read_upload(upload),
                filename=upload.name,
                patient=patient,
                uploaded_by=request.user,
                captured_at=form.validated_data.get("captured_at"),
            )
        except ImageRejected as rejected:
            return error_response(str(rejected), details={"filename": rejected.filename, "reason": rejected.reason})
        except DuplicateImage as duplicate:
            return error_response(
                gettext("%(name)s: %(duplicate)s") % {"name": upload.name, "duplicate": duplicate},
                status_code=status.HTTP_409_CONFLICT,
                details={"existing_id": duplicate.existing_image.pk, "existing_patient": duplicate.existing_patient},
            )
        return Response(ImageSerializer(stored.image).data, status=status.HTTP_201_CREATED)


class ImageDetail(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": ["annotation.view_image"]}

    @extend_schema(responses={200: ImageSerializer, 403: ERROR_SCHEMA, 404: ERROR_SCHEMA})
    def get(self, request: Request, image_id: int) -> Response:
        return Response(ImageSerializer(_visible_image_or_403(request, image_id)).data)


class ImageFile(APIView):
    """The stored JPEG (or its thumbnail). The only way image bytes leave the server."""

    permission_classes = [HasPermission]
    required_permissions = {"GET": ["annotation.view_image"]}

    def perform_content_negotiation(self, request: Request, force: bool = False):
        # The body is a JPEG whatever the Accept header says; errors still come back as JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[OpenApiParameter("thumbnail", bool, description="a 256 px preview instead of the full image")],
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY, 403: ERROR_SCHEMA, 404: ERROR_SCHEMA},
    )
    def get(self, request: Request, image_id: int) -> FileResponse:
        image = _visible_image_or_403(request, image_id)
        thumbnail = parse_labeled(request.query_params.get("thumbnail")) is True and bool(image.thumbnail.name)
        # Opened by the name stored on the row, never by anything taken from the request.
        stored_name = image.thumbnail.name if thumbnail else image.file.name
        response = FileResponse(default_storage.open(stored_name, "rb"), content_type="image/jpeg")
        response["Content-Disposition"] = f'inline; filename="image-{image.pk}{"-thumbnail" if thumbnail else ""}.jpg"'
        response["Cache-Control"] = "private, no-store"
        response["X-Content-Type-Options"] = "nosniff"
        if not thumbnail:
            record_image_view(user=request.user, image=image)
        return response


class ArchiveImport(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"POST": ["annotation.add_image", "annotation.add_patient", "annotation.add_painlabel"]}
    throttle_classes = [UploadThrottle]
    parser_classes = [MultiPartParser]

    @extend_schema(
        request=ArchiveUploadSerializer,
        responses={
            200: OpenApiResponse(ImportJobSerializer, description="imported now; the report is in `report`"),
            202: OpenApiResponse(ImportJobSerializer, description="queued on a worker; poll /api/imports/<id>/"),
            400: ERROR_SCHEMA,
        },
    )
    def post(self, request: Request) -> Response:
        form = ArchiveUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        archive = form.validated_data["archive"]
        try:
            job = start_archive_import(archive=archive, size=archive.size, source_name=archive.name, actor=request.user)
        except ArchiveRejected as rejected:
            return error_response(
                gettext("%(name)s: %(rejected)s") % {"name": archive.name, "rejected": rejected},
                details={"filename": archive.name, "reason": str(rejected)},
            )
        finished = job.status in (ImportStatus.SUCCEEDED, ImportStatus.FAILED)
        return Response(
            ImportJobSerializer(job).data, status=status.HTTP_200_OK if finished else status.HTTP_202_ACCEPTED
        )


class ImportJobDetail(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": ["annotation.add_image"]}

    @extend_schema(responses={200: ImportJobSerializer, 403: ERROR_SCHEMA, 404: ERROR_SCHEMA})
    def get(self, request: Request, job_id: int) -> Response:
        job = get_object_or_404(ImportJob, pk=job_id)
        if job.created_by_id != request.user.pk and not request.user.is_staff:
            raise PermissionDenied(gettext("only the person who started this import (or an admin) can see it"))
        return Response(ImportJobSerializer(job).data)
