"""The synthetic faces: deterministic, marked, found by the face detector, and pained as the NRS says."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr

from painsite.synthetic_faces import (
    COHORTS,
    MARK,
    draw_face,
    expression_intensity,
    make_identity,
    nrs_for_intensity,
    plan_patients,
    sample_expression,
    write_dataset,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CASCADE = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def make_identities(count: int, seed: int = 0) -> list:
    return [make_identity(np.random.default_rng([seed, i]), COHORTS[i % 2]) for i in range(count)]


def file_digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def finds_face(image: Image.Image, *, equalize: bool) -> bool:
    gray = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2GRAY)
    if equalize:  # what the upload path does before detecting
        gray = cv2.equalizeHist(gray)
    min_side = image.width // 5
    faces = CASCADE.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    return len(faces) > 0


def test_expression_intensity_rises_from_none_to_full_and_inverts():
    intensities = [expression_intensity(nrs) for nrs in range(11)]
    assert intensities[0] == 0 and intensities[10] == 1
    assert all(low < high for low, high in zip(intensities, intensities[1:]))
    for nrs in range(11):
        assert nrs_for_intensity(expression_intensity(nrs)) == pytest.approx(nrs)


@pytest.mark.parametrize("nrs", [-1, 11])
def test_it_rejects_nrs_outside_0_to_10(nrs):
    with pytest.raises(ValueError, match="between 0 and 10"):
        expression_intensity(nrs)


def test_it_rejects_an_unknown_cohort():
    with pytest.raises(ValueError, match="clinical, simulated"):
        make_identity(np.random.default_rng(0), "volunteers")


def test_write_dataset_is_deterministic_for_a_seed(tmp_path):
    first = file_digests(write_dataset(tmp_path / "a", n_patients=3, images_per_patient=2, seed=7, size=64).parent)
    second = file_digests(write_dataset(tmp_path / "b", n_patients=3, images_per_patient=2, seed=7, size=64).parent)
    other_seed = file_digests(write_dataset(tmp_path / "c", n_patients=3, images_per_patient=2, seed=8, size=64).parent)

    assert first == second
    assert len(first) == 3 * 2 + 1  # the images and the manifest
    images = {name: digest for name, digest in first.items() if name.endswith(".jpg")}
    assert set(images.values()).isdisjoint(other_seed.values())


def test_manifest_lists_every_image_with_its_patient_cohort_and_nrs(tmp_path):
    manifest = write_dataset(tmp_path, n_patients=4, images_per_patient=2, seed=1, size=64)

    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["path", "patient", "cohort", "nrs"]
    assert len(rows) == 8
    assert {row["cohort"] for row in rows} == {"clinical", "simulated"}
    assert len({row["patient"] for row in rows}) == 4
    for row in rows:
        image = Image.open(tmp_path / row["path"])
        assert image.format == "JPEG" and image.mode == "RGB" and image.size == (64, 64)
        assert 0 <= int(row["nrs"]) <= 10


def test_more_patients_or_images_keep_the_earlier_ones_as_they_were():
    small = plan_patients(4, 2, seed=5)
    large = plan_patients(8, 3, seed=5)
    by_code = {patient.code: patient for patient in large}

    for patient in small:
        grown = by_code[patient.code]
        assert grown.identity == patient.identity
        assert grown.nrs[:2] == patient.nrs
        assert np.array_equal(np.asarray(grown.draw(1, 64)), np.asarray(patient.draw(1, 64)))


def test_every_image_carries_the_synthetic_mark():
    for identity in make_identities(3):
        image = draw_face(identity, 5, np.random.default_rng(1), size=224)
        corner = np.asarray(image)[-3:, :3].reshape(-1, 3)
        # The mark's red box sits in the bottom-left corner, drawn after lighting and noise.
        assert (corner == (180, 20, 40)).all()
    assert MARK == "SYNTHETIC"


def test_clinical_scores_are_mostly_low_and_volunteers_act_the_whole_range():
    patients = plan_patients(200, 6, seed=2)
    clinical = np.array([nrs for patient in patients if patient.cohort == "clinical" for nrs in patient.nrs])
    simulated = np.array([nrs for patient in patients if patient.cohort == "simulated" for nrs in patient.nrs])

    assert len(clinical) > 2 * len(simulated)
    assert np.median(clinical) <= 3
    assert 0.03 < np.mean(clinical >= 7) < 0.25
    assert set(simulated) == set(range(11))
    assert 4 < simulated.mean() < 6


def test_patients_differ_in_identity():
    identities = make_identities(40)

    assert len({identity.skin for identity in identities}) > 20
    assert len({identity.hair_style for identity in identities}) >= 4
    assert {identity.glasses for identity in identities} >= {None, "round", "square"}
    assert np.std([identity.eye_spacing for identity in identities]) > 0.01
    assert np.std([identity.tilt for identity in identities]) > 2


def test_the_drawn_pain_expression_follows_the_nrs():
    """Action units rise with the NRS across patients, although stoic patients show less."""
    scores, pspi = [], []
    for patient in plan_patients(30, 6, seed=4):
        for index, nrs in enumerate(patient.nrs):
            scores.append(nrs)
            pspi.append(sample_expression(patient.identity, nrs, patient.image_rng(index)).pspi)
    assert spearmanr(scores, pspi).statistic > 0.8
    # ...but not perfectly: the face alone must not give the score away.
    assert spearmanr(scores, pspi).statistic < 0.98
    means = [np.mean([p for s, p in zip(scores, pspi) if s == nrs]) for nrs in (0, 3, 6, 9) if nrs in scores]
    assert means == sorted(means)


def test_pixels_change_more_the_higher_the_nrs():
    """With the same light, pose and noise, the face departs further from its NRS 0 look."""
    identities = make_identities(2, seed=9)
    sheet = Image.new("RGB", (11 * 224, 2 * 224), "white")
    for row, identity in enumerate(identities):
        neutral = np.asarray(draw_face(identity, 0, np.random.default_rng(3), size=224), dtype=np.float32)
        change = []
        for nrs in range(11):
            image = draw_face(identity, nrs, np.random.default_rng(3), size=224)
            change.append(np.abs(np.asarray(image, dtype=np.float32) - neutral).mean())
            sheet.paste(image, (nrs * 224, row * 224))
        assert spearmanr(range(11), change).statistic > 0.8
        assert change[10] > 4 * change[2]
    ARTIFACTS.mkdir(exist_ok=True)
    sheet.save(ARTIFACTS / "synthetic_faces_nrs_0_to_10.png")


def test_the_haar_cascade_finds_most_faces_at_224_px():
    images = []
    for index, identity in enumerate(make_identities(60, seed=11)):
        nrs = index % 11
        images.append(draw_face(identity, nrs, np.random.default_rng([11, index]), size=224))

    plain_rate = np.mean([finds_face(image, equalize=False) for image in images])
    equalized_rate = np.mean([finds_face(image, equalize=True) for image in images])
    assert plain_rate >= 0.85, plain_rate
    assert equalized_rate >= 0.85, equalized_rate
