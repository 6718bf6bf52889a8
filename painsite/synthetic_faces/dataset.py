"""Synthetic data sets: patients planned from a seed, written as JPEGs with a manifest."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from painsite.synthetic_faces.identity import (
    CLINICAL_SHARE,
    COHORTS,
    JPEG_QUALITY,
    Expression,
    FaceIdentity,
    make_identity,
    sample_expression,
)
from painsite.synthetic_faces.render import render_face


@dataclass(frozen=True)
class PlannedPatient:
    """One synthetic patient: identity, NRS per image and the random stream of each image.

    Every patient and every image has its own stream keyed by (seed, cohort, number, image), so
    asking for more patients or more images later keeps the earlier ones exactly as they were.
    """

    code: str
    cohort: str
    identity: FaceIdentity
    nrs: tuple[int, ...]
    seed: int
    cohort_index: int
    number: int

    def image_rng(self, index: int, stream: str = "pixels") -> np.random.Generator:
        """The random stream of image `index` for one purpose: "pixels", "nrs" or "labels"."""
        return _image_rng(self.seed, self.cohort_index, self.number, index, stream)

    def render(self, index: int, size: int = 224) -> tuple[Image.Image, Expression]:
        """Image `index` and the expression drawn on it (what an observer of the face sees)."""
        rng = self.image_rng(index)
        expression = sample_expression(self.identity, self.nrs[index], rng)
        return render_face(self.identity, expression, rng, size=size), expression

    def draw(self, index: int, size: int = 224) -> Image.Image:
        return self.render(index, size)[0]


IMAGE_STREAMS = ("pixels", "nrs", "labels")


def _image_rng(seed: int, cohort_index: int, number: int, index: int, stream: str) -> np.random.Generator:
    # Separate streams, so that drawing the labels never shifts the pixels and vice versa.
    key = [seed, cohort_index, number, 1 + index]
    if stream != "pixels":
        key.append(IMAGE_STREAMS.index(stream))
    return np.random.default_rng(key)


def _pain_level(cohort: str, rng: np.random.Generator) -> float:
    """A clinical patient's usual pain: after surgery most report little, some moderate, few severe."""
    return 10 * rng.beta(1.1, 2.2) if cohort == "clinical" else 5.0


def _image_nrs(cohort: str, level: float, rng: np.random.Generator) -> int:
    if cohort == "simulated":  # volunteers act pain across the whole range
        return int(rng.integers(0, 11))
    # A patient's scores cluster around their own level; some moments are pain-free.
    score = 0 if rng.random() < 0.12 else round(level + rng.normal(0, 1.4))
    return int(min(max(score, 0), 10))


def plan_patients(
    n_patients: int, images_per_patient: int, seed: int, cohorts: tuple[str, ...] = COHORTS
) -> list[PlannedPatient]:
    """The patients of a synthetic data set, deterministic for the seed."""
    for cohort in cohorts:
        if cohort not in COHORTS:
            raise ValueError(f"unknown cohort {cohort!r}; valid cohorts: {', '.join(COHORTS)}")
    if n_patients < 0 or images_per_patient < 0:
        raise ValueError("n_patients and images_per_patient must not be negative")
    if set(cohorts) == set(COHORTS) and n_patients >= 2:
        n_clinical = min(max(round(n_patients * CLINICAL_SHARE), 1), n_patients - 1)
        counts = {"clinical": n_clinical, "simulated": n_patients - n_clinical}
    else:
        share, extra = divmod(n_patients, len(cohorts))
        counts = {cohort: share + (i < extra) for i, cohort in enumerate(cohorts)}
    patients = []
    for cohort, count in counts.items():
        cohort_index = COHORTS.index(cohort)
        for number in range(1, count + 1):
            rng = np.random.default_rng([seed, cohort_index, number, 0])
            identity = make_identity(rng, cohort)
            level = _pain_level(cohort, rng)
            nrs = tuple(
                _image_nrs(cohort, level, _image_rng(seed, cohort_index, number, index, "nrs"))
                for index in range(images_per_patient)
            )
            patients.append(
                PlannedPatient(
                    code=f"{cohort[0].upper()}-{number:04d}",
                    cohort=cohort,
                    identity=identity,
                    nrs=nrs,
                    seed=seed,
                    cohort_index=cohort_index,
                    number=number,
                )
            )
    return patients


def encode_jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def write_dataset(
    out_dir: str | Path,
    n_patients: int,
    images_per_patient: int,
    seed: int,
    size: int = 224,
    cohorts: tuple[str, ...] = COHORTS,
) -> Path:
    """Write JPEG faces and manifest.csv (path,patient,cohort,nrs; paths relative to out_dir)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for patient in plan_patients(n_patients, images_per_patient, seed, tuple(cohorts)):
        folder = out_dir / patient.cohort / patient.code
        folder.mkdir(parents=True, exist_ok=True)
        for index, nrs in enumerate(patient.nrs):
            relative = f"{patient.cohort}/{patient.code}/{patient.code}-{index + 1:03d}.jpg"
            (out_dir / relative).write_bytes(encode_jpeg(patient.draw(index, size)))
            rows.append((relative, patient.code, patient.cohort, nrs))
    manifest = out_dir / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("path", "patient", "cohort", "nrs"))
        writer.writerows(rows)
    return manifest
