"""Label a queue with the keyboard alone in headless Chromium, then undo."""

from __future__ import annotations

import pytest
from django.urls import get_resolver

from annotation.models import Image, PainLabel
from tests.annotation.factories import make_image, make_patient

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_clinician_labels_three_images_with_the_keyboard_and_undoes_the_last(page_for, clinician):
    patient = make_patient("P001")
    images = [make_image(patient) for _ in range(3)]
    # Import every URL module before the browser's first request, so a busy machine does not
    # spend the page's time budget on imports in the live server thread.
    get_resolver().url_patterns
    page = page_for(clinician)
    page.goto("/label/", wait_until="domcontentloaded", timeout=60_000)

    for image, key in zip(images, ["3", "t", "0"]):
        page.wait_for_selector(f"#image-id:text-is('{image.pk}')")
        page.keyboard.press(key)
        page.wait_for_selector(f"#label-status:has-text('for image {image.pk}')")
    page.wait_for_selector("#queue-empty:visible")

    stored = {label.image_id: label.nrs for label in PainLabel.objects.filter(rater=clinician)}
    assert stored == {images[0].pk: 3, images[1].pk: 10, images[2].pk: 0}

    page.keyboard.press("u")
    page.wait_for_selector(f"#label-status:has-text('image {images[2].pk} is taken back')")
    page.wait_for_selector(f"#image-id:text-is('{images[2].pk}')")
    undo = PainLabel.objects.get(rater=clinician, is_undo=True)
    assert (undo.image_id, undo.is_retraction) == (images[2].pk, True)
    assert Image.objects.get(pk=images[2].pk).label_count == 0

    # The self-report toggle and the re-labeled image, still by keyboard only; with no production
    # model the optional suggestion says so instead of failing.
    page.check("#show-suggestion")
    page.keyboard.press("s")
    page.keyboard.press("7")
    page.wait_for_selector("#queue-empty:visible")
    assert f"No model suggestion for image {images[2].pk}" in page.inner_text("#suggestion")
    current = PainLabel.objects.current().get(image_id=images[2].pk)
    assert (current.nrs, current.kind) == (7, "self_report")
    assert not [message for message in page.console_messages if message.startswith("pageerror")]
