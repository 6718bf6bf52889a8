"""Hostile input, generated: random bytes, damaged JPEG/PNG files, random label bodies and random
manifests. Whatever arrives, the answer is never a 5xx, a refused input leaves no row and no
file behind, and stored files are named by their content hash, never by anything the client sent.

Each example runs in a transaction that is rolled back, and the files it stored are removed, so
the examples do not see each other. Example counts are bounded so the file runs in well under a
minute on two cores.
"""

from __future__ import annotations

import io
import re
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from annotation.archive import ArchiveRejected, Manifest, parse_manifest, safe_member_path
from annotation.models import Image, ImportJob, LabelKind, PainLabel, Patient
from painsite.core.models import AuditEvent
from tests.annotation.image_factories import encode, make_face, make_jpeg
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

FUZZ = hypothesis_settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
# How intake names what it stores: images/YYYY/MM/<sha256>.jpg (and the same under thumbnails/).
STORED_NAME = re.compile(r"^(images|thumbnails)/\d{4}/\d{2}/[0-9a-f]{64}(_[A-Za-z0-9]{7})?\.jpg$")
VALID_JPEG = make_jpeg(seed=7, width=40, height=32)
VALID_PNG = encode(make_face(48, 40, seed=3), "PNG")
HOSTILE_NAMES = [
    "face.jpg", "../../etc/passwd", "/etc/passwd", "..\\..\\boot.ini", "a/../../b.jpg", "C:/x.jpg",
    "face.jpg\x00.png", "x" * 300 + ".jpg", "<script>.svg", "images/2026/01/" + "0" * 64 + ".jpg",
]  # fmt: skip


def media_files() -> set[str]:
    root = Path(settings.MEDIA_ROOT)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@contextmanager
def isolated_example():
    """Roll back the example's rows and delete the files it stored, once its checks have run."""
    before = media_files()
    try:
        with transaction.atomic():
            yield
            transaction.set_rollback(True)
    finally:
        for name in media_files() - before:
            (Path(settings.MEDIA_ROOT) / name).unlink()


@st.composite
def mutated(draw, original: bytes) -> bytes:
    """A real image file with a few of its bytes flipped, cut, repeated or inserted."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 6))):
        operation = draw(st.sampled_from(["flip", "truncate", "insert", "duplicate", "zero_run"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if operation == "flip" and data:
            data[position] ^= draw(st.integers(1, 255))
        elif operation == "truncate":
            del data[position:]
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
        elif operation == "duplicate":
            data[position:position] = data[position : position + draw(st.integers(1, 512))]
        elif operation == "zero_run":
            data[position : position + draw(st.integers(1, 64))] = b"\x00" * draw(st.integers(1, 64))
    return bytes(data)


upload_bodies = st.one_of(
    st.binary(max_size=2048),
    mutated(VALID_JPEG),
    mutated(VALID_PNG),
    st.just(VALID_JPEG),
    # Right magic number, random rest.
    st.binary(max_size=512).map(lambda rest: b"\xff\xd8\xff\xe0" + rest),
    st.binary(max_size=512).map(lambda rest: b"\x89PNG\r\n\x1a\n" + rest),
)


@pytest.fixture
def patient(db) -> Patient:
    return Patient.objects.create(code="P-fuzz", cohort="clinical", consent="granted")


def test_no_upload_gets_a_5xx_and_a_refused_one_leaves_no_row_or_file(clinician, patient):
    client = api_client_for(clinician)
    outcomes: dict[int, int] = {}

    @FUZZ
    @given(
        body=upload_bodies,
        filename=st.sampled_from(HOSTILE_NAMES),
        patient_code=st.sampled_from(["P-fuzz", "P-fuzz", "nobody", "../P"]),
    )
    def upload(body: bytes, filename: str, patient_code: str) -> None:
        with isolated_example():
            images_before, events_before = Image.objects.count(), AuditEvent.objects.count()
            files_before = media_files()
            response = client.post(
                reverse("api-images"),
                {"file": _named(body, filename), "patient": patient_code},
                format="multipart",
            )
            outcomes[response.status_code] = outcomes.get(response.status_code, 0) + 1
            assert response.status_code < 500, response.content[:300]
            new_files = media_files() - files_before
            if response.status_code == 201:
                image = Image.objects.get(pk=response.json()["id"])
                assert sorted(new_files) == sorted([image.file.name, image.thumbnail.name])
                assert all(STORED_NAME.match(name) for name in new_files), new_files
            else:
                assert 400 <= response.status_code < 500
                assert set(response.json()) == {"error", "details"} and response.json()["error"]
                assert Image.objects.count() == images_before and not new_files
                assert AuditEvent.objects.count() == events_before

    upload()
    # The generator reached both sides: some uploads were stored, many refused.
    assert outcomes.get(201, 0) >= 1 and outcomes.get(400, 0) >= 10, outcomes


def _named(body: bytes, filename: str) -> io.BytesIO:
    handle = io.BytesIO(body)
    handle.name = filename.replace("\x00", "")
    return handle


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
    st.text(max_size=20), st.sampled_from(["5", "05", "5.0", "1e1", " 7 ", "٣", "10", "11", "-0"]),
)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
label_bodies = st.one_of(
    # Well-formed, in range or just outside it.
    st.fixed_dictionaries({"nrs": st.integers(-3, 14), "kind": st.sampled_from(LabelKind.values)}),
    st.fixed_dictionaries(
        {},
        optional={
            "nrs": st.one_of(st.integers(-3, 14), json_values),
            "kind": st.one_of(st.sampled_from(LabelKind.values), json_values),
            "image": json_values,
            "rater": json_values,
        },
    ),
    json_values,
)


def test_no_label_body_gets_a_5xx_and_only_a_valid_score_is_stored(clinician, patient):
    from tests.annotation.factories import make_image

    image = make_image(patient)
    client = api_client_for(clinician)
    url = reverse("api-image-labels", args=[image.pk])
    outcomes: dict[int, int] = {}

    @FUZZ
    @given(body=label_bodies)
    def label(body) -> None:
        with isolated_example():
            response = client.post(url, body, format="json")
            outcomes[response.status_code] = outcomes.get(response.status_code, 0) + 1
            assert response.status_code < 500, response.content[:300]
            rows = list(PainLabel.objects.filter(image=image))
            if response.status_code == 201:
                assert len(rows) == 1 and 0 <= rows[0].nrs <= 10 and rows[0].kind in LabelKind.values
                assert rows[0].rater_id == clinician.pk  # never whoever the body names
            else:
                assert rows == [] and response.json()["error"]
            if (
                isinstance(body, dict)
                and type(body.get("nrs")) is int
                and body.get("kind", "observer") in LabelKind.values
            ):
                assert (response.status_code == 201) == (0 <= body["nrs"] <= 10), (body, response.json())
            if isinstance(body, dict) and isinstance(body.get("nrs"), (bool, float)):
                assert response.status_code == 400

    label()
    assert outcomes.get(201, 0) >= 3 and outcomes.get(400, 0) >= 10, outcomes


def test_a_label_body_that_is_not_json_gets_a_4xx_and_stores_nothing(clinician, patient):
    from tests.annotation.factories import make_image

    image = make_image(patient)
    client = api_client_for(clinician)

    @FUZZ
    @given(
        raw=st.binary(max_size=200),
        content_type=st.sampled_from(
            ["application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
        ),
    )
    def send(raw: bytes, content_type: str) -> None:
        with isolated_example():
            response = client.generic(
                "POST", reverse("api-image-labels", args=[image.pk]), raw, content_type=content_type
            )
            assert response.status_code < 500, response.content[:300]
            if response.status_code != 201:
                assert not PainLabel.objects.exists()

    send()


manifest_cells = st.one_of(
    st.text(max_size=12),
    st.sampled_from(HOSTILE_NAMES + ["face.jpg", "P-1", "clinical", "simulated", "self_report", "observer", "7", "11", "-1", "2026-01-02", "2026-13-40T25:00", "=cmd|' /C calc'!A0"]),
)  # fmt: skip
manifest_texts = st.one_of(
    st.text(max_size=300),
    st.lists(st.lists(manifest_cells, min_size=0, max_size=7), max_size=8).map(
        lambda rows: "\n".join(
            ["filename,patient,cohort,nrs,kind,captured_at"]
            + [",".join(_csv_cell(cell) for cell in row) for row in rows]
        )
    ),
)


def _csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n\r') else text


@FUZZ
@given(text=manifest_texts)
def test_the_manifest_parser_refuses_whole_or_row_by_row_and_every_accepted_row_is_safe(text):
    try:
        manifest = parse_manifest(text)
    except ArchiveRejected as refusal:
        assert str(refusal)
        return
    assert isinstance(manifest, Manifest)
    for row in manifest.rows:
        safe_member_path(row.filename)  # raises for a path that escapes or is absolute
        assert ".." not in Path(row.filename).parts and not row.filename.startswith("/")
        assert row.patient and len(row.patient) <= 64
        assert row.nrs is None or 0 <= row.nrs <= 10
        assert (row.kind is None) == (row.nrs is None) and (row.kind is None or row.kind in LabelKind.values)
        assert row.cohort in ("", "clinical", "simulated")
    for problem in manifest.problems:
        assert problem.reason


def _zip(manifest_text: str, members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.csv", manifest_text)
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


archive_bodies = st.one_of(
    st.binary(max_size=1024),
    manifest_texts.map(
        lambda text: _zip(text, {"face.jpg": VALID_JPEG, "../../escape.jpg": make_jpeg(seed=8), "evil.png": VALID_PNG})
    ),
    manifest_texts.flatmap(lambda text: mutated(_zip(text, {"face.jpg": VALID_JPEG}))),
)


def test_no_archive_gets_a_5xx_and_only_reported_images_are_stored_under_hash_names(clinician):
    client = api_client_for(clinician)
    outcomes: dict[int, int] = {}

    @FUZZ
    @given(body=archive_bodies)
    def bulk(body: bytes) -> None:
        with isolated_example():
            files_before = media_files()
            response = client.post(
                reverse("api-images-bulk"), {"archive": _named(body, "../../upload.zip")}, format="multipart"
            )
            outcomes[response.status_code] = outcomes.get(response.status_code, 0) + 1
            assert response.status_code < 500, response.content[:300]
            new_files = media_files() - files_before
            assert all(STORED_NAME.match(name) for name in new_files), new_files
            if response.status_code == 200:
                report = response.json()["report"]
                created = {item["image_id"] for item in report["created"]}
                assert set(Image.objects.values_list("pk", flat=True)) == created
                assert len(new_files) == 2 * len(created)
            else:
                assert response.status_code == 400 and response.json()["error"]
                assert not Image.objects.exists() and not ImportJob.objects.exists() and not new_files

    bulk()
    assert outcomes.get(200, 0) >= 3 and outcomes.get(400, 0) >= 3, outcomes


def test_a_zip_member_name_never_becomes_a_storage_path(clinician):
    """Names that try to escape or to pick their storage path are either refused or stored by hash."""
    names = [name for name in HOSTILE_NAMES if "\x00" not in name]
    members = {name: make_jpeg(seed=20 + index) for index, name in enumerate(names)}
    manifest_text = "filename,patient,cohort,consent\n" + "\n".join(
        f"{_csv_cell(name)},P-zip,clinical,granted" for name in names
    )
    response = api_client_for(clinician).post(
        reverse("api-images-bulk"), {"archive": _named(_zip(manifest_text, members), "set.zip")}, format="multipart"
    )
    assert response.status_code == 200, response.json()
    report = response.json()["report"]
    refused = {item["filename"] for item in report["rejected"]}
    assert {"../../etc/passwd", "/etc/passwd", "..\\..\\boot.ini", "a/../../b.jpg", "C:/x.jpg"} <= refused
    stored = media_files()
    assert len(stored) == 2 * len(report["created"]) >= 2
    assert all(STORED_NAME.match(name) for name in stored), stored
    assert (
        not (Path(settings.MEDIA_ROOT).parent / "etc").exists()
        and not (Path(settings.MEDIA_ROOT).parent / "escape.jpg").exists()
    )


def test_a_zip_cut_short_at_its_start_is_refused_not_a_server_error(clinician):
    """Its central directory points the members before the start of the file ("negative seek")."""
    archive = _zip("filename,patient,cohort\na.jpg,P-CUT,clinical\n", {"a.jpg": make_jpeg(seed=3)})
    response = api_client_for(clinician).post(
        reverse("api-images-bulk"), {"archive": _named(archive[1:], "cut.zip")}, format="multipart"
    )
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]
    assert not Image.objects.exists() and not ImportJob.objects.exists()


def test_mutated_archives_are_refused_by_name_never_with_another_error():
    """Thousands of archives with a few bytes changed: reading each ends in the archive or the
    member being refused, never in zipfile's own errors (zlib.error, RuntimeError, UnicodeDecodeError...)."""
    import random

    from annotation.archive import MemberRejected, SafeArchive

    original = _zip("filename,patient,cohort\n" + "a.jpg,P-1,clinical\n" * 20, {"a.jpg": make_jpeg(seed=4)})
    outcomes = {"read": 0, "refused": 0}
    for seed in range(3000):
        rng = random.Random(seed)
        damaged = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            with SafeArchive(io.BytesIO(bytes(damaged)), max_total_bytes=10**7, max_member_bytes=10**7) as archive:
                for name in archive.names:
                    try:
                        archive.read(name)
                    except MemberRejected:
                        outcomes["refused"] += 1
            outcomes["read"] += 1
        except ArchiveRejected:
            outcomes["refused"] += 1
    assert outcomes["read"] and outcomes["refused"], outcomes


def test_a_manifest_with_a_nul_character_is_refused_before_anything_is_stored(clinician):
    """PostgreSQL refuses NUL in text and JSON: such a manifest was a 500 there, and is binary data anyway."""
    archive = _zip("filename,patient,cohort\na.jpg,P-\x00,clinical\n", {"a.jpg": make_jpeg(seed=5)})
    response = api_client_for(clinician).post(
        reverse("api-images-bulk"), {"archive": _named(archive, "nul.zip")}, format="multipart"
    )
    assert response.status_code == 400 and "NUL" in response.json()["error"]
    assert not Image.objects.exists() and not ImportJob.objects.exists()
