"""Image bytes leave the server only through the authenticated view, audited; and the image pages."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from PIL import Image as PILImage

from annotation import image_access
from annotation.intake import store_image
from annotation.models import Consent, Patient
from annotation.services import record_label
from painsite.core.models import AuditEvent
from tests.annotation.image_factories import make_face_jpeg, make_jpeg, make_patient
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def make_image(patient=None, seed: int = 1, data: bytes | None = None):
    patient = patient or make_patient()
    return store_image(data=data or make_jpeg(seed=seed), filename="x.jpg", patient=patient, uploaded_by=None).image


def file_url(image, thumbnail: bool = False) -> str:
    return reverse("api-image-file", args=[image.pk]) + ("?thumbnail=1" if thumbnail else "")


def test_it_serves_the_stored_jpeg_with_private_no_store_headers(clinician):
    image = make_image(data=make_face_jpeg(seed=2))
    response = api_client_for(clinician).get(file_url(image), HTTP_ACCEPT="image/avif,image/webp,*/*")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == "private, no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == f'inline; filename="image-{image.pk}.jpg"'
    body = b"".join(response.streaming_content)
    with image.file.open("rb") as handle:
        assert body == handle.read()


def test_it_serves_a_thumbnail_on_request(clinician):
    image = make_image(data=make_face_jpeg(seed=3, width=640, height=480))
    response = api_client_for(clinician).get(file_url(image, thumbnail=True), HTTP_ACCEPT="image/jpeg")
    assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"
    assert PILImage.open(io.BytesIO(b"".join(response.streaming_content))).size == (256, 192)


def test_image_bytes_need_a_login_and_the_view_permission(outsider):
    image = make_image()
    assert api_client_for(None).get(file_url(image)).status_code == 401
    assert api_client_for(outsider).get(file_url(image)).status_code == 403
    assert not AuditEvent.objects.filter(action="image.view").exists()


def test_withdrawn_consent_images_are_served_only_to_admins(clinician, admin_user):
    image = make_image(make_patient("W1"))
    Patient.objects.filter(code="W1").update(consent=Consent.WITHDRAWN)
    refused = api_client_for(clinician).get(file_url(image))
    assert refused.status_code == 403 and "withdrew consent" in refused.json()["error"]
    assert api_client_for(admin_user).get(file_url(image)).status_code == 200


def test_a_missing_image_is_404(clinician):
    assert api_client_for(clinician).get(reverse("api-image-file", args=[12345])).status_code == 404


def test_full_size_views_are_audited_once_per_user_and_patient_per_window(clinician, clinician2):
    first_patient, second_patient = make_patient("P1"), make_patient("P2")
    a, b = make_image(first_patient, 1), make_image(first_patient, 2)
    c = make_image(second_patient, 3)
    carla, chen = api_client_for(clinician), api_client_for(clinician2)

    for image in (a, b, a, c):
        assert carla.get(file_url(image)).status_code == 200
    carla.get(file_url(a, thumbnail=True))
    chen.get(file_url(b))

    events = AuditEvent.objects.filter(action="image.view").order_by("id")
    assert [(event.actor_username, event.details["patient"], event.details["image"]) for event in events] == [
        ("carla", "P1", a.pk),
        ("carla", "P2", c.pk),
        ("chen", "P1", b.pk),
    ]


def test_thumbnails_are_not_audited(clinician):
    image = make_image()
    api_client_for(clinician).get(file_url(image, thumbnail=True))
    assert not AuditEvent.objects.filter(action="image.view").exists()


def test_a_view_after_the_window_is_audited_again(clinician, monkeypatch):
    image = make_image()
    monkeypatch.setattr(image_access, "VIEW_AUDIT_WINDOW", image_access.timedelta(0))
    client = api_client_for(clinician)
    client.get(file_url(image))
    client.get(file_url(image))
    assert AuditEvent.objects.filter(action="image.view").count() == 2


def test_the_images_page_lists_thumbnails_with_filters(client, clinician):
    labeled = make_image(make_patient("C1"), 1)
    # A code that cannot turn up by chance in a CSRF token elsewhere on the page.
    make_image(make_patient("SIM-HIDDEN", cohort="simulated"), 2)
    record_label(image=labeled, rater=clinician, nrs=3, kind="observer")
    client.force_login(clinician)

    page = client.get(reverse("image-list") + "?labeled=true").content.decode()
    assert f'src="{file_url(labeled, thumbnail=True)}"' in page
    assert "SIM-HIDDEN" not in page and "1 image" in page


def test_the_image_pages_need_login_and_permission(client, outsider):
    image = make_image()
    for url in (reverse("image-list"), reverse("image-detail", args=[image.pk]), reverse("upload")):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client.force_login(outsider)
    for url in (reverse("image-list"), reverse("image-detail", args=[image.pk]), reverse("upload")):
        assert client.get(url).status_code == 403


def test_the_image_page_shows_the_face_box_and_the_full_label_history(client, clinician, clinician2):
    image = make_image(data=make_face_jpeg(seed=4))
    record_label(image=image, rater=clinician, nrs=4, kind="observer")
    record_label(image=image, rater=clinician, nrs=6, kind="observer")
    record_label(image=image, rater=clinician2, nrs=7, kind="self_report")
    client.force_login(clinician)

    page = client.get(reverse("image-detail", args=[image.pk])).content.decode()
    assert 'class="face-box"' in page and f'data-box="{",".join(map(str, image.face_box))}"' in page
    history = page[page.index('id="label-history"') :]
    assert history.count("<tr><td>") == 3
    assert "carla" in history and "chen" in history and "Self-report" in history
    assert history.index(">7<") < history.index(">6<") < history.index(">4<")
    assert "corrects label" in history


def test_the_image_page_of_a_withdrawn_patient_is_for_admins_only(client, clinician, admin_user):
    image = make_image(make_patient("W1"))
    Patient.objects.filter(code="W1").update(consent=Consent.WITHDRAWN)
    client.force_login(clinician)
    assert client.get(reverse("image-detail", args=[image.pk])).status_code == 403
    client.force_login(admin_user)
    assert client.get(reverse("image-detail", args=[image.pk])).status_code == 200
