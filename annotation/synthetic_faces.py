"""Synthetic, clearly-marked pain faces for the demo, the tests and the benchmarks.

No real person is shown: every face is drawn with Pillow from random parameters and carries a
visible "SYNTHETIC" mark. The expression follows the NRS the way pain faces do, through the action
units of the Prkachin-Solomon Pain Intensity score (PSPI): brow lowering (AU4), orbital tightening
and eye narrowing (AU6/7), nose wrinkle and upper-lip raise (AU9/10), eye closure (AU43), plus the
mouth opening and lip stretch (AU25-27, AU20) that often come with them. Each patient has an
identity (face shape, skin tone, hair, glasses, eye spacing, position in frame) and an
expressiveness: a stoic patient shows less of the same pain, so the face alone cannot give the NRS
exactly and a model has something to learn.

This module is pure (Pillow + NumPy): no Django import, so the ML core and its benchmarks use it too.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

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
    (246, 218, 196), (236, 196, 164), (224, 178, 140), (198, 150, 112),
    (170, 120, 84), (146, 98, 66), (122, 82, 56), (102, 68, 46),
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


def _pick(rng: np.random.Generator, options: Sequence[T]) -> T:
    return options[int(rng.integers(len(options)))]


def _jitter(rng: np.random.Generator, colour: Colour, spread: float) -> Colour:
    red, green, blue = (int(min(max(c + rng.normal(0, spread), 0), 255)) for c in colour)
    return red, green, blue


def make_identity(rng: np.random.Generator, cohort: str) -> FaceIdentity:
    """A random patient. Clinical patients show less of their pain than acting volunteers."""
    if cohort not in COHORTS:
        raise ValueError(f"unknown cohort {cohort!r}; valid cohorts: {', '.join(COHORTS)}")
    tone = int(rng.integers(len(SKIN_TONES)))
    skin = _jitter(rng, SKIN_TONES[tone], 6)
    # Light hair mostly comes with light skin; grey hair with anyone.
    palette = DARK_HAIR + (LIGHT_HAIR if tone < 4 else ()) + GREY_HAIR[: 1 + (cohort == "clinical")]
    hair = _jitter(rng, _pick(rng, palette), 8)
    glasses = None if rng.random() < 0.7 else str(_pick(rng, ("round", "square")))
    if cohort == "clinical":
        expressiveness = float(np.clip(rng.normal(0.8, 0.2), 0.35, 1.2))
        clothes = _jitter(rng, _pick(rng, GOWN_COLOURS), 10)
        background = _jitter(rng, (196, 202, 206), 14)
    else:
        expressiveness = float(np.clip(rng.normal(1.05, 0.12), 0.75, 1.35))
        clothes = _jitter(rng, _pick(rng, CLOTHES_COLOURS), 14)
        background = _jitter(rng, _pick(rng, ((170, 180, 192), (196, 186, 168), (160, 172, 158), (120, 124, 130))), 14)
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
        hair_style=str(_pick(rng, HAIR_STYLES)),
        glasses=glasses,
        glasses_colour=_jitter(rng, _pick(rng, ((30, 30, 34), (90, 60, 40), (150, 150, 160))), 8),
        eye_spacing=float(rng.uniform(0.38, 0.46)),
        eye_size=float(rng.uniform(0.9, 1.12)),
        iris_colour=_pick(rng, IRIS_COLOURS),
        brow_thickness=float(rng.uniform(0.8, 1.3)),
        nose_length=float(rng.uniform(0.9, 1.1)),
        mouth_width=float(rng.uniform(0.3, 0.38)),
        lip_colour=_jitter(rng, (int(skin[0] * 0.78), int(skin[1] * 0.6), int(skin[2] * 0.62)), 6),
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


def draw_face(identity: FaceIdentity, nrs: int, rng: np.random.Generator, size: int = 224) -> Image.Image:
    """One RGB image of this patient at this NRS, with per-image lighting, pose and noise."""
    return render_face(identity, sample_expression(identity, nrs, rng), rng, size=size)


# --- drawing ---------------------------------------------------------------------------------


def _scale(colour: Colour, factor: float) -> Colour:
    red, green, blue = (min(max(int(c * factor), 0), 255) for c in colour)
    return red, green, blue


def _mix(a: Colour, b: Colour, t: float) -> Colour:
    red, green, blue = (int(round(x * (1 - t) + y * t)) for x, y in zip(a, b))
    return red, green, blue


def _darkness(skin: Colour) -> float:
    """0 for the lightest skin tone, 1 for the darkest."""
    lightest, darkest = sum(SKIN_TONES[0]), sum(SKIN_TONES[-1])
    return min(max((lightest - sum(skin)) / (lightest - darkest), 0.0), 1.0)


def _curve(x0: float, x1: float, y: Callable[[float], float], steps: int = 16) -> list[tuple[float, float]]:
    """Points (x, y(t)) for t from -1 to 1 along x from x0 to x1."""
    points = []
    for i in range(steps + 1):
        t = -1 + 2 * i / steps
        points.append((x0 + (x1 - x0) * (t + 1) / 2, y(t)))
    return points


@dataclass(frozen=True)
class _Pose:
    cx: float
    cy: float
    a: float  # face half-width
    b: float  # face half-height (skull top to chin)


def _face_outline(pose: _Pose, jaw_taper: float) -> list[tuple[float, float]]:
    points = []
    for i in range(72):
        angle = 2 * math.pi * i / 72
        x, y = math.sin(angle), -math.cos(angle)
        if y > 0:  # narrow the lower half towards the chin
            x *= 1 - jaw_taper * y**2
        points.append((pose.cx + pose.a * x, pose.cy + pose.b * y))
    return points


def _draw_hair_back(draw: ImageDraw.ImageDraw, pose: _Pose, identity: FaceIdentity) -> None:
    a, b, cx, cy = pose.a, pose.b, pose.cx, pose.cy
    colour = identity.hair_colour
    if identity.hair_style == "long":
        draw.rounded_rectangle((cx - 1.18 * a, cy - 1.06 * b, cx + 1.18 * a, cy + 1.05 * b), radius=int(a), fill=colour)
    elif identity.hair_style == "curly":
        for i in range(14):
            angle = math.pi * (0.1 + 0.8 * i / 13)
            x, y = cx - 1.02 * a * math.cos(angle), cy - 0.98 * b * math.sin(angle) + 0.1 * b
            r = 0.26 * a
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    elif identity.hair_style != "bald":
        draw.ellipse((cx - 1.07 * a, cy - 1.06 * b, cx + 1.07 * a, cy + 0.5 * b), fill=colour)


def _draw_hair_front(draw: ImageDraw.ImageDraw, pose: _Pose, identity: FaceIdentity) -> None:
    a, b, cx, cy = pose.a, pose.b, pose.cx, pose.cy
    colour = identity.hair_colour
    if identity.hair_style == "bald":
        return
    hairline = {"short": 0.52, "long": 0.5, "curly": 0.5, "fringe": 0.46}[identity.hair_style]
    # The hair cap: the top of the head ellipse above the hairline, with a soft wave at its edge.
    cap = []
    for i in range(41):
        t = i / 40
        angle = math.pi * t
        cap.append((cx - 1.05 * a * math.cos(angle), cy - 1.04 * b * math.sin(angle) + 0.02 * b))
    edge_y = cy - hairline * b
    edge = []
    for i in range(21):
        t = 1 - i / 20
        x = cx - 1.0 * a + 2.0 * a * t
        wave = 0.04 * b * math.sin(t * math.pi * 5) if identity.hair_style in ("fringe", "curly") else 0
        middle = 1 - (2 * t - 1) ** 2
        dip = 0.05 * b * middle if identity.hair_style == "fringe" else -0.06 * b * middle
        edge.append((x, edge_y + dip + wave))
    draw.polygon([(cx - 1.0 * a, cy - 0.1 * b)] + cap + [(cx + 1.0 * a, cy - 0.1 * b)] + edge, fill=colour)


def _draw_eye(canvas: Image.Image, draw: ImageDraw.ImageDraw, pose: _Pose, identity: FaceIdentity,
              expression: Expression, side: int, gaze: tuple[float, float]) -> None:
    a, b = pose.a, pose.b
    ex = pose.cx + side * identity.eye_spacing * a
    ey = pose.cy + 0.02 * b
    half_w = 0.19 * a * identity.eye_size
    squeeze = 0.62 * expression.orbital_tightening + 0.4 * expression.eye_closure
    upper = 0.11 * a * identity.eye_size * max(1 - squeeze, 0.1)
    # Orbital tightening raises the lower lid: the eye narrows from below as well as from above.
    raised = 0.7 * expression.orbital_tightening + 0.3 * expression.eye_closure
    lower = 0.07 * a * identity.eye_size * max(1 - raised, 0.1)
    top = _curve(ex - half_w, ex + half_w, lambda t: ey - upper * (1 - t * t) ** 0.8)
    bottom = _curve(ex + half_w, ex - half_w, lambda t: ey + lower * (1 - t * t))
    almond = top + bottom
    skin = identity.skin

    # The lid crease: it follows the lid down as the eye tightens.
    crease_gap = 0.05 * a * (1 - 0.5 * expression.orbital_tightening)
    crease = _curve(ex - half_w * 0.9, ex + half_w * 0.9,
                    lambda t: ey - upper * (1 - t * t) ** 0.8 - crease_gap * (1 - 0.3 * t * t))
    draw.line(crease, fill=_scale(skin, 0.72), width=max(int(0.012 * a), 1))

    box = tuple(int(v) for v in (ex - half_w - 2, ey - upper - 2, ex + half_w + 3, ey + lower + 3))
    # The white of the eye sits in the socket's shade: never brighter than the skin allows.
    sclera = _mix(skin, (236, 232, 226), 0.7 - 0.25 * _darkness(skin))
    patch = Image.new("RGB", (box[2] - box[0], box[3] - box[1]), sclera)
    patch_draw = ImageDraw.Draw(patch)
    iris_r = 0.44 * half_w
    ix, iy = ex + gaze[0] * half_w * 0.2 - box[0], ey + gaze[1] * upper * 0.2 - 0.1 * upper - box[1]
    patch_draw.ellipse((ix - iris_r, iy - iris_r, ix + iris_r, iy + iris_r), fill=identity.iris_colour)
    pupil_r = 0.45 * iris_r
    patch_draw.ellipse((ix - pupil_r, iy - pupil_r, ix + pupil_r, iy + pupil_r), fill=(12, 10, 10))
    glint = 0.16 * iris_r
    gx, gy = ix + 0.3 * iris_r, iy - 0.35 * iris_r
    patch_draw.ellipse((gx - glint, gy - glint, gx + glint, gy + glint), fill=(250, 250, 250))
    mask = Image.new("L", patch.size, 0)
    ImageDraw.Draw(mask).polygon([(x - box[0], y - box[1]) for x, y in almond], fill=255)
    canvas.paste(patch, box[:2], mask)

    draw.line(top, fill=(28, 22, 20), width=max(int(0.035 * a * identity.eye_size), 2), joint="curve")
    draw.line(bottom, fill=_scale(skin, 0.62), width=max(int(0.012 * a), 1))
    # Raised cheeks push a fold under the lower lid, and crow's feet appear at the outer corner.
    fold = expression.orbital_tightening
    if fold > 0.15:
        draw.line(_curve(ex - half_w * 0.8, ex + half_w * 0.9, lambda t: ey + lower + 0.05 * a * (1 - 0.5 * t * t)),
                  fill=_scale(skin, 1 - 0.3 * fold), width=max(int(0.014 * a * fold), 1))
        corner_x = ex + side * half_w * 1.1
        for k in (-1, 0, 1):
            length = 0.1 * a * fold
            draw.line((corner_x, ey + k * 0.03 * a, corner_x + side * length, ey + k * 0.06 * a),
                      fill=_scale(skin, 1 - 0.3 * fold), width=max(int(0.01 * a), 1))


def _draw_brow(draw: ImageDraw.ImageDraw, pose: _Pose, identity: FaceIdentity, expression: Expression,
               side: int) -> None:
    a, b = pose.a, pose.b
    lowering = expression.brow_lowering
    inner_x = pose.cx + side * (0.14 - 0.05 * lowering) * a
    outer_x = pose.cx + side * (identity.eye_spacing + 0.3) * a
    base_y = pose.cy - 0.2 * b + 0.08 * b * lowering
    inner_drop = 0.07 * b * lowering  # the corrugator pulls the inner ends down and together
    thickness = 0.065 * a * identity.brow_thickness * (1 + 0.25 * lowering)

    def centre(t: float) -> float:  # t = 0 at the inner end, 1 at the outer end
        arch = 0.06 * b * math.sin(math.pi * min(t * 1.15, 1)) * (1 - 0.6 * lowering)
        return base_y + inner_drop * (1 - t) - arch + 0.02 * b * t

    upper, lower = [], []
    for i in range(13):
        t = i / 12
        x = inner_x + (outer_x - inner_x) * t
        half = thickness * (1 - 0.55 * t) / 2
        upper.append((x, centre(t) - half))
        lower.append((x, centre(t) + half))
    # Brows are darker than the hair and always darker than the skin around them.
    colour = _mix(identity.hair_colour, (20, 16, 14), 0.4)
    red, green, blue = (min(c, int(s * 0.55)) for c, s in zip(colour, identity.skin))
    colour = (red, green, blue)
    draw.polygon(upper + lower[::-1], fill=colour)


def _draw_nose(draw: ImageDraw.ImageDraw, pose: _Pose, identity: FaceIdentity, expression: Expression) -> None:
    a, b, cx = pose.a, pose.b, pose.cx
    wrinkle = expression.nose_wrinkle
    tip_y = pose.cy + (0.36 * identity.nose_length - 0.03 * wrinkle) * b
    wing = (0.17 + 0.03 * wrinkle) * a
    skin = identity.skin
    dark = _scale(skin, 0.6)
    line = max(int(0.016 * a), 1)
    # Side of the bridge, and the wings around the nostrils.
    draw.line((cx - 0.08 * a, pose.cy + 0.06 * b, cx - 0.1 * a, tip_y - 0.08 * b), fill=_scale(skin, 0.82), width=line)
    for side in (-1, 1):
        wx = cx + side * wing
        # Pillow's angles run clockwise from 3 o'clock: each wing curves round its outer side.
        start, end = (-60, 60) if side > 0 else (120, 240)
        draw.arc((wx - 0.09 * a, tip_y - 0.09 * a, wx + 0.09 * a, tip_y + 0.08 * a), start=start, end=end,
                 fill=_scale(skin, 0.7), width=line)
        nx = cx + side * 0.075 * a
        draw.ellipse((nx - 0.05 * a, tip_y + 0.005 * b, nx + 0.05 * a, tip_y + 0.045 * b), fill=dark)
    # Nose wrinkle (AU9): short creases across the bridge.
    for k in range(3):
        if wrinkle > 0.2 + 0.2 * k:
            y = pose.cy + (0.1 + 0.05 * k) * b
            draw.arc((cx - 0.12 * a, y - 0.03 * b, cx + 0.12 * a, y + 0.03 * b), start=200, end=340,
                     fill=_scale(skin, 1 - 0.35 * wrinkle), width=line)


Point = tuple[float, float]


def _bezier(p0: Point, p1: Point, p2: Point, steps: int = 12) -> list[Point]:
    """A quadratic Bézier curve from p0 to p2, pulled towards p1."""
    points = []
    for i in range(steps + 1):
        t = i / steps
        weights = ((1 - t) ** 2, 2 * (1 - t) * t, t * t)
        points.append((
            sum(w * p[0] for w, p in zip(weights, (p0, p1, p2))),
            sum(w * p[1] for w, p in zip(weights, (p0, p1, p2))),
        ))
    return points


def _draw_mouth(draw: ImageDraw.ImageDraw, pose: _Pose, identity: FaceIdentity, expression: Expression) -> None:
    """Closed and relaxed at rest; in pain stretched sideways, the upper lip raised off the teeth."""
    a, b, cx = pose.a, pose.b, pose.cx
    stretch, opening, lip_raise = expression.lip_stretch, expression.mouth_opening, expression.nose_wrinkle
    y = pose.cy + 0.62 * b
    half_w = identity.mouth_width * a * (1 + 0.35 * stretch)
    gap = 0.012 * b + 0.12 * b * opening + 0.045 * b * lip_raise
    corner_y = y + 0.015 * b * stretch
    squareness = 0.55 - 0.35 * stretch  # a stretched mouth opens as a wide box, not an "O"
    upper_lip = 0.045 * b * (1 - 0.45 * stretch)
    lower_lip = 0.06 * b * (1 - 0.4 * stretch)
    skin = identity.skin

    def inner_top(t: float) -> float:
        return corner_y + (y - gap * 0.55 - corner_y) * (1 - t * t) ** squareness

    def inner_bottom(t: float) -> float:
        return corner_y + (y + gap * 0.45 - corner_y) * (1 - t * t) ** squareness

    def outer_top(t: float) -> float:
        bow = 0.01 * b * math.exp(-((abs(t) - 0.22) ** 2) / 0.015)  # Cupid's bow
        return inner_top(t) - upper_lip * (1 - t * t) ** 0.5 - bow

    def outer_bottom(t: float) -> float:
        return inner_bottom(t) + lower_lip * (1 - t * t) ** 0.6

    # Nasolabial folds: from the nose wings round the mouth corners, deeper as the lip is raised.
    fold = max(lip_raise, stretch)
    for side in (-1, 1):
        start = (cx + side * 0.2 * a, pose.cy + 0.38 * b)
        bend = (cx + side * (half_w + 0.16 * a), y - 0.12 * b)
        end = (cx + side * (half_w + 0.06 * a), y + 0.1 * b)
        draw.line(_bezier(start, bend, end), fill=_scale(skin, 0.86 - 0.2 * fold),
                  width=max(int(0.012 * a * (0.6 + fold)), 1), joint="curve")

    x0, x1 = cx - half_w, cx + half_w
    draw.polygon(_curve(x0, x1, outer_top) + _curve(x1, x0, lambda t: outer_bottom(-t)), fill=identity.lip_colour)
    if gap < 0.03 * b:
        draw.line(_curve(x0, x1, lambda t: (inner_top(t) + inner_bottom(t)) / 2), fill=_scale(identity.lip_colour, 0.5),
                  width=max(int(0.014 * a), 1), joint="curve")
        return
    inset = 0.03 * a
    draw.polygon(_curve(x0 + inset, x1 - inset, inner_top) + _curve(x1 - inset, x0 + inset, lambda t: inner_bottom(-t)),
                 fill=(48, 16, 20))
    teeth_x0, teeth_x1 = x0 + 0.09 * a, x1 - 0.09 * a
    upper_teeth = min(0.05 * b, gap * 0.6)
    draw.polygon(
        _curve(teeth_x0, teeth_x1, inner_top)
        + _curve(teeth_x1, teeth_x0, lambda t: min(inner_top(-t) + upper_teeth, inner_bottom(-t))),
        fill=(228, 222, 206),
    )
    if gap > 0.06 * b:
        lower_teeth = min(0.035 * b, gap * 0.35)
        draw.polygon(
            _curve(teeth_x0 + 0.03 * a, teeth_x1 - 0.03 * a, inner_bottom)
            + _curve(teeth_x1 - 0.03 * a, teeth_x0 + 0.03 * a, lambda t: inner_bottom(-t) - lower_teeth),
            fill=(212, 206, 190),
        )


def _draw_glasses(draw: ImageDraw.ImageDraw, pose: _Pose, identity: FaceIdentity) -> None:
    a, b = pose.a, pose.b
    ey = pose.cy + 0.02 * b
    rx, ry = 0.27 * a, 0.16 * b
    width = max(int(0.03 * a), 2)
    for side in (-1, 1):
        ex = pose.cx + side * identity.eye_spacing * a
        box = (ex - rx, ey - ry, ex + rx, ey + ry)
        if identity.glasses == "round":
            draw.ellipse(box, outline=identity.glasses_colour, width=width)
        else:
            draw.rounded_rectangle(box, radius=int(0.3 * ry), outline=identity.glasses_colour, width=width)
        arm = (ex + side * rx, ey - 0.3 * ry, pose.cx + side * 1.0 * a, ey - 0.45 * ry)
        draw.line(arm, fill=identity.glasses_colour, width=width)
    inner = identity.eye_spacing * a - rx
    bridge = (pose.cx - inner, ey - ry, pose.cx + inner, ey)
    draw.arc(bridge, start=180, end=360, fill=identity.glasses_colour, width=width)


SHADE_UNIT = 160  # shade value meaning "unchanged": darker below, highlights above


def _shading(size: int, pose: _Pose, identity: FaceIdentity, expression: Expression) -> np.ndarray:
    """A soft multiplicative light map: a rounded face, lit cheeks and forehead, shadowed sockets.

    Real faces are found by their light pattern (eye band darker than cheeks and the nose bridge),
    so the drawing needs it too, whatever the skin tone.
    """
    low = 4  # drawn at a quarter of the canvas and blurred: soft shadows for almost nothing
    small = size // low
    ys, xs = np.mgrid[0:small, 0:small].astype(np.float32)
    radius = np.sqrt(((xs * low - pose.cx) / pose.a) ** 2 + ((ys * low - pose.cy) / pose.b) ** 2)
    shade = np.where(radius < 1.02, 1 - 0.35 * np.clip(radius, 0, 1) ** 3, 1.0)
    layer = Image.fromarray((shade * SHADE_UNIT).astype(np.uint8), "L")
    draw = ImageDraw.Draw(layer)

    def ellipse(x: float, y: float, w: float, h: float, value: float) -> None:
        draw.ellipse(((x - w) / low, (y - h) / low, (x + w) / low, (y + h) / low), fill=int(value * SHADE_UNIT))

    a, b, cx, cy = pose.a, pose.b, pose.cx, pose.cy
    # Darker skin shows its sheen more in photographs: stronger highlights, deeper sockets.
    sheen = 0.08 + 0.14 * _darkness(identity.skin)
    ellipse(cx, cy - 0.42 * b, 0.5 * a, 0.14 * b, 1 + sheen)  # forehead
    for side in (-1, 1):
        ellipse(cx + side * 0.45 * a, cy + 0.3 * b, 0.26 * a, 0.14 * b, 1 + sheen)  # cheeks
    ellipse(cx, cy + 0.12 * b, 0.09 * a, 0.2 * b, 1.1 + sheen)  # nose bridge
    socket = 0.72 - 0.1 * _darkness(identity.skin) - 0.1 * expression.brow_lowering
    for side in (-1, 1):
        ex = cx + side * identity.eye_spacing * a
        ellipse(ex, cy - 0.02 * b, 0.25 * a, 0.12 * b, socket)
        ellipse(cx + side * 0.12 * a, cy + 0.22 * b, 0.04 * a, 0.13 * b, 0.86)  # sides of the nose
    ellipse(cx, cy + 0.45 * b, 0.15 * a, 0.035 * b, 0.72)  # under the nose
    ellipse(cx, cy + 0.8 * b, 0.2 * a, 0.04 * b, 0.8)  # under the lower lip
    layer = layer.filter(ImageFilter.GaussianBlur(2.5))
    layer = layer.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(layer, dtype=np.float32)[:, :, None] / SHADE_UNIT


def _background(size: int, identity: FaceIdentity, rng: np.random.Generator) -> Image.Image:
    base = np.array(_jitter(rng, identity.background, 6), dtype=np.float32)
    # A smooth gradient needs no more than a few pixels, enlarged.
    ys = np.linspace(-1, 1, 8, dtype=np.float32)[:, None, None]
    xs = np.linspace(-1, 1, 8, dtype=np.float32)[None, :, None]
    tilt = rng.normal(0, 0.08, size=2)
    pixels = base * (1 + tilt[0] * xs + tilt[1] * ys)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    image = image.resize((size, size), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    # Out-of-focus clutter: a bed rail, a monitor, a door frame.
    for _ in range(int(rng.integers(1, 4))):
        x, y = rng.uniform(0, size, size=2)
        w, h = rng.uniform(0.05, 0.3, size=2) * size
        draw.rectangle((x, y, x + w, y + h), fill=_jitter(rng, (int(base[0]), int(base[1]), int(base[2])), 24))
    if identity.cohort == "clinical":  # the pillow behind a patient lying in bed
        draw.ellipse((-0.1 * size, 0.05 * size, 1.1 * size, 0.95 * size), fill=_jitter(rng, (224, 224, 220), 8))
    return image


def _draw_body(draw: ImageDraw.ImageDraw, pose: _Pose, identity: FaceIdentity) -> None:
    a, b, cx, cy = pose.a, pose.b, pose.cx, pose.cy
    neck = _scale(identity.skin, 0.82)
    draw.rectangle((cx - 0.42 * a, cy + 0.4 * b, cx + 0.42 * a, cy + 2 * b), fill=neck)
    draw.ellipse((cx - 0.42 * a, cy + 0.75 * b, cx + 0.42 * a, cy + 1.1 * b), fill=_scale(identity.skin, 0.62))
    draw.ellipse((cx - 2.1 * a, cy + 1.05 * b, cx + 2.1 * a, cy + 2.2 * b), fill=identity.clothes_colour)
    draw.polygon([(cx - 0.42 * a, cy + 1.04 * b), (cx, cy + 1.25 * b), (cx + 0.42 * a, cy + 1.04 * b)], fill=neck)


def render_face(identity: FaceIdentity, expression: Expression, rng: np.random.Generator,
                size: int = 224) -> Image.Image:
    """Draw the face with the given expression; `rng` supplies the per-image pose, light and noise."""
    canvas_size = size * SUPERSAMPLE
    shift = rng.normal(0, 0.012, size=2)
    zoom = float(np.clip(rng.normal(1, 0.03), 0.92, 1.08))
    tilt = identity.tilt + float(rng.normal(0, 2.5))
    gaze = (float(rng.normal(0, 1)), float(rng.normal(0, 0.6)))
    light = rng.normal(0, 1, size=6)
    noise_seed = int(rng.integers(2**31))

    b = identity.face_height * zoom * canvas_size / 2
    pose = _Pose(
        cx=canvas_size * (0.5 + identity.offset_x + shift[0]),
        cy=canvas_size * (0.5 + identity.offset_y + shift[1]) + 0.04 * canvas_size,
        a=b * identity.face_aspect,
        b=b,
    )
    head = Image.new("RGBA", (canvas_size, canvas_size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(head)
    a, cx, cy = pose.a, pose.cx, pose.cy
    _draw_hair_back(draw, pose, identity)
    for side in (-1, 1):
        ear_x = cx + side * 0.97 * a
        ear = (ear_x - 0.14 * a, cy - 0.08 * b, ear_x + 0.14 * a, cy + 0.34 * b)
        draw.ellipse(ear, fill=_scale(identity.skin, 0.9))
    draw.polygon(_face_outline(pose, identity.jaw_taper), fill=identity.skin)

    _draw_hair_front(draw, pose, identity)
    for side in (-1, 1):
        _draw_eye(head, draw, pose, identity, expression, side, gaze)
        _draw_brow(draw, pose, identity, expression, side)
    if expression.brow_lowering > 0.35:  # vertical furrows between lowered brows
        depth = expression.brow_lowering
        for side in (-1, 1):
            x = cx + side * 0.05 * a
            draw.line((x, cy - 0.2 * b + 0.07 * b * depth, x - side * 0.01 * a, cy - 0.05 * b),
                      fill=_scale(identity.skin, 1 - 0.3 * depth), width=max(int(0.015 * a), 1))
    _draw_nose(draw, pose, identity, expression)
    _draw_mouth(draw, pose, identity, expression)
    if identity.glasses:
        _draw_glasses(draw, pose, identity)

    # Only the head tilts (on its neck), so only the head's box is shaded and rotated: the
    # rotation is the costliest step of the drawing.
    left, top = max(int(cx - 1.3 * a), 0), max(int(cy - 1.15 * b), 0)
    right, bottom = min(int(cx + 1.3 * a) + 1, canvas_size), min(int(cy + 1.15 * b) + 1, canvas_size)
    pixels = np.asarray(head.crop((left, top, right, bottom)), dtype=np.float32)
    pixels[:, :, :3] *= _shading(canvas_size, pose, identity, expression)[top:bottom, left:right]
    head = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGBA")
    head = head.rotate(-tilt, resample=Image.Resampling.BILINEAR, center=(cx - left, cy - top))

    image = _background(canvas_size, identity, rng)
    _draw_body(ImageDraw.Draw(image), pose, identity)
    image.paste(head, (left, top), head)
    image = image.reduce(SUPERSAMPLE)
    face = tuple(int(v / SUPERSAMPLE) for v in (cx - 0.6 * a, cy - 0.4 * b, cx + 0.6 * a, cy + 0.7 * b))
    return _finish(image, face, light, noise_seed)


def _finish(image: Image.Image, face: tuple[int, int, int, int], light: np.ndarray, noise_seed: int) -> Image.Image:
    """Camera exposure, per-image lighting (brightness, direction, colour), sensor noise, the mark."""
    size = image.size[0]
    pixels = np.asarray(image, dtype=np.float32)
    # Cameras expose for the face: a dark face in a bright room is brightened, as a phone would.
    left, top, right, bottom = (min(max(v, 0), size) for v in face)
    face_level = float(pixels[top:bottom, left:right].mean()) if right > left and bottom > top else 128.0
    pixels *= float(np.clip((EXPOSURE_TARGET / max(face_level, 1.0)) ** 0.7, 0.9, 1.8))
    ys = np.linspace(-1, 1, size, dtype=np.float32)[:, None, None]
    xs = np.linspace(-1, 1, size, dtype=np.float32)[None, :, None]
    gain = 1 + 0.08 * light[0]
    direction = math.atan2(light[1], light[2])
    strength = 0.12 * abs(light[3])
    warmth = 0.02 * light[4]
    lighting = gain * (1 + strength * (math.cos(direction) * xs + math.sin(direction) * ys))
    pixels = pixels * lighting * np.array([1 + warmth, 1, 1 - warmth], dtype=np.float32)
    noise_rng = np.random.default_rng(noise_seed)
    sigma = 2 + 2 * abs(light[5])
    pixels += noise_rng.standard_normal(size=pixels.shape, dtype=np.float32) * np.float32(sigma)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    _mark(image)
    return image


def _mark(image: Image.Image) -> None:
    width, height = image.size
    font_size = max(9, width // 22)
    font = ImageFont.load_default(font_size)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), MARK, font=font)
    pad = max(2, font_size // 4)
    box = (0, height - (bottom - top) - 2 * pad, right - left + 2 * pad, height)
    draw.rectangle(box, fill=(180, 20, 40))
    draw.text((pad - left, box[1] + pad - top), MARK, font=font, fill=(255, 255, 255))


# --- data sets -----------------------------------------------------------------------------------


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


def plan_patients(n_patients: int, images_per_patient: int, seed: int,
                  cohorts: tuple[str, ...] = COHORTS) -> list[PlannedPatient]:
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
            patients.append(PlannedPatient(
                code=f"{cohort[0].upper()}-{number:04d}",
                cohort=cohort,
                identity=identity,
                nrs=nrs,
                seed=seed,
                cohort_index=cohort_index,
                number=number,
            ))
    return patients


def encode_jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def write_dataset(out_dir: str | Path, n_patients: int, images_per_patient: int, seed: int, size: int = 224,
                  cohorts: tuple[str, ...] = COHORTS) -> Path:
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
