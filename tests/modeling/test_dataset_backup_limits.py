"""import_dataset treats a backup as untrusted input: upload limits and patient codes are checked."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import Image, PainLabel, Patient
from modeling.dataset_backup import export_dataset
from tests.annotation.image_factories import make_bomb_png
from tests.modeling.test_dataset_backup import make_dataset, wipe_dataset

pytestmark = pytest.mark.django_db


def crafted_backup(tmp_path: Path, *, image: bytes | None = None, patient_code: str | None = None) -> Path:
    """A real export with its first image (and that image's recorded sha256) or first patient's
    code replaced, so only the limits can refuse it."""
    source_path, crafted = tmp_path / "backup.zip", tmp_path / "crafted.zip"
    with zipfile.ZipFile(source_path) as source:
        document = json.loads(source.read("dataset.json"))
        members = {name: source.read(name) for name in source.namelist() if name != "dataset.json"}
    if image is not None:
        record = document["images"][0]
        members[record["file"]] = image
        record["sha256"] = hashlib.sha256(image).hexdigest()
    if patient_code is not None:
        old = document["patients"][0]["code"]
        document["patients"][0]["code"] = patient_code
        for record in document["images"]:
            if record["patient"] == old:
                record["patient"] = patient_code
    with zipfile.ZipFile(crafted, "w") as target:
        target.writestr("dataset.json", json.dumps(document))
        for name, data in members.items():
            target.writestr(name, data)
    return crafted


@pytest.fixture
def backup(clinician, clinician2, settings, tmp_path) -> Path:
    make_dataset(clinician, clinician2)
    export_dataset(path=tmp_path / "backup.zip")
    wipe_dataset(settings, tmp_path)
    return tmp_path


def assert_nothing_restored(tmp_path: Path) -> None:
    assert not Patient.objects.exists() and not Image.objects.exists() and not PainLabel.objects.exists()
    restored_media = tmp_path / "restored-media"
    assert not restored_media.exists() or not [p for p in restored_media.rglob("*") if p.is_file()]


def test_an_image_over_the_pixel_limit_is_refused_and_nothing_is_restored(backup):
    crafted = crafted_backup(backup, image=make_bomb_png())
    with pytest.raises(CommandError, match="pixels"):
        call_command("import_dataset", str(crafted))
    assert_nothing_restored(backup)


def test_an_image_over_the_byte_limit_is_refused(backup, settings):
    settings.PAINSITE_MAX_UPLOAD_BYTES = 2_000
    with pytest.raises(CommandError, match="2,000 bytes"):
        call_command("import_dataset", str(backup / "backup.zip"))
    assert_nothing_restored(backup)


@pytest.mark.parametrize("code", ["John Smith", "../P001", "", "x" * 65])
def test_a_patient_code_that_could_not_be_created_is_refused(backup, code):
    crafted = crafted_backup(backup, patient_code=code)
    with pytest.raises(CommandError, match="not a pseudonymous code"):
        call_command("import_dataset", str(crafted))
    assert_nothing_restored(backup)
