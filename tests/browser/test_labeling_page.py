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

    # The queue spreads clinicians over the oldest images, so the page decides the order.
    remaining = [str(image.pk) for image in images]
    labeled: list[int] = []
    for key in ["3", "t", "0"]:
        page.wait_for_function("ids => ids.includes(document.querySelector('#image-id').textContent)", arg=remaining)
        shown = page.inner_text("#image-id")
        page.keyboard.press(key)
        page.wait_for_selector(f"#label-status:has-text('for image {shown}')")
        remaining.remove(shown)
        labeled.append(int(shown))
    page.wait_for_selector("#queue-empty:visible")

    stored = {label.image_id: label.nrs for label in PainLabel.objects.filter(rater=clinician)}
    assert stored == {labeled[0]: 3, labeled[1]: 10, labeled[2]: 0}

    page.keyboard.press("u")
    page.wait_for_selector(f"#label-status:has-text('image {labeled[2]} is taken back')")
    page.wait_for_selector(f"#image-id:text-is('{labeled[2]}')")
    undo = PainLabel.objects.get(rater=clinician, is_undo=True)
    assert (undo.image_id, undo.is_retraction) == (labeled[2], True)
    assert Image.objects.get(pk=labeled[2]).label_count == 0

    # The self-report toggle and the re-labeled image, still by keyboard only; with no production
    # model the optional suggestion says so instead of failing.
    page.check("#show-suggestion")
    page.keyboard.press("s")
    page.keyboard.press("7")
    page.wait_for_selector("#queue-empty:visible")
    assert f"No model suggestion for image {labeled[2]}" in page.inner_text("#suggestion")
    current = PainLabel.objects.current().get(image_id=labeled[2])
    assert (current.nrs, current.kind) == (7, "self_report")
    assert not [message for message in page.console_messages if message.startswith("pageerror")]
