from __future__ import annotations

import hashlib
import json
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.intake import store_image
from annotation.models import Image, PainLabel, Patient
from annotation.services import record_label, undo_last_label, withdraw_consent
from modeling.dataset_backup import DatasetImportError, export_dataset, import_dataset
from modeling.models import SplitAssignment
from painsite.core.models import AuditEvent
from tests.annotation.image_factories import encode, make_face, make_patient

pytestmark = pytest.mark.django_db


def make_dataset(clinician, clinician2):
    clinical = make_patient("P001")
    simulated = make_patient("S001", cohort="simulated")
    images = [
        store_image(
            data=encode(make_face(seed=seed)), filename=f"{seed}.jpg", patient=patient, uploaded_by=clinician
        ).image
        for seed, patient in ((1, clinical), (2, clinical), (3, simulated))
    ]
    record_label(image=images[0], rater=clinician, nrs=6, kind="self_report")
    record_label(image=images[0], rater=clinician2, nrs=4, kind="observer")
    record_label(image=images[0], rater=clinician2, nrs=5, kind="observer")  # a correction
    record_label(image=images[1], rater=clinician, nrs=2, kind="observer")
    record_label(image=images[2], rater=clinician, nrs=9, kind="observer")
    undo_last_label(rater=clinician)  # retracts the label on image 3
    SplitAssignment.objects.create(patient=clinical, split="test", seed=7)
    SplitAssignment.objects.create(patient=simulated, split="train", seed=7)
    withdraw_consent(patient=simulated, actor=clinician)
    return images


def snapshot() -> dict:
    """Everything a restore must reproduce, keyed by stable identities rather than row ids."""
    sha_of = dict(Image.objects.values_list("pk", "sha256"))
    return {
        "patients": sorted(Patient.objects.values_list("code", "cohort", "consent", "created_at")),
        "splits": sorted(SplitAssignment.objects.values_list("patient__code", "split", "seed")),
        "images": sorted(
            Image.objects.values_list(
                "sha256",
                "patient__code",
                "width",
                "height",
                "face_box",
                "uploaded_at",
                "label_count",
                "observer_rater_count",
            )
        ),
        "files": sorted(
            hashlib.sha256(default_storage.open(i.file.name).read()).hexdigest() for i in Image.objects.all()
        ),
        "labels": sorted(
            (
                sha_of[label.image_id],
                label.rater.username,
                label.nrs,
                label.kind,
                label.is_undo,
                label.is_retraction,
                label.created_at,
                label.supersedes.created_at if label.supersedes else None,
            )
            for label in PainLabel.objects.select_related("rater", "supersedes")
        ),  # fmt: skip
    }


def wipe_dataset(settings, tmp_path) -> None:
    for label in PainLabel.objects.order_by("-id"):  # newest first: corrections protect what they supersede
        label.delete()
    SplitAssignment.objects.all().delete()
    Image.objects.all().delete()
    Patient.objects.all().delete()
    # A new, empty media folder: the restore must bring every file back itself.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "restored-media")},
        },
    }


def test_export_then_import_into_an_empty_instance_reproduces_everything(clinician, clinician2, settings, tmp_path):
    make_dataset(clinician, clinician2)
    before = snapshot()
    archive = tmp_path / "backup.zip"
    call_command("export_dataset", str(archive))
    wipe_dataset(settings, tmp_path)

    call_command("import_dataset", str(archive))

    assert snapshot() == before
    assert AuditEvent.objects.filter(action="dataset.export").exists()
    assert AuditEvent.objects.filter(action="dataset.import").exists()


def test_the_export_includes_withdrawn_patients_with_their_consent_state(clinician, clinician2, tmp_path):
    make_dataset(clinician, clinician2)
    export_dataset(path=tmp_path / "backup.zip")
    document = json.loads(zipfile.ZipFile(tmp_path / "backup.zip").read("dataset.json"))
    assert {p["code"]: p["consent"] for p in document["patients"]} == {"P001": "granted", "S001": "withdrawn"}


def test_unknown_raters_are_restored_as_inactive_users_without_a_role(clinician, clinician2, settings, tmp_path):
    make_dataset(clinician, clinician2)
    export_dataset(path=tmp_path / "backup.zip")
    wipe_dataset(settings, tmp_path)
    # The audit log protects the account from deletion; renaming it makes "chen" unknown here.
    clinician2.username = "chen-old"
    clinician2.save()

    summary = import_dataset(path=tmp_path / "backup.zip")

    assert summary.created_users == ("chen",)
    restored = PainLabel.objects.filter(rater__username="chen").first().rater
    assert not restored.is_active and not restored.has_usable_password() and not restored.groups.exists()


def test_import_refuses_a_non_empty_instance_and_changes_nothing(clinician, clinician2, tmp_path):
    make_dataset(clinician, clinician2)
    export_dataset(path=tmp_path / "backup.zip")
    before = snapshot()
    with pytest.raises(DatasetImportError, match="empty instance"):
        import_dataset(path=tmp_path / "backup.zip")
    assert snapshot() == before


def test_a_damaged_archive_stores_nothing_and_leaves_no_file(clinician, clinician2, settings, tmp_path):
    make_dataset(clinician, clinician2)
    export_dataset(path=tmp_path / "backup.zip")
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(tmp_path / "backup.zip") as source, zipfile.ZipFile(damaged, "w") as target:
        names = source.namelist()
        last_image = [n for n in names if n.startswith("images/")][-1]
        for name in names:
            data = source.read(name)
            target.writestr(name, data[:-10] + b"corrupted!" if name == last_image else data)
    wipe_dataset(settings, tmp_path)

    with pytest.raises(CommandError, match="does not match its recorded sha256"):
        call_command("import_dataset", str(damaged))

    assert not Patient.objects.exists() and not Image.objects.exists() and not PainLabel.objects.exists()
    restored_media = tmp_path / "restored-media"
    assert not restored_media.exists() or not [p for p in restored_media.rglob("*") if p.is_file()]


def test_a_file_that_is_not_an_export_is_refused_clearly(tmp_path, db):
    not_zip = tmp_path / "notes.zip"
    not_zip.write_text("hello")
    with pytest.raises(DatasetImportError, match="not a readable ZIP"):
        import_dataset(path=not_zip)
    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "hi")
    with pytest.raises(DatasetImportError, match="no dataset.json"):
        import_dataset(path=other_zip)
