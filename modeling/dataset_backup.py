"""Lossless dataset backup: patients, consent, split assignments, images and every label.

`export_dataset` writes one ZIP: `dataset.json` (the records) plus the stored image and
thumbnail bytes under `images/` and `thumbnails/`, named by sha256. `import_dataset` restores
it into an empty instance with the same sha256s, labels (with their history and times), consent
and splits. The audit log, users' passwords, training runs and model versions are not part of
it: they belong to the database backup (docs/deploy.md). It carries both apps' records (the
splits are modeling's), so it lives in the higher one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from annotation.intake import ImageRejected, check_image_limits
from annotation.models import Cohort, Consent, Image, LabelKind, PainLabel, Patient
from annotation.services import PATIENT_CODE_PATTERN
from modeling.models import SplitAssignment
from painsite.core.services import record_event

# Every plain value of a label (nrs, kind, undo/retraction flags...), so a new field is backed
# up without touching this file; the relations are written by name or original id.
LABEL_VALUE_FIELDS = tuple(
    field.attname
    for field in PainLabel._meta.concrete_fields
    if not field.primary_key and not field.is_relation and field.name != "created_at"
)

FORMAT = "painsite-dataset"
FORMAT_VERSION = 1


class DatasetImportError(ValueError):
    """The archive cannot be restored; nothing was changed."""


@dataclass(frozen=True)
class DatasetSummary:
    patients: int
    images: int
    labels: int
    splits: int
    created_users: tuple[str, ...] = ()


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _read_stored(name: str) -> bytes:
    with default_storage.open(name, "rb") as handle:
        return handle.read()


def export_dataset(*, path: Path, actor: User | None = None) -> DatasetSummary:
    """Write the whole dataset to `path` atomically (a temp file renamed into place)."""
    splits = {s.patient_id: s for s in SplitAssignment.objects.all()}
    patients = [
        {
            "code": p.code,
            "cohort": p.cohort,
            "consent": p.consent,
            "consent_recorded_by": p.consent_recorded_by.username if p.consent_recorded_by else None,
            "consent_recorded_at": _time(p.consent_recorded_at) if p.consent_recorded_at else None,
            "created_at": _time(p.created_at),
            "split": (
                {"split": splits[p.pk].split, "seed": splits[p.pk].seed, "assigned_at": _time(splits[p.pk].assigned_at)}
                if p.pk in splits
                else None
            ),
        }
        for p in Patient.objects.select_related("consent_recorded_by").order_by("pk")
    ]
    images = Image.objects.select_related("patient", "uploaded_by").order_by("pk")
    labels = PainLabel.objects.select_related("rater").order_by("pk")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".export-", suffix=".zip", dir=path.parent)
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED) as archive:
            image_records = []
            for image in images.iterator(chunk_size=500):
                image_records.append(
                    {
                        "id": image.pk,
                        "patient": image.patient.code,
                        "sha256": image.sha256,
                        "file": f"images/{image.sha256}.jpg",
                        "thumbnail": f"thumbnails/{image.sha256}.jpg" if image.thumbnail else None,
                        "width": image.width,
                        "height": image.height,
                        "face_box": image.face_box,
                        "captured_at": _time(image.captured_at),
                        "uploaded_at": _time(image.uploaded_at),
                        "uploaded_by": image.uploaded_by.get_username() if image.uploaded_by else None,
                    }
                )
                # Stored JPEGs do not compress further; ZIP_STORED keeps export fast.
                archive.writestr(f"images/{image.sha256}.jpg", _read_stored(image.file.name))
                if image.thumbnail:
                    archive.writestr(f"thumbnails/{image.sha256}.jpg", _read_stored(image.thumbnail.name))
            label_records = [
                {
                    **{field: getattr(label, field) for field in LABEL_VALUE_FIELDS},
                    "id": label.pk,
                    "image": label.image_id,
                    "rater": label.rater.get_username(),
                    "created_at": _time(label.created_at),
                    "supersedes": label.supersedes_id,
                }
                for label in labels.iterator(chunk_size=2000)
            ]
            document = {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "exported_at": _time(timezone.now()),
                "patients": patients,
                "images": image_records,
                "labels": label_records,
            }
            archive.writestr("dataset.json", json.dumps(document, indent=1), compress_type=zipfile.ZIP_DEFLATED)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    summary = DatasetSummary(
        patients=len(patients), images=len(image_records), labels=len(label_records), splits=len(splits)
    )
    record_event(
        actor=actor, action="dataset.export", object_type="dataset", details={**summary.__dict__, "path": str(path)}
    )
    return summary


def _load_document(archive: zipfile.ZipFile) -> dict:
    try:
        document = json.loads(archive.read("dataset.json"))
    except KeyError as error:
        raise DatasetImportError("the archive has no dataset.json: is it a PainSite dataset export?") from error
    except json.JSONDecodeError as error:
        raise DatasetImportError(f"dataset.json is not valid JSON: {error}") from error
    if document.get("format") != FORMAT or document.get("version") != FORMAT_VERSION:
        raise DatasetImportError(
            f"unsupported archive format {document.get('format')!r} version {document.get('version')!r}; "
            f"this PainSite reads {FORMAT!r} version {FORMAT_VERSION}"
        )
    return document


def _check_patient(record: dict) -> None:
    """A backup is input like any other: codes, cohorts and consent are checked as on creation."""
    code = record.get("code")
    if not isinstance(code, str) or not PATIENT_CODE_PATTERN.match(code):
        raise DatasetImportError(f"patient code {code!r} is not a pseudonymous code (letters, digits, '.', '_', '-')")
    if record.get("cohort") not in Cohort.values:
        raise DatasetImportError(
            f"patient {code}: cohort {record.get('cohort')!r} is not one of {', '.join(Cohort.values)}"
        )
    if record.get("consent") not in Consent.values:
        raise DatasetImportError(
            f"patient {code}: consent {record.get('consent')!r} is not one of {', '.join(Consent.values)}"
        )


def _read_image(archive: zipfile.ZipFile, name: str, *, sha256: str | None = None) -> bytes:
    """A member within the upload limits: read with a cap (the size a ZIP declares can lie),
    compared with its recorded sha256, then held to the byte and pixel limits of every upload."""
    try:
        with archive.open(name) as member:
            data = member.read(settings.PAINSITE_MAX_UPLOAD_BYTES + 1)
        if len(data) > settings.PAINSITE_MAX_UPLOAD_BYTES:
            # Before the sha256: reading on to hash it would read past the limit.
            raise ImageRejected(name, f"the file is more than {settings.PAINSITE_MAX_UPLOAD_BYTES:,} bytes, the limit")
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise DatasetImportError(f"{name} does not match its recorded sha256: the archive is damaged")
        check_image_limits(data=data, filename=name)
    except KeyError:
        raise DatasetImportError(f"{name} is listed in dataset.json but not in the archive") from None
    except ImageRejected as rejected:
        raise DatasetImportError(str(rejected)) from None
    return data


def _user(username: str | None, created: list[str]) -> User | None:
    if not username:
        return None
    user = User.objects.filter(username=username).first()
    if user is None:
        # Raters keep their identity in the history; they get no password and no role until an
        # admin gives them one.
        user = User(username=username, is_active=False)
        user.set_unusable_password()
        user.save()
        created.append(username)
    return user


def import_dataset(*, path: Path, actor: User | None = None) -> DatasetSummary:
    """Restore an export into an instance that has no patients or images yet. All or nothing."""
    if Patient.objects.exists() or Image.objects.exists():
        raise DatasetImportError("this instance already has patients or images; restore into an empty instance")
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        raise DatasetImportError(f"{path} is not a readable ZIP archive: {error}") from error
    written: list[str] = []
    created_users: list[str] = []
    try:
        with archive, transaction.atomic():
            document = _load_document(archive)
            patients = {}
            for record in document["patients"]:
                _check_patient(record)
                recorded_at = record.get("consent_recorded_at")
                patient = Patient.objects.create(
                    code=record["code"],
                    cohort=record["cohort"],
                    consent=record["consent"],
                    consent_recorded_by=_user(record.get("consent_recorded_by"), created_users),
                    consent_recorded_at=parse_datetime(recorded_at) if recorded_at else None,
                )
                Patient.objects.filter(pk=patient.pk).update(created_at=parse_datetime(record["created_at"]))
                patients[record["code"]] = patient
                if record.get("split"):
                    split = SplitAssignment.objects.create(
                        patient=patient, split=record["split"]["split"], seed=record["split"]["seed"]
                    )
                    SplitAssignment.objects.filter(pk=split.pk).update(
                        assigned_at=parse_datetime(record["split"]["assigned_at"])
                    )
            image_ids = {}
            for record in document["images"]:
                data = _read_image(archive, record["file"], sha256=record["sha256"])
                name = default_storage.save(f"images/restored/{record['sha256']}.jpg", ContentFile(data))
                written.append(name)
                thumbnail = ""
                if record.get("thumbnail"):
                    thumbnail = default_storage.save(
                        f"thumbnails/restored/{record['sha256']}.jpg",
                        ContentFile(_read_image(archive, record["thumbnail"])),
                    )
                    written.append(thumbnail)
                image = Image.objects.create(
                    patient=patients[record["patient"]],
                    file=name,
                    thumbnail=thumbnail,
                    sha256=record["sha256"],
                    width=record["width"],
                    height=record["height"],
                    face_box=record["face_box"],
                    captured_at=parse_datetime(record["captured_at"]) if record["captured_at"] else None,
                    uploaded_by=_user(record["uploaded_by"], created_users),
                )
                Image.objects.filter(pk=image.pk).update(uploaded_at=parse_datetime(record["uploaded_at"]))
                image_ids[record["id"]] = image.pk
            label_ids = {}
            for record in sorted(document["labels"], key=lambda r: r["id"]):
                label = PainLabel.objects.create(
                    **{field: record[field] for field in LABEL_VALUE_FIELDS},
                    image_id=image_ids[record["image"]],
                    rater=_user(record["rater"], created_users),
                    supersedes_id=label_ids[record["supersedes"]] if record["supersedes"] else None,
                )
                PainLabel.objects.filter(pk=label.pk).update(created_at=parse_datetime(record["created_at"]))
                label_ids[record["id"]] = label.pk
            _recount_labels()
            summary = DatasetSummary(
                patients=len(patients),
                images=len(image_ids),
                labels=len(label_ids),
                splits=sum(1 for r in document["patients"] if r.get("split")),
                created_users=tuple(created_users),
            )
            record_event(
                actor=actor,
                action="dataset.import",
                object_type="dataset",
                details={**summary.__dict__, "path": str(path)},
            )
    except BaseException as error:
        for name in written:
            default_storage.delete(name)
        if isinstance(error, (KeyError, TypeError, ValueError)) and not isinstance(error, DatasetImportError):
            raise DatasetImportError(f"the archive's records are incomplete or invalid: {error!r}") from error
        raise
    return summary


def _recount_labels() -> None:
    """Set the queue counters from the restored labels (the latest label of each rater counts)."""
    current = PainLabel.objects.current()
    for image in Image.objects.annotate(
        n_labels=Count("labels", filter=Q(labels__in=current)),
        n_observers=Count(
            "labels__rater", filter=Q(labels__in=current, labels__kind=LabelKind.OBSERVER), distinct=True
        ),
    ).iterator(chunk_size=1000):
        if image.label_count != image.n_labels or image.observer_rater_count != image.n_observers:
            Image.objects.filter(pk=image.pk).update(label_count=image.n_labels, observer_rater_count=image.n_observers)
