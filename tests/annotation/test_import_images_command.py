"""manage.py import_images DIR --manifest CSV: a research group's data set folder."""

from __future__ import annotations

import shutil
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from annotation.models import Image, ImportJob, PainLabel, Patient
from tests.annotation.image_factories import make_face_jpeg, make_jpeg, manifest, stored_files

pytestmark = pytest.mark.django_db


def make_dataset(root, rows: list[str], files: dict[str, bytes]):
    folder = root / "CPD"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    folder.mkdir(exist_ok=True)
    manifest_path = root / "labels.csv"
    manifest_path.write_bytes(manifest(*rows))
    return folder, manifest_path


def run(folder, manifest_path, user: str = "rosa") -> str:
    out = StringIO()
    call_command("import_images", str(folder), "--manifest", str(manifest_path), "--user", user, stdout=out)
    return out.getvalue()


def test_it_imports_a_folder_and_prints_the_report(researcher, tmp_path):
    (tmp_path / "secret.jpg").write_bytes(make_jpeg(seed=9))
    folder, manifest_path = make_dataset(
        tmp_path,
        [
            "p01/1.jpg,p01,clinical,7,self_report,",
            "p01/2.jpg,p01,clinical,0,,",
            "p02/1.jpg,p02,clinical,,,",
            "../secret.jpg,p02,clinical,,,",
            "p02/gone.jpg,p02,clinical,,,",
            "p02/3.jpg,p02,clinical,,,",
        ],
        {
            "p01/1.jpg": make_face_jpeg(seed=1),
            "p01/2.jpg": make_jpeg(seed=2),
            "p02/1.jpg": make_jpeg(seed=3),
            "p02/3.jpg": make_jpeg(seed=2),
        },
    )
    output = run(folder, manifest_path)

    assert "3 created, 1 duplicates, 2 rejected, of 6 rows" in output
    assert "line 5: ../secret.jpg: the path leaves its folder (..)" in output
    assert "line 6: p02/gone.jpg: not found in the data folder" in output
    assert "line 7: p02/3.jpg is already image" in output
    assert Image.objects.count() == 3 and set(Patient.objects.values_list("code", flat=True)) == {"p01", "p02"}
    assert sorted(PainLabel.objects.values_list("nrs", flat=True)) == [0, 7]
    assert PainLabel.objects.filter(rater=researcher).count() == 2
    assert ImportJob.objects.get().created_by == researcher


def test_a_symlink_out_of_the_folder_is_not_followed(researcher, tmp_path):
    (tmp_path / "outside.jpg").write_bytes(make_jpeg(seed=4))
    folder, manifest_path = make_dataset(tmp_path, ["link.jpg,p01,clinical,,,"], {})
    (folder / "link.jpg").symlink_to(tmp_path / "outside.jpg")

    assert "outside the data folder" in run(folder, manifest_path)
    assert not Image.objects.exists()


def test_it_needs_a_known_user_and_a_readable_manifest(researcher, tmp_path):
    folder, manifest_path = make_dataset(tmp_path, ["a.jpg,p01,clinical,,,"], {"a.jpg": make_jpeg(seed=5)})
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        run(folder, manifest_path, user="nobody")
    with pytest.raises(CommandError, match="cannot read the manifest"):
        run(folder, tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text("name,who\nx,y\n")
    with pytest.raises(CommandError, match="lacks the column"):
        run(folder, tmp_path / "bad.csv")
    assert not Image.objects.exists()


class Rollback(Exception):
    """Undoes one import inside the test's transaction, so a second one starts from the same state."""


def import_and_undo(folder, manifest_path, media_root, workers: int) -> dict:
    """Import with `workers` threads; return what it did, then roll the database back and remove
    its files. Image ids become manifest lines, so reports from two runs compare as equal."""
    try:
        with transaction.atomic():
            output = StringIO()
            call_command(
                "import_images",
                str(folder),
                "--manifest",
                str(manifest_path),
                "--user",
                "rosa",
                "--workers",
                str(workers),
                stdout=output,
            )
            job = ImportJob.objects.get()
            line_of = {row["image_id"]: row["line"] for row in job.report["created"]}
            images = Image.objects.filter(pk__in=line_of)
            outcome = {
                "created": [{k: v for k, v in row.items() if k != "image_id"} for row in job.report["created"]],
                "duplicates": [
                    {"line": row["line"], "of_line": line_of[row["existing_id"]]} for row in job.report["duplicates"]
                ],
                "rejected": job.report["rejected"],
                "counts": (job.created_count, job.duplicate_count, job.rejected_count, job.processed_rows),
                "images": Image.objects.count(),
                "face_boxes": sorted((line_of[image.pk], image.face_box) for image in images),
                "labels": sorted(PainLabel.objects.values_list("image__sha256", "nrs")),
                "patients": sorted(Patient.objects.values_list("code", "consent")),
                "stored_files": stored_files(media_root),
                "expected_files": sorted(name for image in images for name in (image.file.name, image.thumbnail.name)),
                "summary": output.getvalue().splitlines()[0].split(": ", 1)[1],
            }
            raise Rollback
    except Rollback:
        pass
    shutil.rmtree(media_root, ignore_errors=True)
    return outcome


def test_a_parallel_import_reports_and_stores_exactly_what_a_sequential_one_does(researcher, tmp_path, settings):
    good = {f"p01/{i}.jpg": make_face_jpeg(seed=100 + i) for i in range(10)}
    header = "filename,patient,cohort,nrs,kind,captured_at,consent"
    rows = [f"p01/{i}.jpg,p01,clinical,{i},,,granted" for i in range(5)]
    rows += [
        "p01/again.jpg,p01,clinical,3,,,granted",  # the same bytes as p01/0.jpg
        "p01/broken.jpg,p01,clinical,,,,granted",  # a truncated JPEG
        "w01/1.jpg,w01,clinical,4,,,withdrawn",  # a good image of a patient who withdrew consent
        "w01/broken.jpg,w01,clinical,,,,withdrawn",  # withdrawn and corrupt: consent is named
        "w01/gone.jpg,w01,clinical,,,,withdrawn",  # withdrawn and missing: the missing file is named
        "p01/gone.jpg,p01,clinical,,,,granted",
        "p01/7.jpg,p01,clinical,,,,granted",
        "p02/7.jpg,p02,clinical,,,,granted",  # the same picture under a second patient
    ]
    rows += [f"p01/{i}.jpg,p01,clinical,,,,granted" for i in (5, 6, 8, 9)]
    files = {
        **good,
        "p01/again.jpg": good["p01/0.jpg"],
        "p01/broken.jpg": good["p01/1.jpg"][:300],
        "w01/1.jpg": make_face_jpeg(seed=200),
        "w01/broken.jpg": b"\xff\xd8\xff" + b"\x00" * 50,
        "p02/7.jpg": good["p01/7.jpg"],
    }
    folder = tmp_path / "CPD"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    manifest_path = tmp_path / "labels.csv"
    manifest_path.write_text("\n".join([header, *rows]) + "\n")

    sequential = import_and_undo(folder, manifest_path, settings.MEDIA_ROOT, workers=1)
    parallel = import_and_undo(folder, manifest_path, settings.MEDIA_ROOT, workers=3)

    assert parallel == sequential
    assert sequential["counts"] == (10, 2, 5, 17)
    assert [row["of_line"] for row in sequential["duplicates"]] == [2, 13]
    reasons = {row["filename"]: row["reason"] for row in sequential["rejected"]}
    assert "damaged or truncated" in reasons["p01/broken.jpg"]
    assert "withdrew consent" in reasons["w01/1.jpg"] and "withdrew consent" in reasons["w01/broken.jpg"]
    assert reasons["w01/gone.jpg"] == reasons["p01/gone.jpg"] == "not found in the data folder"
    assert sequential["images"] == 10 and all(box for _, box in sequential["face_boxes"])
    assert sequential["stored_files"] == sequential["expected_files"]
    assert ("w01", "withdrawn") in sequential["patients"]


def test_workers_must_be_at_least_one(researcher, tmp_path):
    folder, manifest_path = make_dataset(tmp_path, ["a.jpg,p01,clinical,,,"], {"a.jpg": make_jpeg(seed=5)})
    with pytest.raises(CommandError, match="--workers must be 1 or more, not 0"):
        call_command("import_images", str(folder), "--manifest", str(manifest_path), "--user", "rosa", "--workers", "0")
    assert not ImportJob.objects.exists()
