"""Who a synthetic patient is, and what their face shows at each NRS (the PSPI action units)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

COHORTS = ("clinical", "simulated")
MARK = "SYNTHETIC"
# The reference study had far more clinical patients than volunteers; volunteers act the whole
# NRS range, so a quarter of the patients keeps severe pain represented in small demos.
CLINICAL_SHARE = 0.75
# Drawn at twice the output size and reduced: cheap anti-aliasing for every line and edge.
SUPERSAMPLE = 2
JPEG_QUALITY = 92
EXPOSURE_TARGET = 120.0  # mean face brightness a camera's auto-exposure aims at
INTENSITY_EXPONENT = 1.3  # > 1: mild pain barely shows on the face, severe pain clearly does

Colour = tuple[int, int, int]
T = TypeVar("T")

SKIN_TONES: tuple[Colour, ...] = (
    (246, 218, 196),
    (236, 196, 164),
    (224, 178, 140),
    (198, 150, 112),
    (170, 120, 84),
    (146, 98, 66),
    (122, 82, 56),
    (102, 68, 46),
)
DARK_HAIR: tuple[Colour, ...] = ((20, 17, 16), (36, 28, 24), (52, 38, 28), (70, 50, 34))
LIGHT_HAIR: tuple[Colour, ...] = ((96, 66, 42), (150, 110, 66), (196, 160, 100), (142, 62, 32))
GREY_HAIR: tuple[Colour, ...] = ((128, 124, 120), (176, 174, 170), (212, 210, 204))
HAIR_STYLES = ("short", "long", "bald", "curly", "fringe")
IRIS_COLOURS: tuple[Colour, ...] = ((62, 40, 26), (96, 66, 40), (58, 92, 120), (74, 104, 70), (40, 30, 24))
GOWN_COLOURS: tuple[Colour, ...] = ((150, 186, 204), (160, 198, 176), (186, 196, 214))
CLOTHES_COLOURS: tuple[Colour, ...] = ((60, 70, 110), (120, 40, 48), (40, 90, 70), (90, 90, 96), (200, 170, 90))


@dataclass(frozen=True)
class FaceIdentity:
    """What stays the same across one patient's images. Lengths are fractions of the image size."""

    cohort: str
    face_height: float  # top of the skull to the chin
    face_aspect: float  # face width / face height
    jaw_taper: float  # 0 = round jaw, larger = pointed chin
    offset_x: float  # head position in frame
    offset_y: float
    tilt: float  # degrees, positive = clockwise
    skin: Colour
    hair_colour: Colour
    hair_style: str
    glasses: str | None  # "round", "square" or None
    glasses_colour: Colour
    eye_spacing: float  # eye centre distance from the midline, in face half-widths
    eye_size: float
    iris_colour: Colour
    brow_thickness: float
    nose_length: float
    mouth_width: float
    lip_colour: Colour
    clothes_colour: Colour
    background: Colour
    expressiveness: float  # gain on the felt pain: stoic < 1 < demonstrative
    resting_frown: float  # expression shown at NRS 0
    # How the patient spreads pain over the action units: brow, eyes, nose/upper lip, mouth.
    action_unit_weights: tuple[float, float, float, float]


@dataclass(frozen=True)
class Expression:
    """Action-unit intensities, each 0..1, of one drawn face."""

    brow_lowering: float  # AU4
    orbital_tightening: float  # AU6/7
    nose_wrinkle: float  # AU9/10
    eye_closure: float  # AU43
    mouth_opening: float  # AU25-27
    lip_stretch: float  # AU20

    @property
    def pspi(self) -> float:
        """PSPI-like sum on its own 0..16 scale: AU4 (0-5) + AU6/7 (0-5) + AU9/10 (0-5) + AU43 (0-1)."""
        return 5 * self.brow_lowering + 5 * self.orbital_tightening + 5 * self.nose_wrinkle + self.eye_closure


def expression_intensity(nrs: int) -> float:
    """How much pain a typical face shows at this NRS, 0..1. Mild pain barely shows."""
    if not 0 <= nrs <= 10:
        raise ValueError(f"NRS must be between 0 and 10, got {nrs}")
    return (nrs / 10) ** INTENSITY_EXPONENT


def nrs_for_intensity(intensity: float) -> float:
    """The inverse of expression_intensity: the (fractional) NRS a typical face this intense has."""
    return 10 * min(max(intensity, 0.0), 1.0) ** (1 / INTENSITY_EXPONENT)


def pick(rng: np.random.Generator, options: Sequence[T]) -> T:
    return options[int(rng.integers(len(options)))]


def jitter(rng: np.random.Generator, colour: Colour, spread: float) -> Colour:
    red, green, blue = (int(min(max(c + rng.normal(0, spread), 0), 255)) for c in colour)
    return red, green, blue


def make_identity(rng: np.random.Generator, cohort: str) -> FaceIdentity:
    """A random patient. Clinical patients show less of their pain than acting volunteers."""
    if cohort not in COHORTS:
        raise ValueError(f"unknown cohort {cohort!r}; valid cohorts: {', '.join(COHORTS)}")
    tone = int(rng.integers(len(SKIN_TONES)))
    skin = jitter(rng, SKIN_TONES[tone], 6)
    # Light hair mostly comes with light skin; grey hair with anyone.
    palette = DARK_HAIR + (LIGHT_HAIR if tone < 4 else ()) + GREY_HAIR[: 1 + (cohort == "clinical")]
    hair = jitter(rng, pick(rng, palette), 8)
    glasses = None if rng.random() < 0.7 else str(pick(rng, ("round", "square")))
    if cohort == "clinical":
        expressiveness = float(np.clip(rng.normal(0.8, 0.2), 0.35, 1.2))
        clothes = jitter(rng, pick(rng, GOWN_COLOURS), 10)
        background = jitter(rng, (196, 202, 206), 14)
    else:
        expressiveness = float(np.clip(rng.normal(1.05, 0.12), 0.75, 1.35))
        clothes = jitter(rng, pick(rng, CLOTHES_COLOURS), 14)
        background = jitter(rng, pick(rng, ((170, 180, 192), (196, 186, 168), (160, 172, 158), (120, 124, 130))), 14)
    brow, eyes, nose, mouth = (float(np.clip(w, 0.5, 1.5)) for w in rng.dirichlet((4.0, 4.0, 3.0, 3.0)) * 4)
    return FaceIdentity(
        cohort=cohort,
        face_height=float(rng.uniform(0.6, 0.7)),
        face_aspect=float(rng.uniform(0.7, 0.82)),
        jaw_taper=float(rng.uniform(0.1, 0.4)),
        offset_x=float(rng.uniform(-0.05, 0.05)),
        offset_y=float(rng.uniform(-0.03, 0.03)),
        tilt=float(rng.uniform(-7, 7)),
        skin=skin,
        hair_colour=hair,
        hair_style=str(pick(rng, HAIR_STYLES)),
        glasses=glasses,
        glasses_colour=jitter(rng, pick(rng, ((30, 30, 34), (90, 60, 40), (150, 150, 160))), 8),
        eye_spacing=float(rng.uniform(0.38, 0.46)),
        eye_size=float(rng.uniform(0.9, 1.12)),
        iris_colour=pick(rng, IRIS_COLOURS),
        brow_thickness=float(rng.uniform(0.8, 1.3)),
        nose_length=float(rng.uniform(0.9, 1.1)),
        mouth_width=float(rng.uniform(0.3, 0.38)),
        lip_colour=jitter(rng, (int(skin[0] * 0.78), int(skin[1] * 0.6), int(skin[2] * 0.62)), 6),
        clothes_colour=clothes,
        background=background,
        expressiveness=expressiveness,
        resting_frown=float(np.clip(rng.normal(0.04, 0.04), 0, 0.15)),
        action_unit_weights=(brow, eyes, nose, mouth),
    )


def sample_expression(identity: FaceIdentity, nrs: int, rng: np.random.Generator) -> Expression:
    """The action units one image of this patient shows at this NRS (with moment-to-moment jitter).

    Always draws the same number of random values whatever the NRS, so two calls with equal
    generators differ only in the expression.
    """
    felt = identity.expressiveness * expression_intensity(nrs) + identity.resting_frown
    shown = float(np.clip(felt + rng.normal(0, 0.06), 0, 1))
    brow_w, eye_w, nose_w, mouth_w = identity.action_unit_weights
    noise = rng.normal(0, 0.05, size=6)

    def unit(weight: float, index: int, threshold: float = 0.0) -> float:
        return float(np.clip(weight * max(shown - threshold, 0) / (1 - threshold) + noise[index], 0, 1))

    return Expression(
        brow_lowering=unit(brow_w, 0),
        orbital_tightening=unit(eye_w, 1),
        nose_wrinkle=unit(nose_w, 2, 0.15),
        eye_closure=unit(eye_w, 3, 0.65),
        mouth_opening=unit(mouth_w, 4, 0.25),
        lip_stretch=unit(mouth_w, 5, 0.1),
    )
