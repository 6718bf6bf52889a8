"""Ward monitoring in one process: rounds over real video files with the tiny model, alerts,
the board endpoint and the camera API. The worker process itself: tests/system/test_ward_worker.py."""

from __future__ import annotations

import logging
import shutil
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.models import Image, Patient
from modeling.models import ModelVersion, Stage
from modeling.patient_timeline import patient_timeline
from modeling.services import promote_model_version
from modeling.ward import escalate_overdue_alerts, put_patient_in_bed
from modeling.ward_frames import CameraReader
from modeling.ward_models import CameraSource, ReadingKind, SourceStatus, StreamAssessment, WardAlert
from modeling.ward_rounds import RoundReport, claim_due_slots, run_ward_round
from painsite.core.models import AdminNotice, AuditEvent
from tests.annotation.factories import make_patient
from tests.conftest import api_client_for
from tests.modeling.tiny_model import make_model_version, tiny_model
from tests.modeling.ward_data import empty_bed_video, face_video, make_camera, production_model

pytestmark = pytest.mark.django_db

INTERVAL = 10


@pytest.fixture
def production(db):
    return production_model()


@pytest.fixture
def reader():
    cameras = CameraReader()
    yield cameras
    cameras.close_all()


@pytest.fixture
def patient(db) -> Patient:
    return make_patient("P-101")


def at_slot(slot: int):
    return timezone.datetime.fromtimestamp(slot * INTERVAL + 1, tz=timezone.get_current_timezone())


def round_at(slot: int, reader: CameraReader) -> RoundReport:
    return run_ward_round(reader=reader, worker="test", now=at_slot(slot))


FIRST = int(timezone.now().timestamp() // INTERVAL)


def test_a_round_assesses_each_due_bed_once_per_slot_and_the_timeline_shows_it(
    admin_user, clinician, production, patient, reader
):
    other = make_patient("P-102")
    make_camera(admin_user, bed="1", url=face_video(), patient=patient)
    make_camera(admin_user, bed="2", url=face_video(seed=3, nrs=2), patient=other)
    report = round_at(FIRST, reader)
    assert (report.claimed, report.assessed) == (2, 2)
    assert round_at(FIRST, reader).claimed == 0  # the slot is taken: no second assessment
    assert round_at(FIRST + 1, reader).assessed == 2
    rows = StreamAssessment.objects.filter(patient=patient).order_by("slot")
    assert [(row.slot, row.kind) for row in rows] == [(FIRST, "assessed"), (FIRST + 1, "assessed")]
    row = rows[0]
    assert row.level in row.probabilities and abs(sum(row.probabilities.values()) - 1) < 1e-6
    assert row.model_version == production and len(row.face_box) == 4
    points = [point for point in patient_timeline(patient, viewer=clinician) if point["source"] == "model"]
    assert [point["bed"] for point in points] == ["1", "1"]
    assert points[0]["level"] == row.level and points[0]["image_id"] is None
    assert not Image.objects.exists()  # frames are not kept


def test_a_frame_without_a_face_gets_no_level_no_probabilities_and_no_timeline_point(
    admin_user, clinician, production, patient, reader, settings
):
    settings.PAINSITE_SEVERE_ALERT_THRESHOLD = 0.0
    settings.PAINSITE_MONITOR_ALERT_CONSECUTIVE = 1
    make_camera(admin_user, bed="1", url=empty_bed_video(), patient=patient)
    report = round_at(FIRST, reader)
    assert (report.assessed, report.no_face) == (0, 1)
    row = StreamAssessment.objects.get()
    assert (row.kind, row.level, row.probabilities, row.severe_probability) == ("no_face", "", None, None)
    assert CameraSource.objects.get().status == SourceStatus.ONLINE
    assert not WardAlert.objects.exists()
    assert patient_timeline(patient, viewer=clinician) == []
    bed = api_client_for(clinician).get("/api/ward/beds/").json()["beds"][0]
    assert bed["state"] == "no_face" and bed["last_reading"]["level"] is None and bed["trend"] == []


def test_the_database_refuses_a_level_on_a_slot_without_a_face_and_a_second_row_for_one_slot(
    admin_user, production, patient
):
    source = make_camera(admin_user, bed="1", url=face_video(), patient=patient)
    common = {"source": source, "bed": "1", "patient": patient, "interval_seconds": INTERVAL}
    with pytest.raises(IntegrityError), transaction.atomic():
        StreamAssessment.objects.create(
            **common, slot=5, last_slot=5, kind=ReadingKind.NO_FACE, level="severe", probabilities={"severe": 1.0}
        )
    StreamAssessment.objects.create(**common, slot=5, last_slot=5, kind=ReadingKind.NO_FRAME)
    with pytest.raises(IntegrityError), transaction.atomic():
        StreamAssessment.objects.create(**common, slot=5, last_slot=5, kind=ReadingKind.NO_FRAME)


def test_a_camera_that_gives_no_frames_is_offline_within_two_intervals_and_back_when_frames_return(
    admin_user, clinician, production, patient, reader, tmp_path
):
    video = tmp_path / "bed-1.avi"
    make_camera(admin_user, bed="1", url=video, patient=patient)
    assert round_at(FIRST, reader).no_frame == 1
    assert CameraSource.objects.get().status == SourceStatus.UNKNOWN
    round_at(FIRST + 1, reader)
    assert CameraSource.objects.get().status == SourceStatus.OFFLINE
    assert api_client_for(clinician).get("/api/ward/beds/").json()["beds"][0]["state"] == "offline"
    shutil.copy(face_video(), video)
    assert round_at(FIRST + 2, reader).assessed == 1
    source = CameraSource.objects.get()
    assert source.status == SourceStatus.ONLINE and source.failed_grabs == 0
    video.unlink()  # removed while the worker holds it open
    round_at(FIRST + 3, reader)
    round_at(FIRST + 4, reader)
    assert CameraSource.objects.get().status == SourceStatus.OFFLINE
    kinds = list(StreamAssessment.objects.order_by("slot").values_list("kind", flat=True))
    assert kinds == ["no_frame", "no_frame", "assessed", "no_frame", "no_frame"]


def test_slots_no_worker_handled_are_recorded_as_one_gap_and_a_dead_workers_claim_as_missed(
    admin_user, production, patient, reader
):
    make_camera(admin_user, bed="1", url=face_video(), patient=patient)
    round_at(FIRST, reader)
    round_at(FIRST + 5, reader)  # nobody ran for four slots
    gap = StreamAssessment.objects.get(kind=ReadingKind.MISSED)
    assert (gap.slot, gap.last_slot, gap.level) == (FIRST + 1, FIRST + 4, "")
    # A worker takes the next slot and dies before recording it.
    claim_due_slots(worker="dead", report=RoundReport(), now=at_slot(FIRST + 6))
    assert StreamAssessment.objects.get(slot=FIRST + 6).kind == ReadingKind.PENDING
    round_at(FIRST + 7, reader)
    rows = list(StreamAssessment.objects.order_by("slot").values_list("slot", "last_slot", "kind"))
    assert rows == [
        (FIRST, FIRST, "assessed"),
        (FIRST + 1, FIRST + 4, "missed"),
        (FIRST + 5, FIRST + 5, "assessed"),
        (FIRST + 6, FIRST + 6, "missed"),
        (FIRST + 7, FIRST + 7, "assessed"),
    ]


def test_a_new_patient_in_the_bed_starts_at_the_next_free_slot_and_keeps_the_rows_apart(
    admin_user, production, patient, reader
):
    source = make_camera(admin_user, bed="1", url=face_video(), patient=patient)
    round_at(FIRST, reader)
    put_patient_in_bed(source=source, patient=make_patient("P-105"), actor=admin_user)
    assert round_at(FIRST, reader).claimed == 0  # this slot has its row (the previous patient's)
    assert round_at(FIRST + 3, reader).assessed == 1
    rows = list(StreamAssessment.objects.order_by("slot").values_list("slot", "last_slot", "patient__code", "kind"))
    assert rows == [
        (FIRST, FIRST, "P-101", "assessed"),
        (FIRST + 1, FIRST + 2, "P-105", "missed"),  # the new patient was in bed, unwatched
        (FIRST + 3, FIRST + 3, "P-105", "assessed"),
    ]


def test_a_patient_whose_consent_is_not_granted_is_not_assessed(admin_user, production, reader):
    patient = make_patient("P-103", consent="not_recorded")
    make_camera(admin_user, bed="1", url=face_video(), patient=patient)
    assert round_at(FIRST, reader).claimed == 0
    assert not StreamAssessment.objects.exists()


def test_persistent_severe_pain_raises_one_alert_that_no_face_frames_pause_but_do_not_break(
    admin_user, production, patient, reader, tmp_path, settings
):
    settings.PAINSITE_SEVERE_ALERT_THRESHOLD = 0.0  # every assessed face counts as severe here
    settings.PAINSITE_MONITOR_ALERT_CONSECUTIVE = 2
    video = tmp_path / "bed.avi"
    shutil.copy(face_video(), video)
    make_camera(admin_user, bed="1", url=video, patient=patient)
    round_at(FIRST, reader)
    shutil.copy(empty_bed_video(), video)
    reader.close_all()
    round_at(FIRST + 1, reader)  # no face: the run pauses
    assert not WardAlert.objects.exists()
    shutil.copy(face_video(), video)
    reader.close_all()
    report = round_at(FIRST + 2, reader)
    alert = WardAlert.objects.get()
    assert report.alerts == [alert.pk] and alert.severe_run == 2 and alert.is_open
    assert AuditEvent.objects.filter(action="ward.alert.raise", object_id=str(alert.pk)).exists()
    round_at(FIRST + 3, reader)
    assert WardAlert.objects.count() == 1  # one open alert per bed and patient
    assert alert.image is None


def test_a_gap_of_three_slots_without_a_face_starts_the_severe_run_again(
    admin_user, production, patient, reader, settings
):
    settings.PAINSITE_SEVERE_ALERT_THRESHOLD = 0.0
    settings.PAINSITE_MONITOR_ALERT_CONSECUTIVE = 2
    make_camera(admin_user, bed="1", url=face_video(), patient=patient)
    round_at(FIRST, reader)
    round_at(FIRST + 4, reader)  # three slots nobody assessed in between
    assert not WardAlert.objects.exists()
    assert CameraSource.objects.get().severe_run == 1


@pytest.fixture
def alert(admin_user, production, patient, reader, settings) -> WardAlert:
    settings.PAINSITE_SEVERE_ALERT_THRESHOLD = 0.0
    settings.PAINSITE_MONITOR_ALERT_CONSECUTIVE = 1
    make_camera(admin_user, bed="1", url=face_video(), patient=patient)
    round_at(FIRST, reader)
    return WardAlert.objects.get()


def test_a_clinician_acknowledges_an_alert_with_one_click_and_it_is_audited(clinician, alert, reader):
    client = api_client_for(clinician)
    assert client.get("/api/ward/beds/").json()["beds"][0]["alerts"][0]["id"] == alert.pk
    response = client.post(f"/api/ward/alerts/{alert.pk}/acknowledge/")
    assert response.status_code == 200 and response.json()["acknowledged_by"] == "carla"
    alert.refresh_from_db()
    assert alert.acknowledged_by == clinician and alert.acknowledged_at is not None
    event = AuditEvent.objects.get(action="ward.alert.acknowledge")
    assert event.actor == clinician and event.details["patient"] == "P-101"
    assert client.post(f"/api/ward/alerts/{alert.pk}/acknowledge/").status_code == 409
    assert client.get("/api/ward/beds/").json()["beds"][0]["alerts"] == []
    assert CameraSource.objects.get().severe_run == 0
    round_at(FIRST + 1, reader)  # the run starts again: with one in a row, a new alert
    assert WardAlert.objects.filter(acknowledged_at__isnull=True).count() == 1


def test_an_unacknowledged_alert_escalates_once_to_the_admins_by_notice_and_email(
    alert, admin_user, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.PAINSITE_WARD_ESCALATE_SECONDS = 60
    admin_user.email = "ada@hospital.example"
    admin_user.save()
    assert escalate_overdue_alerts(now=alert.raised_at + timedelta(seconds=30)) == []
    with django_capture_on_commit_callbacks(execute=True):
        escalated = escalate_overdue_alerts(now=alert.raised_at + timedelta(seconds=61))
        assert escalate_overdue_alerts(now=alert.raised_at + timedelta(seconds=90)) == []
    assert [item.pk for item in escalated] == [alert.pk]
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["ada@hospital.example"]
    assert "bed 1" in mailoutbox[0].subject and "P-101" in mailoutbox[0].body
    assert AdminNotice.objects.filter(kind="ward").count() == 1
    assert AuditEvent.objects.filter(action="ward.alert.escalate").count() == 1
    alert.refresh_from_db()
    assert alert.escalated_at is not None


def test_the_frame_of_an_alert_is_kept_as_an_audited_image_only_when_the_setting_says_so(
    admin_user, production, patient, reader, settings
):
    settings.PAINSITE_WARD_KEEP_ALERT_FRAMES = True
    settings.PAINSITE_SEVERE_ALERT_THRESHOLD = 0.0
    settings.PAINSITE_MONITOR_ALERT_CONSECUTIVE = 1
    make_camera(admin_user, bed="1", url=face_video(), patient=patient)
    round_at(FIRST, reader)
    alert = WardAlert.objects.get()
    assert alert.image is not None and alert.image.patient == patient
    assert AuditEvent.objects.filter(action="image.upload", object_id=str(alert.image.pk)).exists()


def test_the_board_answers_304_while_nothing_changed_in_a_fixed_number_of_queries(
    admin_user, clinician, production, reader, django_assert_max_num_queries
):
    for bed in range(6):
        make_camera(admin_user, bed=str(bed), url=face_video(), patient=make_patient(f"P-2{bed}"))
    round_at(FIRST, reader)
    client = api_client_for(clinician)
    with django_assert_max_num_queries(12):
        first = client.get("/api/ward/beds/")
    body = first.json()
    assert len(body["beds"]) == 6 and all(bed["state"] == "assessed" for bed in body["beds"])
    assert all(len(bed["trend"]) == 1 for bed in body["beds"])
    etag = first.headers["ETag"]
    assert client.get("/api/ward/beds/", HTTP_IF_NONE_MATCH=etag).status_code == 304
    round_at(FIRST + 1, reader)
    again = client.get("/api/ward/beds/", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 200 and again.headers["ETag"] != etag


def test_a_promotion_reaches_an_open_board_at_its_next_poll(admin_user, clinician, production):
    """The board says which model is in production (or that none is); a screen that already holds
    the board's ETag must not keep the old answer until the ETag's time bucket turns."""
    client = api_client_for(clinician)
    first = client.get("/api/ward/beds/")
    assert first.json()["production_model"]["name"] == "v1"
    successor = make_model_version(tiny_model(feature_path="float32"), name="v2", stage=Stage.CANDIDATE)
    promote_model_version(
        version=successor, actor=admin_user, reason="better on the shared test snapshot", confirm_random_init=True
    )
    again = client.get("/api/ward/beds/", HTTP_IF_NONE_MATCH=first.headers["ETag"])
    assert again.status_code == 200 and again.json()["production_model"]["name"] == "v2"


def test_admins_register_and_change_cameras_and_every_change_of_patient_is_audited(admin_user, patient):
    client = api_client_for(admin_user)
    response = client.post(
        "/api/ward/sources/",
        {"name": "Bed 4 camera", "url": "rtsp://10.0.0.4/stream", "bed": "4", "patient": "P-101"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    source_id = response.json()["id"]
    assert response.json()["interval_seconds"] == 10 and response.json()["status"] == "unknown"
    make_patient("P-104")
    changed = client.patch(f"/api/ward/sources/{source_id}/", {"patient": "P-104"}, format="json")
    assert changed.status_code == 200 and changed.json()["patient"] == "P-104"
    event = AuditEvent.objects.get(action="ward.source.patient")
    assert event.actor == admin_user and (event.details["from"], event.details["to"]) == ("P-101", "P-104")
    assert client.get("/api/ward/sources/").json()[0]["bed"] == "4"
    assert client.delete(f"/api/ward/sources/{source_id}/").status_code == 204
    assert AuditEvent.objects.filter(action="ward.source.delete").exists()


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"name": "x", "url": "", "bed": "9"}, "url"),
        ({"name": "x", "url": "rtsp://a", "bed": "9", "interval_seconds": 0}, "interval"),
        ({"name": "x", "url": "rtsp://a", "bed": "1"}, "bed"),
        ({"name": "x", "url": "rtsp://a", "bed": "9", "patient": "nobody"}, "patient"),
    ],
)
def test_a_bad_camera_registration_is_refused_with_its_reason_and_changes_nothing(admin_user, fields, reason):
    make_camera(admin_user, bed="1", url="rtsp://existing", patient=None)
    before = AuditEvent.objects.count()
    response = api_client_for(admin_user).post("/api/ward/sources/", fields, format="json")
    assert response.status_code == 400
    assert reason in str(response.json()).lower()
    assert CameraSource.objects.count() == 1 and AuditEvent.objects.count() == before


def test_clinicians_see_the_board_but_cannot_register_cameras(clinician, outsider):
    assert api_client_for(clinician).get("/api/ward/beds/").status_code == 200
    refused = api_client_for(clinician).post("/api/ward/sources/", {"name": "x", "url": "rtsp://a", "bed": "9"})
    assert refused.status_code == 403 and not CameraSource.objects.exists()
    assert api_client_for(outsider).get("/api/ward/beds/").status_code == 403


def test_the_log_says_once_when_rounds_stop_for_want_of_a_production_model_and_when_they_resume(
    admin_user, production, reader, patient, caplog
):
    make_camera(admin_user, bed="1", url=face_video(), patient=patient, interval=INTERVAL)
    caplog.set_level(logging.INFO, logger="modeling.ward_rounds")
    round_at(FIRST, reader)  # assessing: nothing to say
    ModelVersion.objects.filter(pk=production.pk).update(stage=Stage.CANDIDATE)
    for slot in (FIRST + 1, FIRST + 2, FIRST + 3):
        assert round_at(slot, reader).reason == "no production model"
    ModelVersion.objects.filter(pk=production.pk).update(stage=Stage.PRODUCTION)
    round_at(FIRST + 4, reader)

    said = [record.getMessage() for record in caplog.records if record.name == "modeling.ward_rounds"]
    assert said[:2] == ["ward rounds assess no camera: no production model", "ward rounds assess the cameras again"]
    # The slots passed without an assessment are on record, and the log says so.
    assert any("recorded as missed" in line for line in said[2:]), said


def test_the_board_says_when_no_model_is_in_production_and_so_no_bed_is_assessed(
    admin_user, clinician, production, patient, client
):
    make_camera(admin_user, bed="1", url=face_video(), patient=patient, interval=INTERVAL)
    client.force_login(clinician)
    board = client.get("/api/ward/beds/").json()
    assert board["production_model"] == {"id": production.pk, "name": production.name}
    assert 'id="ward-no-model" class="notice no-model" role="alert" hidden' in client.get("/ward/").content.decode()

    ModelVersion.objects.filter(pk=production.pk).update(stage=Stage.ARCHIVED)
    assert client.get("/api/ward/beds/").json()["production_model"] is None
    page = client.get("/ward/").content.decode()
    assert 'role="alert">' in page[page.index('id="ward-no-model"') :][:80]
    assert "There is no model in production" in page
