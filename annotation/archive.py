"""Safe reading of import archives and their manifest.csv.

Nothing is ever extracted to disk: members are read into memory one at a time, through a byte
cap, and only when the manifest names them. A member's path is a key into the archive, never a
path on the server. The sizes in a ZIP header are claims made by whoever built the file, so they
are checked up front (cheap refusal of honest-but-huge archives) and enforced again while reading
(a lying header cannot get more bytes past the cap).
"""

from __future__ import annotations

import csv
import io
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import IO

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext

from annotation.models import RECORDABLE_CONSENT, Cohort, LabelKind

MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = ("filename", "patient", "cohort", "nrs", "kind", "captured_at", "consent")
REQUIRED_COLUMNS = ("filename", "patient")
# Archives inside archives are how zip bombs multiply; they are refused, not opened.
NESTED_ARCHIVE_SUFFIXES = (".zip", ".jar", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar", ".zst")
NESTED_ARCHIVE_MAGIC = (b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf", b"Rar!", b"\x28\xb5\x2f\xfd")
DEFAULT_MAX_MEMBERS = 20_000

# What zipfile raises on a damaged archive, found by fuzzing mutated archives (tests/system/test_hostile_input.py).
DAMAGED_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    UnicodeDecodeError,
)


class ArchiveRejected(ValueError):
    """The archive as a whole cannot be imported (not a ZIP, too big, no usable manifest)."""


class MemberRejected(ValueError):
    """One member cannot be used; the import goes on without it."""


@dataclass(frozen=True)
class ManifestRow:
    line: int
    filename: str
    patient: str
    cohort: str
    nrs: int | None
    kind: str | None
    captured_at: datetime | None
    # The consent the importer records for a patient this import creates ("" when not stated).
    consent: str = ""


@dataclass(frozen=True)
class RowProblem:
    line: int
    filename: str
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "filename": self.filename, "reason": self.reason}


@dataclass
class Manifest:
    rows: list[ManifestRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


def parse_manifest(text: str) -> Manifest:
    """Rows a data set's manifest.csv describes; each unusable row becomes a RowProblem."""
    # No text field of ours can hold a NUL (PostgreSQL refuses it in text and JSON), and a
    # manifest with one is binary data, not CSV.
    if "\x00" in text:
        raise ArchiveRejected(
            gettext("%(manifest_name)s contains NUL characters: it is not a CSV text file")
            % {"manifest_name": MANIFEST_NAME}
        )
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip().lower() for name in (reader.fieldnames or [])]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise ArchiveRejected(
            gettext("%(manifest_name)s lacks the column(s) %(missing)s; expected the header %(manifest_columns)s")
            % {
                "manifest_name": MANIFEST_NAME,
                "missing": ", ".join(missing),
                "manifest_columns": ",".join(MANIFEST_COLUMNS),
            }
        )
    reader.fieldnames = header
    manifest = Manifest()
    seen: set[str] = set()
    for number, raw in enumerate(reader, start=2):
        values = {key: (value or "").strip() for key, value in raw.items() if key is not None}
        if not any(values.values()):
            continue
        filename = values.get("filename", "")
        try:
            if not filename:
                raise MemberRejected(gettext("no filename"))
            if filename in seen:
                raise MemberRejected(gettext("this file is listed twice in the manifest"))
            seen.add(filename)
            manifest.rows.append(_parse_row(number, filename, values))
        except MemberRejected as problem:
            manifest.problems.append(RowProblem(number, filename, str(problem)))
    return manifest


def _parse_row(line: int, filename: str, values: dict[str, str]) -> ManifestRow:
    safe_member_path(filename)
    patient = values.get("patient", "")
    if not patient:
        raise MemberRejected(gettext("no patient code"))
    if len(patient) > 64:
        raise MemberRejected(gettext("the patient code is longer than 64 characters"))
    cohort = values.get("cohort", "").lower()
    if cohort and cohort not in Cohort.values:
        raise MemberRejected(
            gettext("cohort %(cohort)s is not one of %(values)s")
            % {"cohort": repr(cohort), "values": ", ".join(Cohort.values)}
        )
    nrs = _parse_nrs(values.get("nrs", ""))
    kind = values.get("kind", "").lower() or None
    if kind is not None and kind not in LabelKind.values:
        raise MemberRejected(
            gettext("kind %(kind)s is not one of %(values)s")
            % {"kind": repr(kind), "values": ", ".join(LabelKind.values)}
        )
    if kind is not None and nrs is None:
        raise MemberRejected(gettext("a kind is given but no nrs"))
    if nrs is not None and kind is None:
        # A data set's score is what the patient reported unless the manifest says otherwise.
        kind = LabelKind.SELF_REPORT
    consent = values.get("consent", "").lower()
    if consent and consent not in RECORDABLE_CONSENT:
        raise MemberRejected(
            gettext("consent %(consent)s is not one of %(recordable_consent)s")
            % {"consent": repr(consent), "recordable_consent": ", ".join(RECORDABLE_CONSENT)}
        )
    return ManifestRow(
        line=line,
        filename=filename,
        patient=patient,
        cohort=cohort,
        nrs=nrs,
        kind=kind,
        captured_at=_parse_captured_at(values.get("captured_at", "")),
        consent=consent,
    )


def _parse_nrs(text: str) -> int | None:
    if not text:
        return None
    if not text.lstrip("-").isdigit():
        raise MemberRejected(gettext("nrs %(text)s is not a whole number from 0 to 10") % {"text": repr(text)})
    value = int(text)
    if not 0 <= value <= 10:
        raise MemberRejected(gettext("nrs %(value)s is outside 0 to 10") % {"value": value})
    return value


def _parse_captured_at(text: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = parse_datetime(text)
        if moment is None and (day := parse_date(text)) is not None:
            moment = datetime(day.year, day.month, day.day)
    except ValueError:
        moment = None
    if moment is None:
        raise MemberRejected(
            gettext("captured_at %(text)s is not an ISO 8601 date or date-time") % {"text": repr(text)}
        )
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def safe_member_path(name: str) -> str:
    """The name as a relative POSIX path inside the archive; MemberRejected if it could escape."""
    if "\x00" in name:
        raise MemberRejected(gettext("the path contains a NUL character"))
    if "\\" in name:
        raise MemberRejected(gettext("the path contains a backslash; use / between folders"))
    path = PurePosixPath(name)
    if path.is_absolute() or (path.parts and ":" in path.parts[0]):
        raise MemberRejected(gettext("absolute paths are not allowed"))
    if ".." in path.parts:
        raise MemberRejected(gettext("the path leaves its folder (..)"))
    return str(path)


class SafeArchive:
    """A ZIP archive whose members can be read by name, within byte caps."""

    def __init__(
        self,
        fileobj: IO[bytes],
        *,
        max_total_bytes: int,
        max_member_bytes: int,
        max_members: int = DEFAULT_MAX_MEMBERS,
    ) -> None:
        try:
            self._zip = zipfile.ZipFile(fileobj)
        # A damaged directory can fail in any of these (a name that is not UTF-8, a version zipfile
        # does not know, a record cut short).
        except DAMAGED_ZIP_ERRORS:
            raise ArchiveRejected(gettext("the upload is not a readable ZIP archive")) from None
        infos = self._zip.infolist()
        if len(infos) > max_members:
            raise ArchiveRejected(
                gettext("the archive has %(infos)s members; the limit is %(max_members)s")
                % {"infos": f"{len(infos):,}", "max_members": f"{max_members:,}"}
            )
        declared = sum(info.file_size for info in infos)
        if declared > max_total_bytes:
            raise ArchiveRejected(
                gettext("the archive would unpack to %(declared)s bytes; the limit is %(max_total_bytes)s bytes")
                % {"declared": f"{declared:,}", "max_total_bytes": f"{max_total_bytes:,}"}
            )
        self._members = {info.filename: info for info in infos if not info.is_dir()}
        self._max_member_bytes = max_member_bytes
        self._budget = max_total_bytes

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> SafeArchive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def names(self) -> list[str]:
        return list(self._members)

    def find_manifest(self) -> tuple[str, str]:
        """(manifest text, folder its file names are relative to). One manifest.csv, at the root
        or in a single top folder (how most tools zip a data set folder)."""
        candidates = [name for name in self._members if PurePosixPath(name).name.lower() == MANIFEST_NAME]
        candidates = [name for name in candidates if len(PurePosixPath(name).parts) <= 2]
        if not candidates:
            raise ArchiveRejected(
                gettext("the archive has no %(manifest_name)s (columns: %(manifest_columns)s)")
                % {"manifest_name": MANIFEST_NAME, "manifest_columns": ",".join(MANIFEST_COLUMNS)}
            )
        if len(candidates) > 1:
            raise ArchiveRejected(
                gettext("the archive has more than one %(manifest_name)s: %(candidates)s")
                % {"manifest_name": MANIFEST_NAME, "candidates": ", ".join(sorted(candidates))}
            )
        name = candidates[0]
        try:
            data = self.read(name)
            text = data.decode("utf-8-sig")
        except MemberRejected as problem:
            raise ArchiveRejected(
                gettext("%(manifest_name)s: %(problem)s") % {"manifest_name": MANIFEST_NAME, "problem": problem}
            ) from None
        except UnicodeDecodeError:
            raise ArchiveRejected(
                gettext("%(manifest_name)s is not UTF-8 text") % {"manifest_name": MANIFEST_NAME}
            ) from None
        return text, str(PurePosixPath(name).parent).removeprefix(".")

    def read(self, name: str) -> bytes:
        """One member's bytes. MemberRejected for anything unsafe; ArchiveRejected once the
        archive as a whole has produced more bytes than its limit."""
        safe_member_path(name)
        info = self._members.get(name)
        if info is None:
            raise MemberRejected(gettext("not found in the archive"))
        if stat.S_ISLNK(info.external_attr >> 16):
            raise MemberRejected(gettext("symbolic links are not imported"))
        if info.flag_bits & 0x1:
            raise MemberRejected(gettext("encrypted members are not supported"))
        if PurePosixPath(name).suffix.lower() in NESTED_ARCHIVE_SUFFIXES:
            raise MemberRejected(gettext("archives inside the archive are not opened"))
        if info.file_size > self._max_member_bytes:
            raise MemberRejected(
                gettext("the file is %(file_size)s bytes; the limit is %(max_member_bytes)s bytes")
                % {"file_size": f"{info.file_size:,}", "max_member_bytes": f"{self._max_member_bytes:,}"}
            )
        data = self._read_capped(info)
        if data.startswith(NESTED_ARCHIVE_MAGIC):
            raise MemberRejected(gettext("archives inside the archive are not opened"))
        return data

    def _read_capped(self, info: zipfile.ZipInfo) -> bytes:
        budget_is_tighter = self._budget < self._max_member_bytes
        cap = min(self._max_member_bytes, self._budget)
        chunks: list[bytes] = []
        size = 0
        try:
            with self._zip.open(info) as member:
                while size <= cap and (chunk := member.read(min(1 << 20, cap + 1 - size))):
                    size += len(chunk)
                    chunks.append(chunk)
        # ValueError: a damaged central directory can point a member before the archive's start
        # ("negative seek value"), e.g. a ZIP with its first bytes cut off; zlib.error: damaged
        # deflate data; RuntimeError: a local header that says "encrypted" where the directory did not.
        except (*DAMAGED_ZIP_ERRORS, zlib.error, RuntimeError) as error:
            raise MemberRejected(
                gettext("the member is damaged or uses an unsupported compression (%(error)s)") % {"error": error}
            ) from None
        if size > cap:
            if budget_is_tighter:
                raise ArchiveRejected(gettext("the archive unpacks to more bytes than its limit allows"))
            raise MemberRejected(
                gettext("the file unpacks to more than %(max_member_bytes)s bytes")
                % {"max_member_bytes": f"{self._max_member_bytes:,}"}
            )
        self._budget -= size
        return b"".join(chunks)
