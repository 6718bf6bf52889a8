"""manage.py import_images DIR --manifest CSV --user NAME: import a data set folder (CPD/SPD style)."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.archive import MANIFEST_COLUMNS, ArchiveRejected
from annotation.bulk_import import import_folder
from annotation.models import ImportStatus


class Command(BaseCommand):
    help = (
        "Import the face images of a data set folder described by a manifest CSV "
        f"({','.join(MANIFEST_COLUMNS)}; nrs, kind and captured_at optional; consent, granted or withdrawn, "
        "is recorded for the patients the import creates, whose images are refused without it), then print the report."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", type=Path, help="folder the manifest's file names are relative to")
        parser.add_argument("--manifest", type=Path, required=True, help="the manifest CSV")
        parser.add_argument(
            "--user", required=True, help="username recorded as uploader and as the rater of imported scores"
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help=(
                "threads that decode, re-encode and search faces for the next images while the import stores "
                "them in manifest order (default: PAINSITE_IMPORT_WORKERS, the CPUs available; "
                "1 imports one image after another). The report is the same either way."
            ),
        )

    def handle(self, *args, folder: Path, manifest: Path, user: str, workers: int | None, **options) -> None:
        if workers is not None and workers < 1:
            raise CommandError(f"--workers must be 1 or more, not {workers}")
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder")
        actor = User.objects.filter(username=user).first()
        if actor is None:
            raise CommandError(f"no user named {user!r}")
        try:
            job = import_folder(folder=folder, manifest_path=manifest, actor=actor, workers=workers)
        except ArchiveRejected as rejected:
            raise CommandError(str(rejected)) from None

        self.stdout.write(
            f"Import {job.pk}: {job.created_count} created, {job.duplicate_count} duplicates, "
            f"{job.rejected_count} rejected, of {job.total_rows} rows."
        )
        for row in job.report["duplicates"]:
            self.stdout.write(
                f"  duplicate  line {row['line']}: {row['filename']} is already image {row['existing_id']}"
            )
        for row in job.report["rejected"]:
            self.stdout.write(f"  rejected   line {row['line']}: {row['filename']}: {row['reason']}")
        if job.status != ImportStatus.SUCCEEDED:
            raise CommandError(f"the import stopped: {job.error}")
