"""Label a queue with the keyboard alone in headless Chromium: real key sequences, typed fast."""

from __future__ import annotations

import pytest
from django.urls import get_resolver

from annotation.models import Image, PainLabel
from tests.annotation.factories import make_image, make_patient

pytestmark = pytest.mark.django_db(transaction=True)

IDLE = "#labeling[data-idle=true]"


def open_queue(page_for, user, n_images: int):
    patient = make_patient("P001")
    images = [make_image(patient) for _ in range(n_images)]
    # Import every URL module before the browser's first request, so a busy machine does not
    # spend the page's time budget on imports in the live server thread.
    get_resolver().url_patterns  # noqa: B018 - the access imports every view module
    page = page_for(user)
    page.goto("/label/", wait_until="domcontentloaded", timeout=60_000)
    page.wait_for_selector("#image-id:not(:empty)")
    page.wait_for_selector(IDLE, state="attached")
    return page, images


def current_scores(user) -> dict[int, tuple[int, str]]:
    return {label.image_id: (label.nrs, label.kind) for label in PainLabel.objects.current().filter(rater=user)}


def shown_image(page) -> int:
    return int(page.inner_text("#image-id"))


def no_page_errors(page) -> bool:
    return not [message for message in page.console_messages if message.startswith("pageerror")]


def test_a_clinician_labels_three_images_with_the_keyboard_and_undoes_the_last(page_for, clinician):
    page, images = open_queue(page_for, clinician, 3)
    remaining = [str(image.pk) for image in images]
    labeled: list[int] = []
    for key in ["3", "x", "0"]:
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

    # The self-report key and the re-labeled image, still by keyboard only; with no production
    # model the optional suggestion says so instead of failing.
    page.check("#show-suggestion")
    page.keyboard.press("r")
    page.keyboard.press("7")
    page.wait_for_selector("#queue-empty:visible")
    assert f"No model suggestion for image {labeled[2]}" in page.inner_text("#suggestion")
    current = PainLabel.objects.current().get(image_id=labeled[2])
    assert (current.nrs, current.kind) == (7, "self_report")
    assert no_page_errors(page)


def test_typing_1_then_0_fast_saves_nrs_10_on_the_image_shown_and_nothing_on_the_next(
    page_for, clinician, artifacts_dir
):
    page, _ = open_queue(page_for, clinician, 2)
    first = shown_image(page)
    page.keyboard.type("10")
    page.wait_for_selector(f"#label-status:has-text('Saved NRS 10 for image {first}')")
    page.wait_for_selector(IDLE, state="attached")
    assert current_scores(clinician) == {first: (10, "observer")}
    assert shown_image(page) != first
    page.screenshot(path=str(artifacts_dir / "labeling-keys.png"), full_page=True)
    assert no_page_errors(page)


def test_a_lone_1_is_saved_after_the_pause_and_1_then_another_digit_scores_two_images(page_for, clinician):
    page, _ = open_queue(page_for, clinician, 4)
    first = shown_image(page)
    page.keyboard.press("1")
    page.wait_for_selector(f"#label-status:has-text('Saved NRS 1 for image {first}')")
    page.wait_for_selector(IDLE, state="attached")
    second = shown_image(page)
    page.keyboard.type("14")
    page.wait_for_selector(IDLE, state="attached")
    third = [image for image in current_scores(clinician) if image not in (first, second)]
    assert len(third) == 1
    assert current_scores(clinician) == {first: (1, "observer"), second: (1, "observer"), third[0]: (4, "observer")}
    # Enter saves a waiting 1 at once; Escape takes it back before anything is saved.
    fourth = shown_image(page)
    page.keyboard.press("1")
    page.keyboard.press("Escape")
    page.wait_for_selector(IDLE, state="attached")
    assert fourth not in current_scores(clinician)
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#label-status:has-text('Saved NRS 1 for image {fourth}')")
    assert current_scores(clinician)[fourth] == (1, "observer")


def test_keys_pressed_while_a_save_is_in_flight_are_queued_in_order_undo_included(page_for, clinician):
    page, _ = open_queue(page_for, clinician, 3)
    first = shown_image(page)
    # Each key lands while the save before it is still on its way to the server.
    page.keyboard.type("3r5")
    page.keyboard.press("Control+z")
    page.wait_for_selector(IDLE, state="attached")
    scores = current_scores(clinician)
    # 3 (observer) on the first image, 5 (self-report) on the second, then that 5 undone.
    assert scores == {first: (3, "observer")}
    undone = PainLabel.objects.get(rater=clinician, is_undo=True)
    second = undone.image_id
    assert second != first and undone.is_retraction
    assert PainLabel.objects.filter(rater=clinician, image_id=second, nrs=5, kind="self_report").exists()
    page.wait_for_selector(f"#image-id:text-is('{second}')")
    assert "taken back" in page.inner_text("#label-status")
    assert no_page_errors(page)


def test_every_key_answers_on_screen_and_o_is_not_a_shortcut(page_for, clinician):
    page, _ = open_queue(page_for, clinician, 2)
    page.keyboard.press("o")
    assert "does nothing here" in page.inner_text("#key-feedback")
    page.keyboard.press("r")
    assert "self-report" in page.inner_text("#key-feedback")
    assert page.is_checked("input[name=kind][value=self_report]")
    page.keyboard.press("e")
    assert "observer" in page.inner_text("#key-feedback")
    assert page.is_checked("input[name=kind][value=observer]")
    page.keyboard.press("f")
    assert "zoom" in page.inner_text("#key-feedback")
    page.keyboard.press("1")
    assert "type 0 now for NRS 10" in page.inner_text("#key-feedback")
    page.keyboard.press("Escape")
    assert "not saved" in page.inner_text("#key-feedback")
    page.wait_for_selector(IDLE, state="attached")
    assert current_scores(clinician) == {}


def test_the_suggestion_after_a_save_names_the_model_version_as_the_rest_of_the_site_does(page_for, clinician):
    from annotation.intake import store_image
    from modeling.inference import models
    from modeling.models import Stage
    from tests.modeling.tiny_model import make_face_jpeg, make_model_version, tiny_model

    version = make_model_version(tiny_model(), name="v1", stage=Stage.PRODUCTION)
    models.get(version)
    patient = make_patient("P-suggest")
    image = store_image(data=make_face_jpeg(nrs=8), filename="face.jpg", patient=patient, uploaded_by=clinician).image
    get_resolver().url_patterns  # noqa: B018 - the access imports every view module
    page = page_for(clinician)
    page.goto("/label/", wait_until="domcontentloaded", timeout=60_000)
    page.wait_for_selector(f"#image-id:text-is('{image.pk}')")
    page.check("#show-suggestion")
    page.keyboard.press("6")
    page.wait_for_selector("#suggestion strong")
    heading = page.inner_text("#suggestion strong")
    assert heading.startswith("Production model v1 suggested") and f"Model {version.pk} " not in heading
