from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand

from modeling.dataset_backup import export_dataset


class Command(BaseCommand):
    help = (
        "Write a lossless backup of the dataset to OUT.zip: patients with consent and split "
        "assignments, the stored images (byte for byte) and every label with its history. "
        "Restore it with import_dataset. The audit log and model versions are in the database backup."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("out", type=Path, help="the .zip file to write (replaced atomically)")

    def handle(self, *args, out: Path, **options) -> None:
        summary = export_dataset(path=out)
        self.stdout.write(
            self.style.SUCCESS(
                f"Exported {summary.patients} patients, {summary.images} images, {summary.labels} labels "
                f"and {summary.splits} split assignments to {out}"
            )
        )
