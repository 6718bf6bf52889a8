"""Bulk imports: a ZIP archive (browser or API) or a data set folder (`manage.py import_images`).

Every import is an ImportJob row. The manifest is checked before the job exists, so a broken
archive is refused at once; the images are then imported row by row, and each row ends up in
exactly one list of the report: created, duplicates or rejected (with the reason). One bad row
never stops the good ones.

The CPU work of a row (decode, re-encode, sha256, face detection, thumbnail: `process_image`)
touches neither the database nor the storage, so PAINSITE_IMPORT_WORKERS threads do it for the
next rows while this thread stores the current one (`store_processed_image`: consent, duplicate
check, files, row, audit event), strictly in manifest order. Threads, not processes: Pillow and
OpenCV release the GIL in that work (bench/import_rate.py measures both), a thread shares no
database connection, and a Celery prefork worker, whose processes are daemonic, may start threads
but not processes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from annotation.archive import (
    MANIFEST_NAME,
    ArchiveRejected,
    Manifest,
    ManifestRow,
    MemberRejected,
    SafeArchive,
    parse_manifest,
    safe_member_path,
)
from annotation.intake import (
    DuplicateImage,
    ImageRejected,
    ProcessedImage,
    process_image,
    require_consent,
    store_processed_image,
)
from annotation.models import Consent, ImportJob, ImportStatus, Patient
from annotation.services import PatientError, create_patient, record_label
from painsite.core.services import record_event

PROGRESS_EVERY_ROWS = 10
# The Celery task that finishes a large archive import on a `default` worker (annotation/tasks.py).
IMPORT_ARCHIVE_TASK = "annotation.tasks.import_archive"
PROGRESS_EVERY_SECONDS = 2.0
# Files zip tools add on their own; not worth a line in the report.
TOOL_LITTER = ("__MACOSX/", ".DS_Store", "Thumbs.db")

# Rows processed ahead of the one being stored, per worker thread: enough to keep every thread busy
# while a row is stored, few enough that the decoded images waiting in memory stay a handful.
LOOKAHEAD_PER_WORKER = 2

ReadFile = Callable[[str], bytes]
# What reading and the CPU work made of a row: the image ready to store, or the error that stopped
# it, raised when the row's turn comes (MemberRejected and ImageRejected reject the row; anything
# else, such as ArchiveRejected, stops the import there, after the rows before it are stored).
RowWork = ProcessedImage | Exception


@dataclass
class ImportReport:
    created: list[dict] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict) -> ImportReport:
        return cls(
            created=list(data.get("created", [])),
            duplicates=list(data.get("duplicates", [])),
            rejected=list(data.get("rejected", [])),
            unlisted=list(data.get("unlisted", [])),
        )

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "unlisted": self.unlisted,
        }


def _archive_limits() -> dict[str, int]:
    return {
        "max_total_bytes": settings.PAINSITE_MAX_ARCHIVE_BYTES,
        "max_member_bytes": settings.PAINSITE_MAX_UPLOAD_BYTES,
    }


def start_archive_import(*, archive: IO[bytes], size: int, source_name: str, actor: User) -> ImportJob:
    """Check an uploaded ZIP and its manifest, then import it now (small) or on a worker (large).

    Raises ArchiveRejected when the archive as a whole is unusable; nothing is stored then.
    """
    if size > settings.PAINSITE_MAX_ARCHIVE_BYTES:
        raise ArchiveRejected(
            gettext("the archive is %(size)s bytes; the limit is %(painsite_max_archive_bytes)s bytes")
            % {"size": f"{size:,}", "painsite_max_archive_bytes": f"{settings.PAINSITE_MAX_ARCHIVE_BYTES:,}"}
        )
    with SafeArchive(archive, **_archive_limits()) as zipped:
        manifest_text, folder = zipped.find_manifest()
        manifest = parse_manifest(manifest_text)
        unlisted = _unlisted_members(zipped.names, manifest, folder)
    job = _create_job(source_name=source_name, manifest=manifest, actor=actor, unlisted=unlisted)
    # Small archives are imported while the uploader waits (about a second per 20 images); larger
    # ones go to a `default` worker and the uploader watches progress.
    if (
        len(manifest.rows) <= settings.PAINSITE_IMPORT_INLINE_MAX_ROWS
        and size <= settings.PAINSITE_IMPORT_INLINE_MAX_BYTES
    ):
        archive.seek(0)
        return _run_archive(job, archive)
    archive.seek(0)
    job.archive = default_storage.save(f"imports/{job.pk}.zip", File(archive))
    job.save(update_fields=["archive"])
    # Sent by name: the task module imports this one, so importing it here would close a circle.
    transaction.on_commit(lambda: current_app.send_task(IMPORT_ARCHIVE_TASK, args=[job.pk]))
    return job


def import_folder(*, folder: Path, manifest_path: Path, actor: User, workers: int | None = None) -> ImportJob:
    """Import a data set folder (CPD/SPD style) described by a manifest CSV, right away, with
    `workers` threads processing images (default PAINSITE_IMPORT_WORKERS; 1 does it all in turn)."""
    try:
        manifest_text = manifest_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ArchiveRejected(
            gettext("cannot read the manifest %(manifest_path)s: %(error)s")
            % {"manifest_path": manifest_path, "error": error}
        ) from None
    manifest = parse_manifest(manifest_text)
    job = _create_job(source_name=str(folder)[-255:], manifest=manifest, actor=actor, unlisted=[])
    return _run(job, manifest, _folder_reader(folder), workers=workers)


def run_import_job(*, job_id: int) -> ImportJob:
    """Finish a queued archive import (called by the worker). Safe to call again after a crash:
    it resumes after the last row whose progress was saved."""
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    if not job.is_finished:
        if not job.archive:
            return _fail(job, "the uploaded archive is no longer stored")
        try:
            with default_storage.open(job.archive, "rb") as archive:
                job = _run_archive(job, archive)
        except (OSError, ArchiveRejected) as error:
            job = _fail(job, str(error))
    if job.archive:
        # The archive holds face images: it is kept only while the import needs it.
        default_storage.delete(job.archive)
        job.archive = ""
        job.save(update_fields=["archive"])
    return job


def _create_job(*, source_name: str, manifest: Manifest, actor: User, unlisted: list[str]) -> ImportJob:
    report = ImportReport(rejected=[problem.as_dict() for problem in manifest.problems], unlisted=unlisted)
    job = ImportJob.objects.create(
        source_name=source_name[:255],
        created_by=actor,
        total_rows=len(manifest.rows) + len(manifest.problems),
        processed_rows=len(manifest.problems),
        rejected_count=len(manifest.problems),
        report=report.as_dict(),
    )
    record_event(actor=actor, action="import.start", target=job, details={"rows": job.total_rows})
    return job


def _run_archive(job: ImportJob, archive: IO[bytes]) -> ImportJob:
    with SafeArchive(archive, **_archive_limits()) as zipped:
        manifest_text, folder = zipped.find_manifest()
        manifest = parse_manifest(manifest_text)

        def read(name: str) -> bytes:
            return zipped.read(str(PurePosixPath(folder) / name) if folder else name)

        return _run(job, manifest, read)


def _run(job: ImportJob, manifest: Manifest, read_file: ReadFile, workers: int | None = None) -> ImportJob:
    workers = settings.PAINSITE_IMPORT_WORKERS if workers is None else workers
    if workers < 1:
        raise ValueError(f"an import needs at least 1 worker, not {workers}")
    job.status = ImportStatus.RUNNING
    job.started_at = job.started_at or timezone.now()
    job.save(update_fields=["status", "started_at"])
    report = ImportReport.from_dict(job.report)
    already_done = job.processed_rows - len(manifest.problems)
    patients: dict[str, Patient] = {}
    last_saved = time.monotonic()
    try:
        with closing(_processed_in_order(manifest.rows[already_done:], read_file, workers)) as processed:
            for row, work in processed:
                _import_row(row, work, job.created_by, patients, report)
                job.processed_rows += 1
                if (
                    job.processed_rows % PROGRESS_EVERY_ROWS == 0
                    or time.monotonic() - last_saved > PROGRESS_EVERY_SECONDS
                ):
                    _save_progress(job, report)
                    last_saved = time.monotonic()
    except ArchiveRejected as error:
        _save_progress(job, report)
        return _fail(job, str(error))
    except Exception as error:
        # Say so on the progress page instead of leaving the job "running" forever.
        _save_progress(job, report)
        _fail(job, f"the import stopped unexpectedly: {error}")
        raise
    job.status = ImportStatus.SUCCEEDED
    job.finished_at = timezone.now()
    _save_progress(job, report, extra_fields=["status", "finished_at"])
    record_event(
        actor=job.created_by,
        action="import.finish",
        target=job,
        details={"created": job.created_count, "duplicates": job.duplicate_count, "rejected": job.rejected_count},
    )
    return job


def _processed_in_order(
    rows: Sequence[ManifestRow], read_file: ReadFile, workers: int
) -> Iterator[tuple[ManifestRow, RowWork]]:
    """Each row with its processed image (or its problem), in manifest order. With more than one
    worker, up to LOOKAHEAD_PER_WORKER rows per worker are processed ahead on a thread pool.

    Files are read here, on the calling thread (a ZIP archive is one open file), and a problem is
    handed over with its row rather than raised, so every row's outcome is reported in turn, as if
    the rows were done one after another."""
    if workers == 1:
        for row in rows:
            yield row, _process_row(row, read_file)
        return
    pending: deque[tuple[ManifestRow, Future[RowWork]]] = deque()
    upcoming = iter(rows)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import")
    try:
        while True:
            while len(pending) < workers * LOOKAHEAD_PER_WORKER:
                row = next(upcoming, None)
                if row is None:
                    break
                data = _read_row(row, read_file)
                pending.append((row, pool.submit(_process_bytes, row, data)))
            if not pending:
                return
            row, future = pending.popleft()
            yield row, future.result()
    finally:
        # A stopped import (error, crash) drops the rows it had not started; the next run redoes them.
        pool.shutdown(wait=True, cancel_futures=True)


def _process_row(row: ManifestRow, read_file: ReadFile) -> RowWork:
    return _process_bytes(row, _read_row(row, read_file))


def _read_row(row: ManifestRow, read_file: ReadFile) -> bytes | Exception:
    try:
        return read_file(row.filename)
    except Exception as problem:  # noqa: BLE001 - raised again in the row's turn (_import_row)
        return problem


def _process_bytes(row: ManifestRow, data: bytes | Exception) -> RowWork:
    if isinstance(data, Exception):
        return data
    try:
        return process_image(data=data, filename=row.filename)
    except Exception as problem:  # noqa: BLE001 - raised again in the row's turn (_import_row)
        return problem


def _import_row(
    row: ManifestRow, work: RowWork, actor: User | None, patients: dict[str, Patient], report: ImportReport
) -> None:
    where = {"line": row.line, "filename": row.filename}
    try:
        # The same order of refusals as store_image: patient, file, consent, image, duplicate.
        patient = _patient_for(row, actor, patients)
        if isinstance(work, Exception) and not isinstance(work, ImageRejected):
            raise work
        require_consent(patient=patient, filename=row.filename)
        if isinstance(work, ImageRejected):
            raise work
        stored = store_processed_image(
            processed=work,
            filename=row.filename,
            patient=patient,
            uploaded_by=actor,
            captured_at=row.captured_at,
        )
    except (MemberRejected, ImageRejected) as problem:
        reason = problem.reason if isinstance(problem, ImageRejected) else str(problem)
        report.rejected.append({**where, "reason": reason})
        return
    except DuplicateImage as duplicate:
        report.duplicates.append(
            {**where, "existing_id": duplicate.existing_image.pk, "existing_patient": duplicate.existing_patient}
        )
        return
    created = {**where, "image_id": stored.image.pk, "patient": patient.code, "nrs": row.nrs}
    if row.nrs is not None:
        try:
            record_label(image=stored.image, rater=actor, nrs=row.nrs, kind=row.kind)
        except (ValueError, ValidationError) as problem:
            # The image is good and stays; only its score is refused, and the report says so.
            created["nrs"] = None
            created["label_error"] = "; ".join(getattr(problem, "messages", [str(problem)]))
    report.created.append(created)


def _patient_for(row: ManifestRow, actor: User | None, patients: dict[str, Patient]) -> Patient:
    patient = patients.get(row.patient)
    if patient is None:
        patient = Patient.objects.filter(code=row.patient).first()
        if patient is None:
            if not row.cohort:
                raise MemberRejected(
                    gettext("patient %(patient)s is new and the manifest gives no cohort") % {"patient": row.patient}
                )
            try:
                patient = create_patient(
                    code=row.patient, cohort=row.cohort, actor=actor, consent=row.consent or Consent.NOT_RECORDED
                )
            except PatientError as problem:
                # Another import may have created the same patient a moment ago.
                patient = Patient.objects.filter(code=row.patient).first()
                if patient is None:
                    raise MemberRejected(str(problem)) from None
        patients[row.patient] = patient
    if row.cohort and row.cohort != patient.cohort:
        raise MemberRejected(
            gettext("patient %(code)s is in the %(cohort)s cohort, not %(cohort2)s")
            % {"code": patient.code, "cohort": patient.cohort, "cohort2": row.cohort}
        )
    # Consent is checked by store_image, like every other way an image comes in.
    return patient


def _save_progress(job: ImportJob, report: ImportReport, extra_fields: list[str] | None = None) -> None:
    job.report = report.as_dict()
    job.created_count = len(report.created)
    job.duplicate_count = len(report.duplicates)
    job.rejected_count = len(report.rejected)
    fields = ["report", "processed_rows", "created_count", "duplicate_count", "rejected_count"]
    job.save(update_fields=fields + (extra_fields or []))


def _fail(job: ImportJob, error: str) -> ImportJob:
    job.status = ImportStatus.FAILED
    job.error = error
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "error", "finished_at"])
    record_event(actor=job.created_by, action="import.fail", target=job, details={"error": error})
    return job


def _unlisted_members(names: list[str], manifest: Manifest, folder: str) -> list[str]:
    listed = {str(PurePosixPath(folder) / row.filename) if folder else row.filename for row in manifest.rows}
    listed |= {str(PurePosixPath(folder) / p.filename) if folder else p.filename for p in manifest.problems}
    return [
        name
        for name in names
        if name not in listed
        and PurePosixPath(name).name.lower() != MANIFEST_NAME
        and not any(litter in name for litter in TOOL_LITTER)
    ]


def _folder_reader(folder: Path) -> ReadFile:
    root = folder.resolve()
    max_bytes = settings.PAINSITE_MAX_UPLOAD_BYTES

    def read(name: str) -> bytes:
        path = (root / safe_member_path(name)).resolve()
        if not path.is_relative_to(root):
            raise MemberRejected(gettext("the path leads outside the data folder"))
        if not path.is_file():
            raise MemberRejected(gettext("not found in the data folder"))
        size = path.stat().st_size
        if size > max_bytes:
            raise MemberRejected(
                gettext("the file is %(size)s bytes; the limit is %(max_bytes)s bytes")
                % {"size": f"{size:,}", "max_bytes": f"{max_bytes:,}"}
            )
        return path.read_bytes()

    return read
