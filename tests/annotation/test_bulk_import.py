"""POST /api/images/bulk/ and the archive form: good rows import, each bad row is reported."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation.bulk_import import run_import_job
from annotation.models import Image, ImportJob, ImportStatus, PainLabel, Patient
from annotation.tasks import import_archive
from tests.annotation.image_factories import make_face_jpeg, make_jpeg, make_patient, make_zip, manifest, stored_files
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

BULK = "/api/images/bulk/"


def post_archive(client, data: bytes, name: str = "dataset.zip"):
    return client.post(
        BULK, {"archive": SimpleUploadedFile(name, data, content_type="application/zip")}, format="multipart"
    )


def rejected_by_file(report: dict) -> dict[str, str]:
    return {row["filename"]: row["reason"] for row in report["rejected"]}


def understate_size(archive: bytes, name: str, declared_size: int) -> bytes:
    """The same ZIP, but its headers claim `name` unpacks to only `declared_size` bytes."""
    raw = bytearray(archive)
    encoded = name.encode()
    for signature, name_at, size_at in ((b"PK\x03\x04", 30, 22), (b"PK\x01\x02", 46, 24)):
        offset = raw.find(signature)
        while offset != -1:
            if raw[offset + name_at : offset + name_at + len(encoded)] == encoded:
                raw[offset + size_at : offset + size_at + 4] = struct.pack("<I", declared_size)
            offset = raw.find(signature, offset + 4)
    return bytes(raw)


def test_a_clinician_imports_an_archive_with_labels_and_new_patients(clinician):
    make_patient("C1")
    archive = make_zip(
        {
            "manifest.csv": manifest(
                "a.jpg,C1,,6,observer,2026-02-01T10:00:00Z",
                "b.jpg,S7,simulated,9,,2026-02-02",
                "faces/c.jpg,S7,simulated,,,",
            ),
            "a.jpg": make_face_jpeg(seed=1),
            "b.jpg": make_jpeg(seed=2),
            "faces/c.jpg": make_jpeg(seed=3),
            "extra.jpg": make_jpeg(seed=4),
        }
    )
    response = post_archive(api_client_for(clinician), archive)

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "succeeded"
    assert (body["created_count"], body["duplicate_count"], body["rejected_count"]) == (3, 0, 0)
    assert body["report"]["unlisted"] == ["extra.jpg"]
    assert Patient.objects.get(code="S7").cohort == "simulated"
    labels = {(label.image.patient.code, label.nrs, label.kind, label.rater) for label in PainLabel.objects.all()}
    assert labels == {("C1", 6, "observer", clinician), ("S7", 9, "self_report", clinician)}
    assert Image.objects.get(patient__code="C1").face_box is not None
    assert Image.objects.filter(captured_at__isnull=False).count() == 2


def test_each_bad_row_is_reported_with_its_reason_while_good_rows_import(clinician, settings):
    rows = [
        "good.jpg,P1,clinical,3,observer,",
        "../evil.jpg,P1,clinical,,,",
        "/etc/passwd,P1,clinical,,,",
        "link.jpg,P1,clinical,,,",
        "inner.zip,P1,clinical,,,",
        "hidden-zip.jpg,P1,clinical,,,",
        "missing.jpg,P1,clinical,,,",
        "minus.jpg,P1,clinical,-1,,",
        "eleven.jpg,P1,clinical,11,,",
        "half.jpg,P1,clinical,5.5,,",
        "words.jpg,P1,clinical,high,,",
        "kind.jpg,P1,clinical,4,guess,",
        "newbie.jpg,NEW1,,,,",
        "notes.jpg,P1,clinical,,,",
        "when.jpg,P1,clinical,,,yesterday",
        "good.jpg,P1,clinical,,,",
    ]
    archive = make_zip(
        {
            "manifest.csv": manifest(*rows),
            "good.jpg": make_jpeg(seed=10),
            "../evil.jpg": make_jpeg(seed=11),
            "inner.zip": make_zip({"x.jpg": make_jpeg(seed=12)}),
            "hidden-zip.jpg": make_zip({"y.jpg": make_jpeg(seed=13)}),
            "newbie.jpg": make_jpeg(seed=14),
            "notes.jpg": b"not an image at all" * 10,
        },
        symlinks={"link.jpg": "/etc/passwd"},
    )
    body = post_archive(api_client_for(clinician), archive).json()

    reasons = rejected_by_file(body["report"])
    assert "leaves its folder" in reasons["../evil.jpg"]
    assert "absolute" in reasons["/etc/passwd"]
    assert "symbolic link" in reasons["link.jpg"]
    assert "archives inside" in reasons["inner.zip"] and "archives inside" in reasons["hidden-zip.jpg"]
    assert "not found" in reasons["missing.jpg"]
    assert "outside 0 to 10" in reasons["minus.jpg"] and "outside 0 to 10" in reasons["eleven.jpg"]
    assert "whole number" in reasons["half.jpg"] and "whole number" in reasons["words.jpg"]
    assert "kind 'guess'" in reasons["kind.jpg"]
    assert "no cohort" in reasons["newbie.jpg"]
    assert "not a readable image" in reasons["notes.jpg"]
    assert "ISO 8601" in reasons["when.jpg"]
    assert sorted(row["line"] for row in body["report"]["rejected"]) == list(range(3, 18))
    assert [row["filename"] for row in body["report"]["created"]] == ["good.jpg"]
    assert body["rejected_count"] == 15 and body["total_rows"] == 16 and body["processed_rows"] == 16
    assert Image.objects.count() == 1 and PainLabel.objects.get().nrs == 3
    assert not Patient.objects.filter(code="NEW1").exists()
    assert len(stored_files(settings.MEDIA_ROOT)) == 2


def test_a_zip_bomb_is_refused_from_its_declared_size_and_nothing_is_stored(clinician, settings):
    settings.PAINSITE_MAX_ARCHIVE_BYTES = 1_000_000
    archive = make_zip({"manifest.csv": manifest("zeros.jpg,P1,clinical,,,"), "zeros.jpg": bytes(5_000_000)})
    assert len(archive) < 20_000
    response = post_archive(api_client_for(clinician), archive)

    assert response.status_code == 400
    assert "would unpack to 5,000" in response.json()["error"]
    assert not ImportJob.objects.exists() and not Image.objects.exists()
    assert stored_files(settings.MEDIA_ROOT) == []


def test_a_member_whose_header_understates_its_size_is_never_unpacked_past_the_claim(clinician, settings):
    settings.PAINSITE_MAX_ARCHIVE_BYTES = 1_000_000
    honest = make_zip(
        {
            "manifest.csv": manifest("zeros.jpg,P1,clinical,,,", "ok.jpg,P1,clinical,,,"),
            "ok.jpg": make_jpeg(seed=20),
            "zeros.jpg": bytes(5_000_000),
        }
    )
    archive = understate_size(honest, "zeros.jpg", 1_000)
    with zipfile.ZipFile(io.BytesIO(archive)) as check:
        assert check.getinfo("zeros.jpg").file_size == 1_000

    body = post_archive(api_client_for(clinician), archive).json()

    assert "damaged" in rejected_by_file(body["report"])["zeros.jpg"]
    assert [row["filename"] for row in body["report"]["created"]] == ["ok.jpg"]


def test_an_archive_that_is_not_a_zip_or_lacks_a_manifest_is_refused(clinician, settings):
    client = api_client_for(clinician)
    not_zip = post_archive(client, make_jpeg(seed=1), name="photos.zip")
    assert not_zip.status_code == 400 and "not a readable ZIP" in not_zip.json()["error"]
    no_manifest = post_archive(client, make_zip({"a.jpg": make_jpeg(seed=2)}))
    assert no_manifest.status_code == 400 and "no manifest.csv" in no_manifest.json()["error"]
    bad_header = post_archive(client, make_zip({"manifest.csv": manifest("a.jpg", header="file")}))
    assert bad_header.status_code == 400 and "filename, patient" in bad_header.json()["error"]
    assert not ImportJob.objects.exists() and stored_files(settings.MEDIA_ROOT) == []


def test_images_already_stored_are_reported_as_duplicates(clinician):
    client = api_client_for(clinician)
    archive = make_zip({"manifest.csv": manifest("a.jpg,P1,clinical,5,,"), "a.jpg": make_jpeg(seed=30)})
    first = post_archive(client, archive).json()
    again = post_archive(client, archive).json()

    assert again["duplicate_count"] == 1 and again["created_count"] == 0
    assert again["report"]["duplicates"][0]["existing_id"] == first["report"]["created"][0]["image_id"]
    assert PainLabel.objects.count() == 1


def test_the_bulk_endpoint_needs_a_login_and_the_upload_permissions(outsider):
    archive = make_zip({"manifest.csv": manifest("a.jpg,P1,clinical,,,"), "a.jpg": make_jpeg(seed=40)})
    assert post_archive(api_client_for(None), archive).status_code == 401
    assert post_archive(api_client_for(outsider), archive).status_code == 403
    assert not ImportJob.objects.exists()


def test_a_large_archive_is_imported_by_a_worker_task(clinician, settings, django_capture_on_commit_callbacks):
    settings.PAINSITE_IMPORT_INLINE_MAX_ROWS = 1
    archive = make_zip(
        {
            "manifest.csv": manifest("a.jpg,P1,clinical,2,,", "b.jpg,P1,clinical,,,", "c.jpg,P1,clinical,,,"),
            "a.jpg": make_jpeg(seed=50),
            "b.jpg": make_jpeg(seed=51),
            "c.jpg": make_jpeg(seed=51),
        }
    )
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_archive(api_client_for(clinician), archive)

    assert response.status_code == 202
    job = ImportJob.objects.get(pk=response.json()["id"])
    assert job.status == ImportStatus.QUEUED and default_storage.exists(job.archive)
    assert len(callbacks) == 1 and not Image.objects.exists()

    import_archive.apply(args=[job.pk]).get()

    job.refresh_from_db()
    assert job.status == ImportStatus.SUCCEEDED and job.progress == 1.0
    assert (job.created_count, job.duplicate_count, job.rejected_count) == (2, 1, 0)
    assert job.archive == "" and not any(name.startswith("imports/") for name in stored_files(settings.MEDIA_ROOT))


def test_a_restarted_import_resumes_after_the_rows_already_done(
    clinician, settings, django_capture_on_commit_callbacks
):
    settings.PAINSITE_IMPORT_INLINE_MAX_ROWS = 0
    archive = make_zip(
        {
            "manifest.csv": manifest("a.jpg,P1,clinical,,,", "b.jpg,P1,clinical,,,"),
            "a.jpg": make_jpeg(seed=60),
            "b.jpg": make_jpeg(seed=61),
        }
    )
    with django_capture_on_commit_callbacks():
        job_id = post_archive(api_client_for(clinician), archive).json()["id"]
    # As if a worker had imported row 1, saved its progress, and died.
    ImportJob.objects.filter(pk=job_id).update(
        status=ImportStatus.RUNNING,
        processed_rows=1,
        created_count=1,
        report={
            "created": [{"line": 2, "filename": "a.jpg", "image_id": 0}],
            "duplicates": [],
            "rejected": [],
            "unlisted": [],
        },
    )

    job = run_import_job(job_id=job_id)

    assert job.status == ImportStatus.SUCCEEDED and job.created_count == 2
    assert [row["filename"] for row in job.report["created"]] == ["a.jpg", "b.jpg"]
    assert Image.objects.count() == 1


def test_the_archive_form_redirects_to_the_import_report(client, clinician, clinician2):
    archive = make_zip(
        {"manifest.csv": manifest("a.jpg,P1,clinical,,,", "bad.jpg,P1,clinical,12,,"), "a.jpg": make_jpeg(seed=70)}
    )
    client.force_login(clinician)
    response = client.post(reverse("upload-archive"), {"archive": SimpleUploadedFile("set.zip", archive)})

    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("import-detail", args=[job.pk])
    page = client.get(response["Location"]).content.decode()
    assert "nrs 12 is outside 0 to 10" in page and "a.jpg" in page
    assert api_client_for(clinician).get(reverse("api-import", args=[job.pk])).json()["status"] == "succeeded"

    client.force_login(clinician2)
    assert client.get(reverse("import-detail", args=[job.pk])).status_code == 403
    assert api_client_for(clinician2).get(reverse("api-import", args=[job.pk])).status_code == 403
    assert api_client_for(None).get(reverse("api-import", args=[job.pk])).status_code == 401


def test_the_archive_form_shows_why_an_archive_is_refused(client, clinician):
    client.force_login(clinician)
    response = client.post(reverse("upload-archive"), {"archive": SimpleUploadedFile("set.zip", b"not a zip")})
    assert response.status_code == 422
    assert "set.zip: the upload is not a readable ZIP archive" in response.content.decode()
