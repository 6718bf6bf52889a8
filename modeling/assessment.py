"""Assessing a face image with a model version: the clinical end of PainSite.

An upload is checked by the same intake rules as any image (decoded by Pillow, byte and pixel
limits, turned upright). With a patient and `record` on, the image is stored like any upload (so
it reaches the labeling queue, where the clinician's score can be added), and the assessment row
and an audit event are written. Without a patient nothing at all is stored.

No face, no score: a picture in which the detector finds no face gets no level, no
probabilities and no alert, and nothing is stored for it even with `record` on (a frame of an
empty bed or a turned head tells a clinician nothing, and keeping it would put an unassessable
picture of the patient into the labeling queue).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext, gettext_lazy

from annotation.faces import detect_face
from annotation.intake import ConsentNotGranted, DuplicateImage, prepare_image, require_consent, store_image
from annotation.models import Image, Patient
from modeling import inference
from modeling.inference import ServedModel
from modeling.ml.data import FaceBox
from modeling.ml.levels import PainLevels
from modeling.models import Assessment, ModelVersion
from painsite.core.services import record_event

SEVERE_NRS = 7
NO_FACE_REASON = gettext_lazy(
    "no face in view: the detector found no face in this picture, so the model gives no pain level "
    "and nothing was stored"
)


class AssessmentRefused(Exception):
    """The assessment could run but cannot be recorded as asked; the message says why."""


@dataclass(frozen=True)
class Prediction:
    """What one model version says about one picture."""

    version_id: int
    version_name: str
    level: str
    probabilities: dict[str, float]
    severe_probability: float
    alert: bool


@dataclass(frozen=True)
class AssessmentResult:
    """`prediction` is None exactly when no face was found."""

    prediction: Prediction | None
    face_box: FaceBox | None
    heatmap: str | None
    assessment: Assessment | None
    image: Image | None
    version: ModelVersion

    @property
    def face_found(self) -> bool:
        return self.face_box is not None

    @property
    def alert(self) -> bool:
        return self.prediction is not None and self.prediction.alert

    @property
    def reason(self) -> str | None:
        return None if self.face_found else str(NO_FACE_REASON)


def severe_levels(levels: PainLevels) -> list[int]:
    """Levels that lie wholly at NRS >= 7; the top level when a custom scale has none there."""
    found = [index for index, (low, _) in enumerate(levels.ranges) if low >= SEVERE_NRS]
    return found or [len(levels) - 1]


def describe(served: ServedModel, probabilities: np.ndarray) -> tuple[Prediction, int]:
    """Name the probabilities by level and decide the severe-pain alert. Also returns the index
    of the predicted level (the one a heatmap explains)."""
    probabilities = np.asarray(probabilities, dtype=float)
    levels = served.model.levels
    index = int(probabilities.argmax())
    severe = severe_levels(levels)
    severe_probability = float(probabilities[severe].sum())
    prediction = Prediction(
        version_id=served.version_id,
        version_name=served.version_name,
        level=levels.names[index],
        probabilities={name: float(value) for name, value in zip(levels.names, probabilities)},
        severe_probability=severe_probability,
        alert=index in severe or severe_probability > settings.PAINSITE_SEVERE_ALERT_THRESHOLD,
    )
    return prediction, index


def assess_image(
    *,
    data: bytes,
    filename: str,
    patient: Patient | None = None,
    model_version: ModelVersion | int | str | None = None,
    actor: User,
    heatmap: bool = False,
    record: bool = True,
) -> AssessmentResult:
    """Assess one uploaded image with `model_version` (the production version by default).

    Raises ImageRejected (unusable upload), NoProductionModel, ModelVersionUnavailable (unknown or
    archived version), ModelLoadFailed (unusable weights) and AssessmentRefused (cannot be
    recorded for this patient).
    """
    prepared = prepare_image(data=data, filename=filename)
    if isinstance(model_version, ModelVersion):
        model_version = model_version.pk
    # One lookup per request: everything below uses this row's model, so the version reported
    # is the version that produced the probabilities, even while a promotion happens.
    version = inference.resolve_version(model_version)
    recording = patient is not None and record
    if recording:
        try:
            require_consent(patient=patient, filename=filename)
        except ConsentNotGranted as refused:
            raise AssessmentRefused(refused.reason) from None
    served = inference.models.get(version)
    picture = prepared.picture
    face_box = detect_face(picture)
    if face_box is None:
        return AssessmentResult(None, None, None, assessment=None, image=None, version=version)
    prediction, level_index = describe(served, served.predict(picture, face_box))
    overlay = served.explain(picture, face_box, level=level_index) if heatmap else None
    if not recording:
        return AssessmentResult(prediction, face_box, overlay, assessment=None, image=None, version=version)
    image = _stored_image(data=data, filename=filename, patient=patient, actor=actor)
    with transaction.atomic():
        assessment = Assessment.objects.create(
            image=image,
            patient=patient,
            model_version=version,
            level=prediction.level,
            probabilities=prediction.probabilities,
            face_found=True,
            assessed_by=actor,
        )
        record_event(
            actor=actor,
            action="assessment.create",
            target=assessment,
            details={
                "patient": patient.code,
                "image": image.pk,
                "model_version": version.name,
                "level": prediction.level,
                "alert": prediction.alert,
            },
        )
    return AssessmentResult(prediction, face_box, overlay, assessment=assessment, image=image, version=version)


def _stored_image(*, data: bytes, filename: str, patient: Patient, actor: User) -> Image:
    """The image row for this upload: stored now, or the earlier row of the same picture."""
    try:
        return store_image(data=data, filename=filename, patient=patient, uploaded_by=actor).image
    except DuplicateImage as duplicate:
        existing = duplicate.existing_image
        if existing.patient_id != patient.pk:
            raise AssessmentRefused(
                gettext(
                    "this picture is already stored as image %(pk)s of another patient, %(existing_patient)s; check that patient %(code)s is the right one"
                )
                % {"pk": existing.pk, "existing_patient": duplicate.existing_patient, "code": patient.code}
            ) from None
        return existing


def suggest_for_image(*, image: Image) -> Prediction | None:
    """The production model's suggestion for a stored image (for the labeling page), or None
    when the image has no face box: no face, no level.

    An assessment of this image by the production version is reused; otherwise the stored file is
    assessed now with its stored face box, and nothing is written.
    """
    version = inference.resolve_version(None)
    if not image.face_box:
        return None
    served = inference.models.get(version)
    stored = image.assessments.filter(model_version=version, face_found=True).first()
    if stored is not None and set(stored.probabilities) == set(served.level_names):
        return describe(served, [stored.probabilities[name] for name in served.level_names])[0]
    with image.file.open("rb") as handle:
        prepared = prepare_image(data=handle.read(), filename=f"image-{image.pk}.jpg")
    return describe(served, served.predict(prepared.picture, tuple(image.face_box)))[0]
