"""manage.py import_images DIR --manifest CSV: a research group's data set folder."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Image, ImportJob, PainLabel, Patient
from tests.annotation.image_factories import make_face_jpeg, make_jpeg, manifest

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
