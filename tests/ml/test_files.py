"""Copying a large file into place, checked as it is written."""

from __future__ import annotations

import hashlib

import pytest

from modeling.ml.files import CopyMismatch, copy_checked


def test_a_copy_with_the_expected_sha256_is_put_in_place(tmp_path):
    source = tmp_path / "weights.pt"
    source.write_bytes(b"w" * 5_000_000)
    target = tmp_path / "models" / "run-1" / "weights.pt"
    copy_checked(source, target, expected_sha256=hashlib.sha256(source.read_bytes()).hexdigest())
    assert target.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["weights.pt"]


def test_a_mismatch_leaves_the_target_as_it_was_and_no_partial_file(tmp_path):
    source = tmp_path / "weights.pt"
    source.write_bytes(b"new bytes")
    target = tmp_path / "installed.pth"
    target.write_bytes(b"the installed file")
    with pytest.raises(CopyMismatch, match="does not match its sha256"):
        copy_checked(source, target, expected_sha256="0" * 64)
    assert target.read_bytes() == b"the installed file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["installed.pth", "weights.pt"]
