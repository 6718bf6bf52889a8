"""Assess an uploaded photo and monitor a patient through Chromium's fake camera.

Chromium's own fake camera shows a test pattern with no face (the no-face tests use it); for
frames with a face a second Chromium plays the astronaut photo as its camera (a Y4M file).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import get_resolver
from PIL import Image as PILImage

from annotation.models import Image, PainLabel, Patient
from modeling.inference import models
from modeling.ml.levels import PainLevels
from modeling.models import Assessment, Stage
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.ml.real_photos import astronaut
from tests.modeling.tiny_model import make_face_jpeg, make_model_version, tiny_model

pytestmark = pytest.mark.django_db(transaction=True)

LEVEL_NAMES = PainLevels.parse().names


@pytest.fixture
def production(transactional_db):
    version = make_model_version(tiny_model(), name="v1", stage=Stage.PRODUCTION)
    # Load the model and import every URL module before the browser's first request, so a busy
    # machine does not spend the page's time budget on them in the live server thread.
    models.get(version)
    get_resolver().url_patterns  # noqa: B018 - the access imports every view module
    return version


def y4m_frame(picture: PILImage.Image) -> bytes:
    width, height = picture.size
    luma, blue, red = (np.asarray(plane) for plane in picture.convert("RGB").convert("YCbCr").split())
    half = (width // 2, height // 2)
    chroma = [np.asarray(PILImage.fromarray(plane).resize(half, PILImage.BILINEAR)) for plane in (blue, red)]
    return b"FRAME\n" + luma.tobytes() + chroma[0].tobytes() + chroma[1].tobytes()


def write_y4m(pictures: list[PILImage.Image], path: Path, *, frame_rate: str = "5:1") -> Path:
    """Pictures (of even width and height) as a YUV4MPEG2 video (4:2:0), the format Chromium's
    fake camera plays, looping."""
    width, height = pictures[0].size
    header = f"YUV4MPEG2 W{width} H{height} F{frame_rate} Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + b"".join(y4m_frame(picture) for picture in pictures))
    return path


def camera_browser(browser, video: Path):
    return browser.browser_type.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={video}"],
    )


def open_page(browser, live_server, user: User):
    client = Client()
    client.force_login(user)
    context = browser.new_context(base_url=live_server.url)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.console_messages = []
    page.on("pageerror", lambda error: page.console_messages.append(f"pageerror: {error}"))
    return page


@pytest.fixture(scope="module")
def face_camera_browser(browser, tmp_path_factory):
    """A second Chromium, from the same Playwright, whose fake camera shows the astronaut's face."""
    video = write_y4m([astronaut().resize((320, 320))] * 2, tmp_path_factory.mktemp("camera") / "face.y4m")
    camera = camera_browser(browser, video)
    yield camera
    camera.close()


@pytest.fixture
def face_camera_page_for(face_camera_browser, live_server):
    pages = []

    def page_for(user: User):
        pages.append(open_page(face_camera_browser, live_server, user))
        return pages[-1]

    yield page_for
    for page in pages:
        page.context.close()


def test_the_monitor_assesses_camera_frames_and_charts_them_without_storing(
    face_camera_page_for, clinician, production
):
    page = face_camera_page_for(clinician)
    page.goto("/monitor/", wait_until="domcontentloaded", timeout=60_000)
    page.fill("#monitor-interval", "1")
    page.click("#monitor-start")
    # Two assessments: a point per level each (the page's CSP forbids wait_for_function's eval).
    page.locator("#monitor-timeline circle.point").nth(2 * len(LEVEL_NAMES) - 1).wait_for(
        state="attached", timeout=60_000
    )
    assert page.inner_text("#monitor-level") in LEVEL_NAMES
    assert page.locator("#monitor-timeline g.series").count() == len(LEVEL_NAMES)
    assert page.locator("#monitor-timeline circle.point").count() >= 2 * len(LEVEL_NAMES)
    assert page.locator("#monitor-bars .bar-row").count() == len(LEVEL_NAMES)
    assert "nothing stored" in page.inner_text("#monitor-status")

    page.click("#monitor-pause")
    assert page.get_attribute("#monitor-pause", "aria-pressed") == "true"
    page.click("#monitor-stop")
    page.wait_for_selector("#monitor-status:has-text('Stopped')")
    assert Image.objects.count() == 0 and Assessment.objects.count() == 0
    assert not [message for message in page.console_messages if message.startswith("pageerror")]


def test_the_monitor_stores_frames_for_the_patient_when_record_is_on(face_camera_page_for, clinician, production):
    patient = Patient.objects.create(code="P-MON", cohort="clinical", consent="granted")
    page = face_camera_page_for(clinician)
    page.goto("/monitor/", wait_until="domcontentloaded", timeout=60_000)
    page.fill("#monitor-patient", "P-MON")
    page.check("#monitor-record")
    page.click("#monitor-start")
    page.wait_for_selector("#monitor-status:has-text('each frame stored')", timeout=60_000)
    page.click("#monitor-stop")
    assessment = Assessment.objects.filter(patient=patient).first()
    assert assessment is not None and assessment.model_version == production
    assert assessment.image.patient == patient


def test_an_uploaded_photo_shows_its_level_heatmap_and_takes_the_self_report(page_for, clinician, production):
    Patient.objects.create(code="P-001", cohort="clinical", consent="granted")
    page = page_for(clinician)
    page.goto("/assess/", wait_until="domcontentloaded", timeout=60_000)
    page.fill("#assess-patient", "P-001")
    page.set_input_files(
        "#assess-file", files=[{"name": "face.jpg", "mimeType": "image/jpeg", "buffer": make_face_jpeg(seed=1)}]
    )
    page.click("#assess-button")
    page.wait_for_selector("#assess-result:visible", timeout=60_000)
    assert page.inner_text("#result-level") in LEVEL_NAMES
    assert page.inner_text("#result-version") == "v1"
    assert page.locator("#result-bars .bar-row").count() == len(LEVEL_NAMES)
    assert page.get_attribute("#result-image", "src").startswith("data:image/png;base64,")
    page.uncheck("#heatmap-toggle")
    assert page.get_attribute("#result-image", "src").startswith("blob:")

    page.fill("#self-report-nrs", "6")
    page.click("#self-report button[type=submit]")
    page.wait_for_selector("#self-report-status:has-text('recorded')")
    label = PainLabel.objects.get(rater=clinician)
    assert (label.nrs, label.kind) == (6, "self_report")
    assert label.image == Assessment.objects.get().image
    assert not [message for message in page.console_messages if message.startswith("pageerror")]


def test_the_monitor_shows_no_face_in_view_raises_no_alert_and_records_nothing(
    page_for, clinician, production, artifacts_dir, settings
):
    """Chromium's test pattern has no face: with Record on and an alert threshold every scored
    frame would pass, the page still shows no level, no alert, and the patient's timeline stays empty."""
    settings.PAINSITE_SEVERE_ALERT_THRESHOLD = 0.0
    patient = Patient.objects.create(code="P-EMPTY", cohort="clinical", consent="granted")
    page = page_for(clinician)
    page.goto("/monitor/", wait_until="domcontentloaded", timeout=60_000)
    page.fill("#monitor-patient", "P-EMPTY")
    page.fill("#monitor-interval", "1")
    page.fill("#monitor-consecutive", "1")
    page.check("#monitor-record")
    page.click("#monitor-start")
    # Out of view for three intervals: the page says so.
    page.wait_for_selector("#monitor-face-notice:has-text('No face in view since')", timeout=60_000)
    assert page.inner_text("#monitor-level") == "no face in view"
    assert int(page.inner_text("#monitor-no-face")) >= 3
    assert page.inner_text("#monitor-count") == "0" and page.inner_text("#monitor-streak") == "0"
    assert page.locator("#monitor-alert").is_hidden()
    assert page.locator("#monitor-timeline circle.point").count() == 0
    assert "No face in view" in page.inner_text("#monitor-status")
    page.screenshot(path=str(artifacts_dir / "monitor_no_face_in_view.png"), full_page=True)
    page.click("#monitor-stop")
    page.wait_for_selector("#monitor-status:has-text('Stopped')")

    assert Image.objects.count() == 0 and Assessment.objects.count() == 0
    page.goto(f"/patients/{patient.code}/", wait_until="domcontentloaded")
    assert page.locator("#timeline-table").inner_text().count("Model assessment") == 0
    page.screenshot(path=str(artifacts_dir / "patient_timeline_after_no_face_monitoring.png"), full_page=True)
    assert not [message for message in page.console_messages if message.startswith("pageerror")]


def test_a_reply_in_flight_when_paused_does_not_overwrite_paused(page_for, clinician, production):
    page = page_for(clinician)
    page.goto("/monitor/", wait_until="domcontentloaded", timeout=60_000)
    page.fill("#monitor-interval", "1")
    held = []
    # Hold the first request until the test lets it go; later ones pass.
    page.route("**/api/assessments/", lambda route: route.continue_() if held else held.append(route))
    with page.expect_request("**/api/assessments/"):
        page.click("#monitor-start")
    page.click("#monitor-pause")
    assert page.inner_text("#monitor-status").startswith("Paused")
    with page.expect_response("**/api/assessments/"):
        held[0].continue_()
    # Let the page handle the late reply (it would take milliseconds), then look again.
    page.wait_for_timeout(1500)
    assert page.inner_text("#monitor-status").startswith("Paused")
    assert page.inner_text("#monitor-no-face") == "0"


def test_stopping_the_monitor_clears_its_alert(face_camera_page_for, clinician, production, settings):
    settings.PAINSITE_SEVERE_ALERT_THRESHOLD = 0.0  # every assessed frame counts as severe
    page = face_camera_page_for(clinician)
    page.goto("/monitor/", wait_until="domcontentloaded", timeout=60_000)
    page.fill("#monitor-interval", "1")
    page.fill("#monitor-consecutive", "1")
    page.click("#monitor-start")
    page.wait_for_selector("#monitor-alert:has-text('Severe pain persists')", timeout=60_000)
    page.click("#monitor-stop")
    page.wait_for_selector("#monitor-status:has-text('Stopped')")
    assert page.locator("#monitor-alert").is_hidden()
    assert page.inner_text("#monitor-streak") == "0"


def test_assess_shows_no_face_in_view_for_a_photo_without_a_face(
    page_for, clinician, production, artifacts_dir, settings
):
    settings.PAINSITE_SEVERE_ALERT_THRESHOLD = 0.0
    Patient.objects.create(code="P-002", cohort="clinical", consent="granted")
    buffer = io.BytesIO()
    astronaut().crop((250, 60, 512, 330)).save(buffer, "PNG")  # the background beside the shuttle
    page = page_for(clinician)
    page.goto("/assess/", wait_until="domcontentloaded", timeout=60_000)
    page.fill("#assess-patient", "P-002")
    page.set_input_files(
        "#assess-file", files=[{"name": "wall.png", "mimeType": "image/png", "buffer": buffer.getvalue()}]
    )
    page.click("#assess-button")
    page.wait_for_selector("#assess-result:visible", timeout=60_000)
    assert page.inner_text("#result-level") == "no face in view"
    assert "No face in view" in page.inner_text("#assess-status")
    assert page.locator("#result-alert").is_hidden()
    assert page.locator("#result-bars .bar-row").count() == 0
    assert page.locator("#self-report").is_hidden() and page.locator("#self-report-unavailable").is_hidden()
    page.screenshot(path=str(artifacts_dir / "assess_no_face_in_view.png"), full_page=True)
    assert Image.objects.count() == 0 and Assessment.objects.count() == 0
    assert not [message for message in page.console_messages if message.startswith("pageerror")]


def test_frames_without_a_face_neither_add_to_nor_break_the_run_of_severe_assessments(
    browser, live_server, clinician, production, settings, tmp_path
):
    """The camera shows the face for two seconds, then an empty wall for two. Every assessed frame
    is severe (threshold 0); a wall frame is skipped, and with a frame every 3 s the face is never
    out of view for three intervals, so the run counts every assessed frame."""
    settings.PAINSITE_SEVERE_ALERT_THRESHOLD = 0.0
    face = astronaut().resize((320, 320))
    wall = astronaut().crop((250, 60, 512, 330)).resize((320, 320))
    camera = camera_browser(
        browser, write_y4m([face, face, wall, wall], tmp_path / "face-and-wall.y4m", frame_rate="1:1")
    )
    try:
        page = open_page(camera, live_server, clinician)
        page.goto("/monitor/", wait_until="domcontentloaded", timeout=60_000)
        page.fill("#monitor-interval", "3")
        page.fill("#monitor-consecutive", "1")
        page.click("#monitor-start")
        # Until a face was assessed after a frame without one (the page's CSP rules out
        # wait_for_function, so the counters are read in turn).
        walls_before_first_face = assessed_before_wall = None
        for _ in range(240):
            assessed, without_face = int(page.inner_text("#monitor-count")), int(page.inner_text("#monitor-no-face"))
            if assessed and walls_before_first_face is None:
                walls_before_first_face = without_face
            elif (
                walls_before_first_face is not None
                and without_face > walls_before_first_face
                and assessed_before_wall is None
            ):
                assessed_before_wall = assessed
            if assessed_before_wall is not None and assessed > assessed_before_wall:
                break
            page.wait_for_timeout(500)
        page.click("#monitor-pause")
        assessed = int(page.inner_text("#monitor-count"))
        assert assessed_before_wall and assessed > assessed_before_wall
        assert int(page.inner_text("#monitor-streak")) == assessed
        assert page.locator("#monitor-alert").is_visible() and page.locator("#monitor-face-notice").is_hidden()
    finally:
        camera.close()
