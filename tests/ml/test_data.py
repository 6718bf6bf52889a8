"""Records from a manifest, and clear errors for files that cannot be read."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image

from modeling.ml.data import PainImageDataset, UnreadableImage, check_readable, load_image, read_manifest
from modeling.ml.levels import PainLevels
from modeling.ml.transforms import EvalPreset


def make_image(path: Path, colour: tuple[int, int, int] = (120, 90, 60), size: int = 40) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), colour).save(path)
    return path


def make_manifest(folder: Path, rows: list[str], header: str = "path,patient,cohort,nrs") -> Path:
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join([header, *rows]) + "\n")
    return manifest


def test_it_reads_records_with_levels_hashes_and_face_boxes(tmp_path):
    first = make_image(tmp_path / "a" / "one.png")
    make_image(tmp_path / "a" / "two.png", colour=(1, 2, 3))
    manifest = make_manifest(
        tmp_path,
        ["a/one.png,P1,clinical,0,", "a/two.png,P2,simulated,8,4 5 20 22"],
        header="path,patient,cohort,nrs,face_box",
    )
    records = read_manifest(manifest, data_dir=tmp_path, levels=PainLevels.parse())
    assert [r.level for r in records] == [0, 3]
    assert [r.patient for r in records] == ["P1", "P2"]
    assert [r.cohort for r in records] == ["clinical", "simulated"]
    assert records[0].sha256 == hashlib.sha256(first.read_bytes()).hexdigest()
    assert records[0].face_box is None and records[1].face_box == (4, 5, 20, 22)


def test_it_names_the_missing_columns(tmp_path):
    manifest = make_manifest(tmp_path, ["x.png,P1,3"], header="path,patient,nrs")
    with pytest.raises(ValueError, match="missing column.*cohort"):
        read_manifest(manifest, data_dir=tmp_path, levels=PainLevels.parse())


def test_it_names_the_line_with_an_impossible_nrs(tmp_path):
    make_image(tmp_path / "x.png")
    manifest = make_manifest(tmp_path, ["x.png,P1,clinical,3", "x.png,P1,clinical,12"])
    with pytest.raises(ValueError, match="line 3.*between 0 and 10"):
        read_manifest(manifest, data_dir=tmp_path, levels=PainLevels.parse())


def test_a_missing_file_raises_an_error_naming_it(tmp_path):
    with pytest.raises(UnreadableImage, match=r"gone\.png.*not found"):
        load_image(tmp_path / "gone.png")


def test_a_corrupt_file_raises_an_error_naming_it(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(UnreadableImage, match=r"broken\.jpg.*not a decodable image"):
        load_image(broken)


def test_unreadable_images_fail_or_are_skipped_and_counted(tmp_path):
    make_image(tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes(b"nope")
    manifest = make_manifest(tmp_path, ["ok.png,P1,clinical,2", "bad.png,P1,clinical,2", "gone.png,P2,clinical,5"])
    records = read_manifest(manifest, data_dir=tmp_path, levels=PainLevels.parse())
    with pytest.raises(UnreadableImage, match="bad.png"):
        check_readable(records, skip_unreadable=False)
    readable, skipped = check_readable(records, skip_unreadable=True)
    assert [Path(r.path).name for r in readable] == ["ok.png"]
    assert len(skipped) == 2 and "bad.png" in skipped[0] and "gone.png" in skipped[1]


def test_the_dataset_yields_preprocessed_tensors_and_levels(tmp_path):
    make_image(tmp_path / "ok.png", size=50)
    manifest = make_manifest(tmp_path, ["ok.png,P1,clinical,9"])
    records = read_manifest(manifest, data_dir=tmp_path, levels=PainLevels.parse())
    image, level = PainImageDataset(records, EvalPreset(32))[0]
    assert image.shape == (3, 32, 32)
    assert level == 3
