"""Assessment API: assess an uploaded face image, and the model's suggestion for a stored image.

The patient's self-reported NRS for an assessed image is recorded through the labels endpoint
(`POST /api/images/<id>/labels/` with kind `self_report`), like every other score.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes, permission_classes, throttle_classes
from rest_framework.fields import empty
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.image_access import may_view_image
from annotation.intake import ImageRejected, read_upload
from annotation.models import Image, PainLabel, Patient
from modeling.assessment import AssessmentRefused, assess_image, suggest_for_image
from modeling.inference import ModelLoadFailed, ModelVersionUnavailable, NoProductionModel
from painsite.core.api import error_response, permission_classes_for
from painsite.core.throttles import AssessmentThrottle

ERROR = OpenApiResponse(description='{"error": "...", "details": ...}')
CHOOSE_VERSION = "modeling.view_modelversion"
NO_FACE_SUGGESTION = gettext_lazy("no face was found in this image, so the model gives no pain level for it")


class OptionalBoolean(serializers.BooleanField):
    # DRF reads a field missing from a multipart form as an unticked checkbox (False); these
    # fields keep their declared default instead.
    default_empty_html = empty


class AssessmentRequestSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="the face image (JPEG, PNG, WebP, ...)")
    patient = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="patient code; with it the image and the assessment are stored (unless record is false)",
    )
    model_version = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="model version id or name (researchers); default: the production version",
    )
    heatmap = OptionalBoolean(default=False, help_text="include a Grad-CAM overlay as a base64 PNG")
    record = OptionalBoolean(default=True, help_text="store the image and the assessment when a patient is given")


class PredictionSerializer(serializers.Serializer):
    face_found = serializers.BooleanField(
        default=True,
        help_text="false when the image has no face box: then level, probabilities and severe_probability are null",
    )
    reason = serializers.CharField(default=None, allow_null=True, help_text="why there is no level; null otherwise")
    level = serializers.CharField(allow_null=True)
    probabilities = serializers.DictField(
        child=serializers.FloatField(), allow_null=True, help_text="level name -> probability"
    )
    model_version = serializers.IntegerField(source="version_id", required=False, help_text="absent without a face")
    model_version_name = serializers.CharField(source="version_name", required=False)
    severe_probability = serializers.FloatField(allow_null=True, help_text="P(NRS >= 7)")
    alert = serializers.BooleanField(
        help_text="severe pain: the level is severe, or P(NRS >= 7) is above the threshold"
    )


class AssessmentSerializer(serializers.Serializer):
    face_found = serializers.BooleanField(help_text="false: no face in view, so no level, probabilities or alert")
    reason = serializers.CharField(allow_null=True, help_text="why there is no level (no face found); null otherwise")
    level = serializers.CharField(source="prediction.level", allow_null=True)
    probabilities = serializers.DictField(
        source="prediction.probabilities", child=serializers.FloatField(), allow_null=True
    )
    model_version = serializers.IntegerField(source="version.pk")
    model_version_name = serializers.CharField(source="version.name")
    severe_probability = serializers.FloatField(source="prediction.severe_probability", allow_null=True)
    alert = serializers.BooleanField(
        help_text="severe pain: the level is severe, or P(NRS >= 7) is above the threshold; always false without a face"
    )
    face_box = serializers.ListField(child=serializers.IntegerField(), allow_null=True, help_text="[x, y, w, h]")
    heatmap = serializers.CharField(allow_null=True, help_text="base64 PNG overlay, when asked for")
    assessment_id = serializers.IntegerField(source="assessment.pk", allow_null=True, default=None)
    image_id = serializers.IntegerField(source="image.pk", allow_null=True, default=None)


@extend_schema(
    request={"multipart/form-data": AssessmentRequestSerializer},
    responses={200: AssessmentSerializer, 201: AssessmentSerializer, 400: ERROR, 403: ERROR, 409: ERROR, 503: ERROR},
    description="Assess a face image. 201 when the image and assessment were stored (a patient was given and "
    "record is on), 200 when nothing was stored. No face, no score: when no face is found the answer is 200 "
    "with face_found false, level, probabilities and severe_probability null, alert false and a reason, and "
    "nothing is stored even with record on. 409 when there is no production model.",
)
@api_view(["POST"])
@parser_classes([MultiPartParser, FormParser])
@permission_classes(permission_classes_for(POST=["modeling.add_assessment"]))
@throttle_classes([AssessmentThrottle])
def assessments(request: Request) -> Response:
    form = AssessmentRequestSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    options = form.validated_data
    patient = None
    if options.get("patient", "").strip():
        code = options["patient"].strip()
        patient = Patient.objects.filter(code=code).first()
        if patient is None:
            return error_response(gettext("unknown patient %(code)s") % {"code": repr(code)}, details={"patient": code})
    requested_version = options.get("model_version", "").strip() or None
    if requested_version is not None and not request.user.has_perm(CHOOSE_VERSION):
        return error_response(
            gettext("only researchers choose a model version; clinicians assess with the production model"),
            status_code=status.HTTP_403_FORBIDDEN,
        )
    upload = options["file"]
    try:
        result = assess_image(
            data=read_upload(upload),
            filename=upload.name,
            patient=patient,
            model_version=requested_version,
            actor=request.user,
            heatmap=options["heatmap"],
            record=options["record"],
        )
    except ImageRejected as rejected:
        return error_response(str(rejected), details={"filename": rejected.filename, "reason": rejected.reason})
    except NoProductionModel as error:
        return error_response(
            str(error), status_code=status.HTTP_409_CONFLICT, details={"train": "/training/", "promote": "/results/"}
        )
    except ModelVersionUnavailable as error:
        return error_response(str(error), details={"model_version": requested_version})
    except AssessmentRefused as error:
        return error_response(str(error), status_code=status.HTTP_409_CONFLICT)
    except ModelLoadFailed as error:
        return error_response(str(error), status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    created = result.assessment is not None
    return Response(
        AssessmentSerializer(result).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
    )


@extend_schema(
    responses={200: PredictionSerializer, 403: ERROR, 404: ERROR, 409: ERROR, 503: ERROR},
    description="The production model's suggestion for a stored image. Shown to a rater only after they have "
    "saved their own score for the image, so the model cannot anchor it (403 before).",
)
@api_view(["GET", "HEAD"])
@permission_classes(permission_classes_for(GET=["annotation.view_image", "modeling.view_assessment"]))
def image_suggestion(request: Request, image_id: int) -> Response:
    image = get_object_or_404(Image.objects.select_related("patient"), pk=image_id)
    if not may_view_image(request.user, image):
        return error_response(
            gettext("patient %(code)s withdrew consent: their images are hidden") % {"code": image.patient.code},
            status_code=status.HTTP_403_FORBIDDEN,
        )
    if not PainLabel.objects.filter(image=image, rater=request.user).exists():
        return error_response(
            gettext(
                "save your own score for this image first: the model's suggestion is shown only afterwards, so it cannot anchor your judgement"
            ),
            status_code=status.HTTP_403_FORBIDDEN,
        )
    try:
        prediction = suggest_for_image(image=image)
    except NoProductionModel as error:
        return error_response(str(error), status_code=status.HTTP_409_CONFLICT)
    except ModelLoadFailed as error:
        return error_response(str(error), status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    if prediction is None:
        # No model ran, so no version is named.
        return Response(
            {
                "face_found": False,
                "reason": str(NO_FACE_SUGGESTION),
                "level": None,
                "probabilities": None,
                "severe_probability": None,
                "alert": False,
            }
        )
    return Response(PredictionSerializer(prediction).data)
