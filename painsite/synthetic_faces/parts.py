"""Drawing the parts of a synthetic face: outline, hair, eyes, brows, nose, mouth, glasses, body."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageDraw

from painsite.synthetic_faces.identity import (
    SKIN_TONES,
    Colour,
    Expression,
    FaceIdentity,
)


def scale(colour: Colour, factor: float) -> Colour:
    red, green, blue = (min(max(int(c * factor), 0), 255) for c in colour)
    return red, green, blue


def mix(a: Colour, b: Colour, t: float) -> Colour:
    red, green, blue = (int(round(x * (1 - t) + y * t)) for x, y in zip(a, b))
    return red, green, blue


def darkness(skin: Colour) -> float:
    """0 for the lightest skin tone, 1 for the darkest."""
    lightest, darkest = sum(SKIN_TONES[0]), sum(SKIN_TONES[-1])
    return min(max((lightest - sum(skin)) / (lightest - darkest), 0.0), 1.0)


def curve(x0: float, x1: float, y: Callable[[float], float], steps: int = 16) -> list[tuple[float, float]]:
    """Points (x, y(t)) for t from -1 to 1 along x from x0 to x1."""
    points = []
    for i in range(steps + 1):
        t = -1 + 2 * i / steps
        points.append((x0 + (x1 - x0) * (t + 1) / 2, y(t)))
    return points


@dataclass(frozen=True)
class Pose:
    cx: float
    cy: float
    a: float  # face half-width
    b: float  # face half-height (skull top to chin)


def face_outline(pose: Pose, jaw_taper: float) -> list[tuple[float, float]]:
    points = []
    for i in range(72):
        angle = 2 * math.pi * i / 72
        x, y = math.sin(angle), -math.cos(angle)
        if y > 0:  # narrow the lower half towards the chin
            x *= 1 - jaw_taper * y**2
        points.append((pose.cx + pose.a * x, pose.cy + pose.b * y))
    return points


def draw_hair_back(draw: ImageDraw.ImageDraw, pose: Pose, identity: FaceIdentity) -> None:
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


def draw_hair_front(draw: ImageDraw.ImageDraw, pose: Pose, identity: FaceIdentity) -> None:
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


def draw_eye(
    canvas: Image.Image,
    draw: ImageDraw.ImageDraw,
    pose: Pose,
    identity: FaceIdentity,
    expression: Expression,
    side: int,
    gaze: tuple[float, float],
) -> None:
    a, b = pose.a, pose.b
    ex = pose.cx + side * identity.eye_spacing * a
    ey = pose.cy + 0.02 * b
    half_w = 0.19 * a * identity.eye_size
    squeeze = 0.62 * expression.orbital_tightening + 0.4 * expression.eye_closure
    upper = 0.11 * a * identity.eye_size * max(1 - squeeze, 0.1)
    # Orbital tightening raises the lower lid: the eye narrows from below as well as from above.
    raised = 0.7 * expression.orbital_tightening + 0.3 * expression.eye_closure
    lower = 0.07 * a * identity.eye_size * max(1 - raised, 0.1)
    top = curve(ex - half_w, ex + half_w, lambda t: ey - upper * (1 - t * t) ** 0.8)
    bottom = curve(ex + half_w, ex - half_w, lambda t: ey + lower * (1 - t * t))
    almond = top + bottom
    skin = identity.skin

    # The lid crease: it follows the lid down as the eye tightens.
    crease_gap = 0.05 * a * (1 - 0.5 * expression.orbital_tightening)
    crease = curve(
        ex - half_w * 0.9, ex + half_w * 0.9, lambda t: ey - upper * (1 - t * t) ** 0.8 - crease_gap * (1 - 0.3 * t * t)
    )
    draw.line(crease, fill=scale(skin, 0.72), width=max(int(0.012 * a), 1))

    box = tuple(int(v) for v in (ex - half_w - 2, ey - upper - 2, ex + half_w + 3, ey + lower + 3))
    # The white of the eye sits in the socket's shade: never brighter than the skin allows.
    sclera = mix(skin, (236, 232, 226), 0.7 - 0.25 * darkness(skin))
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
    draw.line(bottom, fill=scale(skin, 0.62), width=max(int(0.012 * a), 1))
    # Raised cheeks push a fold under the lower lid, and crow's feet appear at the outer corner.
    fold = expression.orbital_tightening
    if fold > 0.15:
        draw.line(
            curve(ex - half_w * 0.8, ex + half_w * 0.9, lambda t: ey + lower + 0.05 * a * (1 - 0.5 * t * t)),
            fill=scale(skin, 1 - 0.3 * fold),
            width=max(int(0.014 * a * fold), 1),
        )
        corner_x = ex + side * half_w * 1.1
        for k in (-1, 0, 1):
            length = 0.1 * a * fold
            draw.line(
                (corner_x, ey + k * 0.03 * a, corner_x + side * length, ey + k * 0.06 * a),
                fill=scale(skin, 1 - 0.3 * fold),
                width=max(int(0.01 * a), 1),
            )


def draw_brow(draw: ImageDraw.ImageDraw, pose: Pose, identity: FaceIdentity, expression: Expression, side: int) -> None:
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
    colour = mix(identity.hair_colour, (20, 16, 14), 0.4)
    red, green, blue = (min(c, int(s * 0.55)) for c, s in zip(colour, identity.skin))
    colour = (red, green, blue)
    draw.polygon(upper + lower[::-1], fill=colour)


def draw_nose(draw: ImageDraw.ImageDraw, pose: Pose, identity: FaceIdentity, expression: Expression) -> None:
    a, b, cx = pose.a, pose.b, pose.cx
    wrinkle = expression.nose_wrinkle
    tip_y = pose.cy + (0.36 * identity.nose_length - 0.03 * wrinkle) * b
    wing = (0.17 + 0.03 * wrinkle) * a
    skin = identity.skin
    dark = scale(skin, 0.6)
    line = max(int(0.016 * a), 1)
    # Side of the bridge, and the wings around the nostrils.
    draw.line((cx - 0.08 * a, pose.cy + 0.06 * b, cx - 0.1 * a, tip_y - 0.08 * b), fill=scale(skin, 0.82), width=line)
    for side in (-1, 1):
        wx = cx + side * wing
        # Pillow's angles run clockwise from 3 o'clock: each wing curves round its outer side.
        start, end = (-60, 60) if side > 0 else (120, 240)
        draw.arc(
            (wx - 0.09 * a, tip_y - 0.09 * a, wx + 0.09 * a, tip_y + 0.08 * a),
            start=start,
            end=end,
            fill=scale(skin, 0.7),
            width=line,
        )
        nx = cx + side * 0.075 * a
        draw.ellipse((nx - 0.05 * a, tip_y + 0.005 * b, nx + 0.05 * a, tip_y + 0.045 * b), fill=dark)
    # Nose wrinkle (AU9): short creases across the bridge.
    for k in range(3):
        if wrinkle > 0.2 + 0.2 * k:
            y = pose.cy + (0.1 + 0.05 * k) * b
            draw.arc(
                (cx - 0.12 * a, y - 0.03 * b, cx + 0.12 * a, y + 0.03 * b),
                start=200,
                end=340,
                fill=scale(skin, 1 - 0.35 * wrinkle),
                width=line,
            )


Point = tuple[float, float]


def bezier(p0: Point, p1: Point, p2: Point, steps: int = 12) -> list[Point]:
    """A quadratic Bézier curve from p0 to p2, pulled towards p1."""
    points = []
    for i in range(steps + 1):
        t = i / steps
        weights = ((1 - t) ** 2, 2 * (1 - t) * t, t * t)
        points.append(
            (
                sum(w * p[0] for w, p in zip(weights, (p0, p1, p2))),
                sum(w * p[1] for w, p in zip(weights, (p0, p1, p2))),
            )
        )
    return points


def draw_mouth(draw: ImageDraw.ImageDraw, pose: Pose, identity: FaceIdentity, expression: Expression) -> None:
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
        draw.line(
            bezier(start, bend, end),
            fill=scale(skin, 0.86 - 0.2 * fold),
            width=max(int(0.012 * a * (0.6 + fold)), 1),
            joint="curve",
        )

    x0, x1 = cx - half_w, cx + half_w
    draw.polygon(curve(x0, x1, outer_top) + curve(x1, x0, lambda t: outer_bottom(-t)), fill=identity.lip_colour)
    if gap < 0.03 * b:
        draw.line(
            curve(x0, x1, lambda t: (inner_top(t) + inner_bottom(t)) / 2),
            fill=scale(identity.lip_colour, 0.5),
            width=max(int(0.014 * a), 1),
            joint="curve",
        )
        return
    inset = 0.03 * a
    draw.polygon(
        curve(x0 + inset, x1 - inset, inner_top) + curve(x1 - inset, x0 + inset, lambda t: inner_bottom(-t)),
        fill=(48, 16, 20),
    )
    teeth_x0, teeth_x1 = x0 + 0.09 * a, x1 - 0.09 * a
    upper_teeth = min(0.05 * b, gap * 0.6)
    draw.polygon(
        curve(teeth_x0, teeth_x1, inner_top)
        + curve(teeth_x1, teeth_x0, lambda t: min(inner_top(-t) + upper_teeth, inner_bottom(-t))),
        fill=(228, 222, 206),
    )
    if gap > 0.06 * b:
        lower_teeth = min(0.035 * b, gap * 0.35)
        draw.polygon(
            curve(teeth_x0 + 0.03 * a, teeth_x1 - 0.03 * a, inner_bottom)
            + curve(teeth_x1 - 0.03 * a, teeth_x0 + 0.03 * a, lambda t: inner_bottom(-t) - lower_teeth),
            fill=(212, 206, 190),
        )


def draw_glasses(draw: ImageDraw.ImageDraw, pose: Pose, identity: FaceIdentity) -> None:
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


def draw_body(draw: ImageDraw.ImageDraw, pose: Pose, identity: FaceIdentity) -> None:
    a, b, cx, cy = pose.a, pose.b, pose.cx, pose.cy
    neck = scale(identity.skin, 0.82)
    draw.rectangle((cx - 0.42 * a, cy + 0.4 * b, cx + 0.42 * a, cy + 2 * b), fill=neck)
    draw.ellipse((cx - 0.42 * a, cy + 0.75 * b, cx + 0.42 * a, cy + 1.1 * b), fill=scale(identity.skin, 0.62))
    draw.ellipse((cx - 2.1 * a, cy + 1.05 * b, cx + 2.1 * a, cy + 2.2 * b), fill=identity.clothes_colour)
    draw.polygon([(cx - 0.42 * a, cy + 1.04 * b), (cx, cy + 1.25 * b), (cx + 0.42 * a, cy + 1.04 * b)], fill=neck)
