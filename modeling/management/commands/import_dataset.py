from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from modeling.dataset_backup import DatasetImportError, import_dataset


class Command(BaseCommand):
    help = (
        "Restore a dataset backup written by export_dataset into an empty PainSite instance: "
        "same images (sha256), patients, consent, split assignments and labels with history. "
        "Images are held to the upload byte and pixel limits and patient codes are checked as on "
        "creation. All or nothing: on any error nothing is stored."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("archive", type=Path, help="the .zip written by export_dataset")

    def handle(self, *args, archive: Path, **options) -> None:
        try:
            summary = import_dataset(path=archive)
        except DatasetImportError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"Restored {summary.patients} patients, {summary.images} images, {summary.labels} labels "
                f"and {summary.splits} split assignments from {archive}"
            )
        )
        if summary.created_users:
            self.stdout.write(
                f"Created {len(summary.created_users)} inactive user(s) for raters and uploaders not on this "
                f"instance (no password, no role): {', '.join(summary.created_users)}"
            )
