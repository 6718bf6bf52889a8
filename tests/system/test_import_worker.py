"""A large archive imported by a real `default` worker, whose pool processes are daemonic: the
import's worker threads run there (a daemonic process may not start processes of its own)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import Image, ImportJob, ImportStatus
from tests.annotation.image_factories import make_face_jpeg, make_zip, manifest, stored_files
from tests.conftest import api_client_for
from tests.workers import celery_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.system, pytest.mark.slow]


def test_a_worker_imports_an_archive_with_threads_in_manifest_order(
    clinician, settings, test_broker_url, worker_log_dir
):
    settings.PAINSITE_IMPORT_INLINE_MAX_ROWS = 1
    faces = {f"{i}.jpg": make_face_jpeg(seed=300 + i) for i in range(8)}
    rows = [f"{i}.jpg,P1,clinical,{i},," for i in range(8)]
    rows[3:3] = ["again.jpg,P1,clinical,,,", "broken.jpg,P1,clinical,,,", "gone.jpg,P1,clinical,,,"]
    archive = make_zip(
        {"manifest.csv": manifest(*rows), **faces, "again.jpg": faces["1.jpg"], "broken.jpg": faces["2.jpg"][:400]}
    )

    with celery_worker(
        broker_url=test_broker_url, queues=("default",), log_dir=worker_log_dir, PAINSITE_IMPORT_WORKERS="3"
    ) as worker:
        upload = SimpleUploadedFile("dataset.zip", archive, content_type="application/zip")
        response = api_client_for(clinician).post("/api/images/bulk/", {"archive": upload}, format="multipart")
        assert response.status_code == 202, response.json()
        job_id = response.json()["id"]
        wait_for(lambda: ImportJob.objects.get(pk=job_id).is_finished, timeout=120, message="the import to finish")
        # The task removes the uploaded archive just after the job's final commit: stopping the
        # worker in between would leave it (a retry of the task removes it).
        wait_for(lambda: not ImportJob.objects.get(pk=job_id).archive, timeout=30, message="the archive to go")
        log = worker.log()

    job = ImportJob.objects.get(pk=job_id)
    assert job.status == ImportStatus.SUCCEEDED, (job.error, log)
    assert [row["filename"] for row in job.report["created"]] == [f"{i}.jpg" for i in range(8)], job.report
    assert [(row["line"], row["filename"]) for row in job.report["duplicates"]] == [(5, "again.jpg")]
    reasons = {row["filename"]: row["reason"] for row in job.report["rejected"]}
    assert set(reasons) == {"broken.jpg", "gone.jpg"} and "damaged or truncated" in reasons["broken.jpg"]
    assert job.processed_rows == 11 and Image.objects.count() == 8
    assert len(stored_files(settings.MEDIA_ROOT)) == 16
