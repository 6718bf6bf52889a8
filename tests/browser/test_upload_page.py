"""/upload/ in headless Chromium: several files at once, each with its own result."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from annotation.models import Image
from tests.annotation.image_factories import make_face_jpeg, make_jpeg, make_patient

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_clinician_uploads_several_files_and_sees_each_result(page_for, clinician):
    make_patient("P001")
    page = page_for(clinician)
    page.goto("/upload/", timeout=60_000)
    page.get_by_label("Patient code").fill("P001")
    files = [
        {"name": "face.jpg", "mimeType": "image/jpeg", "buffer": make_face_jpeg(seed=1)},
        {"name": "plain.jpg", "mimeType": "image/jpeg", "buffer": make_jpeg(seed=2)},
        {"name": "again.jpg", "mimeType": "image/jpeg", "buffer": make_jpeg(seed=2)},
        {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"this is not a photo" * 20},
    ]
    page.locator("#upload-files").set_input_files(files[:2])
    page.wait_for_selector("#upload-results li:nth-child(2)[data-outcome]")
    page.locator("#upload-files").set_input_files(files[2:])

    expect(page.locator("#upload-results li[data-outcome]")).to_have_count(4)
    rows = {
        row.locator(".upload-name").inner_text(): (
            row.get_attribute("data-outcome"),
            row.locator(".upload-status").inner_text(),
        )
        for row in page.locator("#upload-results li").all()
    }
    assert rows["face.jpg"][0] == "stored" and "face found" in rows["face.jpg"][1]
    assert rows["plain.jpg"][0] == "stored" and "no face found" in rows["plain.jpg"][1]
    assert rows["again.jpg"][0] == "duplicate"
    assert rows["notes.jpg"][0] == "rejected" and "not a readable image" in rows["notes.jpg"][1]
    assert page.locator("#upload-summary").inner_text() == "2 stored, 1 already stored, 1 rejected."
    assert Image.objects.filter(patient__code="P001", uploaded_by=clinician).count() == 2

    page.get_by_role("link", name=f"Image {Image.objects.get(face_box__isnull=False).pk}").click()
    page.wait_for_selector(".face-box")
    # The 409 and 400 answers above show up as "Failed to load resource"; script errors must not.
    script_errors = [
        line
        for line in page.console_messages
        if line.startswith(("error", "pageerror")) and "Failed to load resource" not in line
    ]
    assert not script_errors
