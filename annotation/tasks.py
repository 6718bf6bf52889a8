"""Celery tasks of the annotation app: thin, they take an id and call a service."""

from __future__ import annotations

from celery import shared_task

from annotation.bulk_import import IMPORT_ARCHIVE_TASK, run_import_job


@shared_task(name=IMPORT_ARCHIVE_TASK, acks_late=True)
def import_archive(job_id: int) -> dict[str, object]:
    """Import a large archive on a `default` worker; resumes where a lost worker stopped."""
    job = run_import_job(job_id=job_id)
    return {"job": job.pk, "status": job.status, "created": job.created_count, "rejected": job.rejected_count}
