"""API for patients, the labeling queue, labels, agreement and the label export."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

from django.db.models import QuerySet
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import api_view, permission_classes, renderer_classes
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import services
from annotation.agreement import agreement_report
from annotation.image_access import may_view_image, visible_label_history
from annotation.models import Consent, Image, PainLabel
from annotation.selectors import patients_with_counts
from annotation.serializers import (
    ConsentSerializer,
    LabelCreateSerializer,
    LabelSerializer,
    PatientCreateSerializer,
    PatientSerializer,
    QueueItemSerializer,
)
from painsite.core.api import ERROR_SCHEMA, error_response, paginated_schema, permission_classes_for
from painsite.core.services import record_event

MAX_SKIPPED = 500


def _paginate(request: Request, queryset: QuerySet, serializer_class, **context) -> Response:
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(queryset, request)
    context = {"request": request, **{key: value(page) if callable(value) else value for key, value in context.items()}}
    return paginator.get_paginated_response(serializer_class(page, many=True, context=context).data)


@extend_schema(
    methods=["GET"],
    parameters=[
        OpenApiParameter("cohort", str, enum=["clinical", "simulated"]),
        OpenApiParameter("consent", str, enum=["granted", "withdrawn"]),
        OpenApiParameter("code", str, description="codes starting with this text"),
        OpenApiParameter("page", int),
    ],
    responses=paginated_schema(PatientSerializer, "PaginatedPatientList"),
    operation_id="patients_list",
)
@extend_schema(methods=["POST"], request=PatientCreateSerializer, responses={201: PatientSerializer, 400: ERROR_SCHEMA})
@api_view(["GET", "HEAD", "POST"])
@permission_classes(permission_classes_for(GET=["annotation.view_patient"], POST=["annotation.add_patient"]))
def patients(request: Request) -> Response:
    if request.method == "POST":
        form = PatientCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            patient = services.create_patient(**form.validated_data, actor=request.user)
        except services.PatientError as error:
            return error_response(str(error))
        patient.image_count = patient.labeled_image_count = 0
        return Response(PatientSerializer(patient).data, status=201)
    found = patients_with_counts()
    for field in ("cohort", "consent"):
        if request.query_params.get(field):
            found = found.filter(**{field: request.query_params[field]})
    if request.query_params.get("code"):
        found = found.filter(code__istartswith=request.query_params["code"])
    return _paginate(request, found, PatientSerializer)


@extend_schema(methods=["GET"], responses={200: PatientSerializer, 404: ERROR_SCHEMA})
@extend_schema(
    methods=["PATCH"],
    request=ConsentSerializer,
    responses={200: PatientSerializer, 400: ERROR_SCHEMA, 404: ERROR_SCHEMA},
    description="Withdraw or grant consent. Withdrawal hides the patient's images from labeling, "
    "export and every future training run; both are audit-logged.",
)
@api_view(["GET", "HEAD", "PATCH"])
@permission_classes(permission_classes_for(GET=["annotation.view_patient"], PATCH=["annotation.change_patient"]))
def patient_detail(request: Request, code: str) -> Response:
    patient = get_object_or_404(patients_with_counts(), code=code)
    if request.method == "PATCH":
        form = ConsentSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.set_consent(patient=patient, actor=request.user, **form.validated_data)
    return Response(PatientSerializer(patient).data)


@extend_schema(
    parameters=[OpenApiParameter("skip", str, description="comma-separated image ids passed over this session")],
    responses={200: QueueItemSerializer, 204: OpenApiResponse(description="the queue is empty")},
    description="The image is reserved for the caller for PAINSITE_QUEUE_RESERVATION_SECONDS (120 by default): "
    "other clinicians' queues pass it over until the caller scores it, skips it (sends its id in `skip`) or "
    "the reservation ends. Asking again returns the same image.",
)
@api_view(["GET", "HEAD"])
@permission_classes(permission_classes_for(GET=["annotation.add_painlabel"]))
def queue_next(request: Request) -> Response:
    skipped = [int(part) for part in request.query_params.get("skip", "").split(",") if part.strip().isdigit()]
    image = services.reserve_next_image(rater=request.user, skip=skipped[-MAX_SKIPPED:])
    if image is None:
        return Response(status=204)
    return Response(QueueItemSerializer(image).data)


@extend_schema(
    methods=["GET"],
    parameters=[OpenApiParameter("page", int)],
    responses={200: paginated_schema(LabelSerializer, "PaginatedImageLabelList"), 403: ERROR_SCHEMA, 404: ERROR_SCHEMA},
    operation_id="image_labels_list",
    description="The image's label history, superseded rows included, newest first: the same rows as "
    "GET /api/labels/?image=<id>. An image whose patient withdrew consent is refused (403) except to admins.",
)
@extend_schema(
    methods=["POST"],
    request=LabelCreateSerializer,
    responses={201: LabelSerializer, 400: ERROR_SCHEMA, 404: ERROR_SCHEMA, 409: ERROR_SCHEMA},
)
@api_view(["GET", "HEAD", "POST"])
@permission_classes(permission_classes_for(GET=["annotation.view_painlabel"], POST=["annotation.add_painlabel"]))
def image_labels(request: Request, image_id: int) -> Response:
    if request.method in ("GET", "HEAD"):
        return _image_label_history(request, image_id)
    form = LabelCreateSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    try:
        # The service locks the image row anyway: no separate lookup before it.
        label = services.record_label(image=image_id, rater=request.user, **form.validated_data)
    except Image.DoesNotExist:
        raise Http404(gettext("no image %(image_id)s") % {"image_id": image_id}) from None
    except services.ConsentWithdrawnError as error:
        return error_response(str(error), status_code=409)
    except services.LabelingError as error:
        return error_response(str(error))
    return Response(LabelSerializer(label, context={"superseded_ids": set()}).data, status=201)


def _image_label_history(request: Request, image_id: int) -> Response:
    image = get_object_or_404(Image.objects.select_related("patient"), pk=image_id)
    if not may_view_image(request.user, image):
        return error_response(
            gettext("patient %(code)s withdrew consent: their images are hidden") % {"code": image.patient.code},
            status_code=403,
        )
    history = visible_label_history(request.user, image_id=image.pk)
    return _paginate(request, history, LabelSerializer, superseded_ids=_superseded_ids)


@extend_schema(
    request=None,
    responses={200: LabelSerializer, 409: ERROR_SCHEMA},
    description="Take back your most recent standing score: the answer is the new row, which restores the "
    "score it replaced or, for a first score, retracts it (is_retraction). Repeating walks further back.",
)
@api_view(["POST"])
@permission_classes(permission_classes_for(POST=["annotation.add_painlabel"]))
def undo_label(request: Request) -> Response:
    undo = services.undo_last_label(rater=request.user)
    if undo is None:
        return error_response(gettext("nothing to undo: you hold no score"), status_code=409)
    return Response(LabelSerializer(undo, context={"superseded_ids": set()}).data)


def _superseded_ids(page: list[PainLabel]) -> set[int]:
    ids = [label.pk for label in page]
    return set(PainLabel.objects.filter(supersedes_id__in=ids).values_list("supersedes_id", flat=True))


@extend_schema(
    parameters=[
        OpenApiParameter("image", int),
        OpenApiParameter("rater", str, description="username"),
        OpenApiParameter("patient", str, description="patient code"),
        OpenApiParameter("page", int),
    ],
    responses=paginated_schema(LabelSerializer, "PaginatedLabelList"),
    operation_id="labels_list",
    description="Label history, superseded rows included, newest first.",
)
@api_view(["GET", "HEAD"])
@permission_classes(permission_classes_for(GET=["annotation.view_painlabel"]))
def labels(request: Request) -> Response:
    image_id = request.query_params.get("image")
    if image_id is not None and not image_id.isdigit():
        return error_response(gettext("image must be an image id"))
    history = visible_label_history(request.user, image_id=int(image_id) if image_id else None)
    if request.query_params.get("rater"):
        history = history.filter(rater__username=request.query_params["rater"])
    if request.query_params.get("patient"):
        history = history.filter(image__patient__code=request.query_params["patient"])
    return _paginate(request, history, LabelSerializer, superseded_ids=_superseded_ids)


@extend_schema(
    responses=OpenApiTypes.OBJECT,
    description="ICC(2,1) with 95% CI, quadratic-weighted kappa, "
    "mean absolute difference, observer vs self-report, and images to adjudicate.",
)
@api_view(["GET", "HEAD"])
@permission_classes(permission_classes_for(GET=["annotation.view_painlabel"]))
def agreement(request: Request) -> Response:
    return Response(agreement_report())


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        # Only errors reach a renderer: the export itself is streamed.
        return json.dumps(data).encode()


EXPORT_COLUMNS = [
    "label_id",
    "patient_code",
    "cohort",
    "image_id",
    "sha256",
    "nrs",
    "kind",
    "rater",
    "created_at",
    "superseded",
    "supersedes",
    "is_undo",
    "is_retraction",
]


class _Line:
    """A write-only file for csv.writer that hands back each line it is given."""

    def write(self, text: str) -> str:
        return text


def _safe_cell(value: object) -> object:
    # Spreadsheets run cells that start with = + - @ as formulas; codes and usernames are typed in.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _export_rows(labels: QuerySet[PainLabel]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(EXPORT_COLUMNS)
    rows = labels.values_list(
        "id",
        "image__patient__code",
        "image__patient__cohort",
        "image_id",
        "image__sha256",
        "nrs",
        "kind",
        "rater__username",
        "created_at",
        "superseded_by__id",
        "supersedes_id",
        "is_undo",
        "is_retraction",
    )
    for row in rows.iterator(chunk_size=2000):
        (
            label_id,
            code,
            cohort,
            image_id,
            sha256,
            nrs,
            kind,
            rater,
            created_at,
            superseded_by,
            supersedes,
            undo,
            retraction,
        ) = row
        yield writer.writerow(
            [
                label_id,
                _safe_cell(code),
                cohort,
                image_id,
                sha256,
                nrs,
                kind,
                _safe_cell(rater),
                created_at.isoformat(),
                int(superseded_by is not None),
                supersedes or "",
                int(undo),
                int(retraction),
            ]
        )


@extend_schema(
    parameters=[
        OpenApiParameter("cohort", str, enum=["clinical", "simulated"]),
        OpenApiParameter("patient", str, description="patient code"),
    ],
    responses={(200, "text/csv"): OpenApiTypes.STR, 403: ERROR_SCHEMA},
    description="Every label row (history included) of patients who consent, one CSV row per label, "
    "streamed. Audit-logged as export.labels.",
)
@api_view(["GET", "HEAD"])
@renderer_classes([JSONRenderer, CSVRenderer])
@permission_classes(permission_classes_for(GET=["annotation.export_labels"]))
def export_labels(request: Request) -> StreamingHttpResponse:
    selected = PainLabel.objects.filter(image__patient__consent=Consent.GRANTED).order_by(
        "image_id", "created_at", "id"
    )
    filters = {}
    if request.query_params.get("cohort"):
        filters["cohort"] = request.query_params["cohort"]
        selected = selected.filter(image__patient__cohort=filters["cohort"])
    if request.query_params.get("patient"):
        filters["patient"] = request.query_params["patient"]
        selected = selected.filter(image__patient__code=filters["patient"])
    record_event(actor=request.user, action="export.labels", details={"filters": filters, "rows": selected.count()})
    response = StreamingHttpResponse(_export_rows(selected), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="painsite-labels-{stamp}.csv"'
    response["Cache-Control"] = "private, no-store"
    return response
