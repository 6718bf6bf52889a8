"""The model version page says how many of its images had no detected face (the full image was used)."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from PIL import Image as PILImage

from annotation.intake import store_image
from annotation.models import Patient
from modeling.models import ModelVersion
from tests.modeling.registry_data import make_model_version
from tests.modeling.tiny_model import make_face_jpeg

pytestmark = pytest.mark.django_db


def grey_png(shade: int) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (120, 90), (shade, shade, shade)).save(buffer, "PNG")
    return buffer.getvalue()


def test_the_version_page_counts_the_manifest_images_without_a_face(client, researcher):
    patient = Patient.objects.create(code="C-1", cohort="clinical", consent="granted")
    uploads = [make_face_jpeg(seed=1), make_face_jpeg(seed=3), grey_png(90), grey_png(140)]
    images = [store_image(data=data, filename="x", patient=patient, uploaded_by=researcher).image for data in uploads]
    assert [image.face_box is None for image in images] == [False, False, True, True]
    version = make_model_version("v1")
    ModelVersion.objects.filter(pk=version.pk).update(
        data_manifest={"images": [{"image_id": image.pk} for image in images[1:]]}
    )
    client.force_login(researcher)
    html = client.get(reverse("results-version", args=[version.pk])).content.decode()
    note = html[html.index('id="images-without-face"') :]
    assert "2 of 3" in note[: note.index("</div>")] and "whole image" in note[: note.index("</div>")]


def test_a_manifest_of_image_and_label_pairs_is_counted_too(client, researcher):
    patient = Patient.objects.create(code="C-1", cohort="clinical", consent="granted")
    image = store_image(data=grey_png(90), filename="x", patient=patient, uploaded_by=researcher).image
    version = make_model_version("v1")
    ModelVersion.objects.filter(pk=version.pk).update(data_manifest={"images": [[image.pk, 5]]})
    client.force_login(researcher)
    html = client.get(reverse("results-version", args=[version.pk])).content.decode()
    note = html[html.index('id="images-without-face"') :]
    assert "1 of 1" in note[: note.index("</div>")]
