"""POST /api/assessments/ and GET /api/images/<id>/suggestion/ with a real (tiny) trained model."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from annotation.faces import detect_face
from annotation.models import Consent, Image, Patient
from annotation.services import record_label
from modeling.inference import models
from modeling.ml.levels import PainLevels
from modeling.ml.predict import load_model
from modeling.models import Assessment, Stage
from modeling.patient_timeline import patient_timeline
from painsite.core.models import AuditEvent
from tests.conftest import api_client_for
from tests.ml.real_photos import ASTRONAUT_FACE, astronaut, overlap
from tests.modeling.tiny_model import (
    make_face,
    make_face_jpeg,
    make_model_version,
    tiny_model,
)

LEVEL_NAMES = PainLevels.parse().names
URL = "/api/assessments/"


@pytest.fixture
def production(db):
    return make_model_version(tiny_model(), name="v1", stage=Stage.PRODUCTION)


@pytest.fixture
def patient(db) -> Patient:
    return Patient.objects.create(code="P-001", cohort="clinical", consent="granted")


def ml_core_probabilities(result, jpeg: bytes) -> np.ndarray:
    picture = PILImage.open(io.BytesIO(jpeg)).convert("RGB")
    return load_model(result.weights_path).predict_image(picture, detect_face(picture))


def post_image(user, jpeg: bytes | None = None, **fields):
    upload = SimpleUploadedFile("face.jpg", jpeg if jpeg is not None else make_face_jpeg(), content_type="image/jpeg")
    return api_client_for(user).post(URL, {"file": upload, **fields}, format="multipart")


def test_it_assesses_an_image_like_a_direct_call_of_the_ml_core(clinician, production):
    jpeg = make_face_jpeg(nrs=8, seed=1)
    response = post_image(clinician, jpeg)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert list(body["probabilities"]) == LEVEL_NAMES
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    expected = ml_core_probabilities(tiny_model(), jpeg)
    np.testing.assert_allclose([body["probabilities"][name] for name in LEVEL_NAMES], expected, atol=1e-6)
    assert body["level"] == LEVEL_NAMES[int(np.argmax(expected))]
    assert body["model_version"] == production.pk and body["model_version_name"] == "v1"
    assert body["face_found"] is True and len(body["face_box"]) == 4
    assert body["assessment_id"] is None and body["heatmap"] is None


def test_without_a_patient_nothing_is_stored(clinician, production):
    post_image(clinician)
    assert Image.objects.count() == 0
    assert Assessment.objects.count() == 0
    assert not AuditEvent.objects.filter(action="assessment.create").exists()


def test_with_a_patient_it_stores_the_image_the_assessment_and_an_audit_event(clinician, production, patient):
    response = post_image(clinician, patient="P-001")
    assert response.status_code == 201, response.json()
    body = response.json()
    assessment = Assessment.objects.get(pk=body["assessment_id"])
    assert assessment.patient == patient and assessment.model_version == production
    assert assessment.assessed_by == clinician and assessment.level == body["level"]
    assert assessment.probabilities == body["probabilities"] and assessment.face_found
    image = Image.objects.get(pk=body["image_id"])
    assert image.patient == patient and image.label_count == 0 and image.uploaded_by == clinician
    event = AuditEvent.objects.get(action="assessment.create")
    assert event.actor == clinician and event.object_id == str(assessment.pk)
    assert event.details["model_version"] == "v1" and event.details["patient"] == "P-001"


def test_the_patients_self_report_is_recorded_on_the_assessed_image(clinician, production, patient):
    body = post_image(clinician, patient="P-001").json()
    response = api_client_for(clinician).post(
        f"/api/images/{body['image_id']}/labels/", {"nrs": 7, "kind": "self_report"}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert Image.objects.get(pk=body["image_id"]).labels.get().nrs == 7


def test_the_same_picture_assessed_twice_reuses_the_stored_image(clinician, production, patient):
    jpeg = make_face_jpeg(seed=3)
    first = post_image(clinician, jpeg, patient="P-001").json()
    second = post_image(clinician, jpeg, patient="P-001").json()
    assert first["image_id"] == second["image_id"]
    assert first["assessment_id"] != second["assessment_id"]
    assert Image.objects.count() == 1 and Assessment.objects.count() == 2


def test_it_refuses_to_file_a_picture_already_stored_for_another_patient(clinician, production, patient):
    Patient.objects.create(code="P-002", cohort="clinical", consent="granted")
    jpeg = make_face_jpeg(seed=4)
    post_image(clinician, jpeg, patient="P-001")
    response = post_image(clinician, jpeg, patient="P-002")
    assert response.status_code == 409
    assert "another patient" in response.json()["error"]
    assert Assessment.objects.count() == 1


def test_record_off_stores_nothing_even_with_a_patient(clinician, production, patient):
    response = post_image(clinician, patient="P-001", record="false")
    assert response.status_code == 200
    assert response.json()["assessment_id"] is None
    assert Image.objects.count() == 0 and Assessment.objects.count() == 0


def test_it_does_not_store_images_of_a_patient_who_withdrew_consent(clinician, production, patient):
    Patient.objects.filter(pk=patient.pk).update(consent=Consent.WITHDRAWN)
    response = post_image(clinician, patient="P-001")
    assert response.status_code == 409
    assert "withdrew consent" in response.json()["error"]
    assert Image.objects.count() == 0


def test_it_rejects_an_unknown_patient(clinician, production):
    response = post_image(clinician, patient="nobody")
    assert response.status_code == 400
    assert "unknown patient" in response.json()["error"]


def test_it_answers_409_and_says_how_to_get_a_model_when_none_is_in_production(clinician, db):
    response = post_image(clinician)
    assert response.status_code == 409
    error = response.json()["error"]
    assert "no production model" in error and "/training/" in error and "/results/" in error


def test_it_rejects_a_file_that_is_not_an_image(clinician, production, patient):
    response = post_image(clinician, b"%PDF-1.4 not a face", patient="P-001")
    assert response.status_code == 400
    assert "not a readable image" in response.json()["error"]
    assert Image.objects.count() == 0 and Assessment.objects.count() == 0


def test_it_rejects_an_oversize_upload(clinician, production, settings):
    settings.PAINSITE_MAX_UPLOAD_BYTES = 1000
    response = post_image(clinician, make_face_jpeg())
    assert response.status_code == 400
    assert "the limit is 1,000 bytes" in response.json()["error"]


def test_it_rejects_an_image_with_too_many_pixels(clinician, production, settings):
    settings.PAINSITE_MAX_IMAGE_PIXELS = 100 * 100
    response = post_image(clinician, make_face_jpeg(size=(160, 120)))
    assert response.status_code == 400
    assert "pixels" in response.json()["error"]


def png_of(picture: PILImage.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def colour_bars_png() -> bytes:
    """Colour bars, as a camera with no one in front of it (or a test signal) shows."""
    bars = np.zeros((240, 320, 3), dtype=np.uint8)
    for index, colour in enumerate(
        [(255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0), (255, 0, 255), (255, 0, 0), (0, 0, 255), (0, 0, 0)]
    ):
        bars[:, index * 40 : (index + 1) * 40] = colour
    return png_of(PILImage.fromarray(bars))


# Beside the shuttle in the astronaut photo: a patch the cascade once took for a face.
ASTRONAUT_BACKGROUND = (250, 60, 512, 330)


def assert_no_score(body: dict) -> None:
    assert body["face_found"] is False and body["face_box"] is None
    assert body["level"] is None and body["probabilities"] is None and body["severe_probability"] is None
    assert body["alert"] is False and body["heatmap"] is None
    assert "no face" in body["reason"]
    assert body["assessment_id"] is None and body["image_id"] is None


@pytest.mark.parametrize("picture", ["test pattern", "astronaut background"])
def test_no_face_gets_no_level_no_probabilities_and_no_alert(clinician, production, settings, picture):
    settings.PAINSITE_SEVERE_ALERT_THRESHOLD = 0.0  # every scored picture would raise the alert
    data = colour_bars_png() if picture == "test pattern" else png_of(astronaut().crop(ASTRONAUT_BACKGROUND))
    response = post_image(clinician, data, heatmap="true")
    assert response.status_code == 200, response.json()
    assert_no_score(response.json())
    assert response.json()["model_version"] == production.pk


def test_no_face_stores_nothing_for_the_patient_even_with_record_on(clinician, production, patient):
    response = post_image(clinician, colour_bars_png(), patient="P-001", record="true")
    assert response.status_code == 200, response.json()
    assert_no_score(response.json())
    assert Image.objects.count() == 0 and Assessment.objects.count() == 0
    assert not AuditEvent.objects.filter(action="assessment.create").exists()
    assert api_client_for(clinician).get("/api/queue/next/").status_code == 204
    assert [point for point in patient_timeline(patient, viewer=clinician) if point["source"] == "model"] == []


def test_a_real_photo_is_assessed_on_its_face(clinician, production):
    """The astronaut photo as PNG: the box is her face, not the background beside the shuttle."""
    body = post_image(clinician, png_of(astronaut())).json()
    assert body["face_found"] is True and body["level"] in LEVEL_NAMES
    assert overlap(tuple(body["face_box"]), ASTRONAUT_FACE) >= 0.8


def test_an_earlier_assessment_without_a_face_is_not_on_the_timeline(clinician, production, patient):
    stored = post_image(clinician, make_face_jpeg(seed=3), patient="P-001").json()
    Assessment.objects.filter(pk=stored["assessment_id"]).update(face_found=False)
    assert [point for point in patient_timeline(patient, viewer=clinician) if point["source"] == "model"] == []


def test_the_heatmap_overlay_is_a_png_with_the_images_aspect(clinician, production):
    picture = make_face(seed=6, size=(200, 150))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    body = post_image(clinician, buffer.getvalue(), heatmap="true").json()
    overlay = PILImage.open(io.BytesIO(base64.b64decode(body["heatmap"])))
    assert overlay.format == "PNG" and overlay.size == (200, 150)
    changed = np.abs(np.asarray(overlay, dtype=int) - np.asarray(picture, dtype=int)).sum(axis=2)
    assert changed.std() > 0
    # Only the face crop is explained: the canvas right of the face is left as it was.
    assert body["face_found"] and changed[:, 190:].max() == 0


def test_the_alert_follows_the_severe_probability_threshold(clinician, production, settings):
    settings.PAINSITE_SEVERE_ALERT_THRESHOLD = 0.0
    assert post_image(clinician).json()["alert"] is True
    settings.PAINSITE_SEVERE_ALERT_THRESHOLD = 1.0
    body = post_image(clinician).json()
    assert body["alert"] is (body["level"] == "severe")
    assert body["severe_probability"] == pytest.approx(body["probabilities"]["severe"])


def test_a_researcher_can_assess_with_a_candidate_version(researcher, production):
    other = tiny_model(head_hidden=0)
    candidate = make_model_version(other, name="v2", stage=Stage.CANDIDATE)
    jpeg = make_face_jpeg(seed=6)
    body = post_image(researcher, jpeg, model_version="v2").json()
    assert body["model_version"] == candidate.pk
    np.testing.assert_allclose(
        [body["probabilities"][n] for n in LEVEL_NAMES], ml_core_probabilities(other, jpeg), atol=1e-6
    )


def test_it_rejects_a_model_version_that_does_not_exist(researcher, production):
    response = post_image(researcher, model_version="999")
    assert response.status_code == 400
    assert "does not exist" in response.json()["error"]


def test_it_rejects_an_archived_model_version(researcher, production):
    archived = make_model_version(tiny_model(), name="v0", stage=Stage.ARCHIVED)
    response = post_image(researcher, model_version=str(archived.pk))
    assert response.status_code == 400
    assert "archived" in response.json()["error"]


def test_a_clinician_assesses_only_with_the_production_model(clinician, production):
    response = post_image(clinician, model_version=str(production.pk))
    assert response.status_code == 403


def test_a_damaged_weights_file_is_reported_not_served(clinician, db, tmp_path):
    damaged = tmp_path / "weights.pt"
    damaged.write_bytes(b"not weights")
    version = make_model_version(tiny_model(), name="v9", stage=Stage.PRODUCTION)
    type(version).objects.filter(pk=version.pk).update(weights_path=str(damaged))
    models.clear()
    response = post_image(clinician)
    assert response.status_code == 503
    assert "v9 cannot be loaded" in response.json()["error"]


def test_anonymous_users_get_401_and_outsiders_403(outsider, production):
    assert post_image(None).status_code == 401
    assert post_image(outsider).status_code == 403


def suggestion(user, image_id: int):
    return api_client_for(user).get(f"/api/images/{image_id}/suggestion/")


def test_the_suggestion_is_shown_only_after_the_rater_saved_a_score(clinician, clinician2, production, patient):
    image_id = post_image(clinician, make_face_jpeg(seed=8), patient="P-001", record="true").json()["image_id"]
    image = Image.objects.get(pk=image_id)
    assert suggestion(clinician2, image_id).status_code == 403
    record_label(image=image, rater=clinician2, nrs=3, kind="observer")
    response = suggestion(clinician2, image_id)
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == production.pk
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert body["probabilities"] == Assessment.objects.get(image=image).probabilities


def test_the_suggestion_for_an_image_never_assessed_comes_from_its_stored_file(clinician, production, patient):
    from annotation.intake import store_image

    image = store_image(data=make_face_jpeg(seed=9), filename="x.jpg", patient=patient, uploaded_by=clinician).image
    record_label(image=image, rater=clinician, nrs=5, kind="observer")
    body = suggestion(clinician, image.pk).json()
    with image.file.open("rb") as handle:
        picture = PILImage.open(handle).convert("RGB")
    expected = load_model(tiny_model().weights_path).predict_image(
        picture, tuple(image.face_box) if image.face_box else None
    )
    np.testing.assert_allclose([body["probabilities"][n] for n in LEVEL_NAMES], expected, atol=1e-6)
    assert Assessment.objects.count() == 0


def test_the_suggestion_gives_no_level_for_an_image_without_a_face_box(clinician, production, patient):
    from annotation.intake import store_image

    image = store_image(data=colour_bars_png(), filename="x.png", patient=patient, uploaded_by=clinician).image
    assert image.face_box is None
    record_label(image=image, rater=clinician, nrs=5, kind="observer")
    response = suggestion(clinician, image.pk)
    assert response.status_code == 200
    body = response.json()
    assert body["face_found"] is False and body["level"] is None and body["probabilities"] is None
    assert body["alert"] is False and "no face" in body["reason"]


def test_the_suggestion_answers_409_without_a_production_model(clinician, patient):
    from annotation.intake import store_image

    image = store_image(data=make_face_jpeg(seed=10), filename="x.jpg", patient=patient, uploaded_by=clinician).image
    record_label(image=image, rater=clinician, nrs=5, kind="observer")
    assert suggestion(clinician, image.pk).status_code == 409


def test_the_grad_cam_heatmap_covers_the_face_crop_with_varied_values(production):
    from modeling.ml.transforms import face_crop_box

    picture = make_face(seed=6, size=(200, 150))
    face_box = detect_face(picture)
    served = models.get(production)
    heatmap = served.heatmap(picture, face_box, level=3)
    assert heatmap.shape == (150, 200)
    assert 0.0 <= heatmap.min() and heatmap.max() <= 1.0 and heatmap.std() > 0
    x, y, w, h = face_crop_box(picture.size, face_box)
    outside = heatmap.copy()
    outside[y : y + h, x : x + w] = 0
    assert outside.max() == 0.0
    assert heatmap[y : y + h, x : x + w].std() > 0
