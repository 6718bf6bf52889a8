"""One synthetic face image: the parts drawn, shaded, tilted, lit and marked as synthetic."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from painsite.synthetic_faces.identity import (
    EXPOSURE_TARGET,
    MARK,
    SUPERSAMPLE,
    Expression,
    FaceIdentity,
    jitter,
    sample_expression,
)
from painsite.synthetic_faces.parts import (
    Pose,
    darkness,
    draw_body,
    draw_brow,
    draw_eye,
    draw_glasses,
    draw_hair_back,
    draw_hair_front,
    draw_mouth,
    draw_nose,
    face_outline,
    scale,
)


def draw_face(identity: FaceIdentity, nrs: int, rng: np.random.Generator, size: int = 224) -> Image.Image:
    """One RGB image of this patient at this NRS, with per-image lighting, pose and noise."""
    return render_face(identity, sample_expression(identity, nrs, rng), rng, size=size)


SHADE_UNIT = 160  # shade value meaning "unchanged": darker below, highlights above


def _shading(size: int, pose: Pose, identity: FaceIdentity, expression: Expression) -> np.ndarray:
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
    sheen = 0.08 + 0.14 * darkness(identity.skin)
    ellipse(cx, cy - 0.42 * b, 0.5 * a, 0.14 * b, 1 + sheen)  # forehead
    for side in (-1, 1):
        ellipse(cx + side * 0.45 * a, cy + 0.3 * b, 0.26 * a, 0.14 * b, 1 + sheen)  # cheeks
    ellipse(cx, cy + 0.12 * b, 0.09 * a, 0.2 * b, 1.1 + sheen)  # nose bridge
    socket = 0.72 - 0.1 * darkness(identity.skin) - 0.1 * expression.brow_lowering
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
    base = np.array(jitter(rng, identity.background, 6), dtype=np.float32)
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
        draw.rectangle((x, y, x + w, y + h), fill=jitter(rng, (int(base[0]), int(base[1]), int(base[2])), 24))
    if identity.cohort == "clinical":  # the pillow behind a patient lying in bed
        draw.ellipse((-0.1 * size, 0.05 * size, 1.1 * size, 0.95 * size), fill=jitter(rng, (224, 224, 220), 8))
    return image


def render_face(
    identity: FaceIdentity, expression: Expression, rng: np.random.Generator, size: int = 224
) -> Image.Image:
    """Draw the face with the given expression; `rng` supplies the per-image pose, light and noise."""
    canvas_size = size * SUPERSAMPLE
    shift = rng.normal(0, 0.012, size=2)
    zoom = float(np.clip(rng.normal(1, 0.03), 0.92, 1.08))
    tilt = identity.tilt + float(rng.normal(0, 2.5))
    gaze = (float(rng.normal(0, 1)), float(rng.normal(0, 0.6)))
    light = rng.normal(0, 1, size=6)
    noise_seed = int(rng.integers(2**31))

    b = identity.face_height * zoom * canvas_size / 2
    pose = Pose(
        cx=canvas_size * (0.5 + identity.offset_x + shift[0]),
        cy=canvas_size * (0.5 + identity.offset_y + shift[1]) + 0.04 * canvas_size,
        a=b * identity.face_aspect,
        b=b,
    )
    head = Image.new("RGBA", (canvas_size, canvas_size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(head)
    a, cx, cy = pose.a, pose.cx, pose.cy
    draw_hair_back(draw, pose, identity)
    for side in (-1, 1):
        ear_x = cx + side * 0.97 * a
        ear = (ear_x - 0.14 * a, cy - 0.08 * b, ear_x + 0.14 * a, cy + 0.34 * b)
        draw.ellipse(ear, fill=scale(identity.skin, 0.9))
    draw.polygon(face_outline(pose, identity.jaw_taper), fill=identity.skin)

    draw_hair_front(draw, pose, identity)
    for side in (-1, 1):
        draw_eye(head, draw, pose, identity, expression, side, gaze)
        draw_brow(draw, pose, identity, expression, side)
    if expression.brow_lowering > 0.35:  # vertical furrows between lowered brows
        depth = expression.brow_lowering
        for side in (-1, 1):
            x = cx + side * 0.05 * a
            draw.line(
                (x, cy - 0.2 * b + 0.07 * b * depth, x - side * 0.01 * a, cy - 0.05 * b),
                fill=scale(identity.skin, 1 - 0.3 * depth),
                width=max(int(0.015 * a), 1),
            )
    draw_nose(draw, pose, identity, expression)
    draw_mouth(draw, pose, identity, expression)
    if identity.glasses:
        draw_glasses(draw, pose, identity)

    # Only the head tilts (on its neck), so only the head's box is shaded and rotated: the
    # rotation is the costliest step of the drawing.
    left, top = max(int(cx - 1.3 * a), 0), max(int(cy - 1.15 * b), 0)
    right, bottom = min(int(cx + 1.3 * a) + 1, canvas_size), min(int(cy + 1.15 * b) + 1, canvas_size)
    pixels = np.asarray(head.crop((left, top, right, bottom)), dtype=np.float32)
    pixels[:, :, :3] *= _shading(canvas_size, pose, identity, expression)[top:bottom, left:right]
    head = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGBA")
    head = head.rotate(-tilt, resample=Image.Resampling.BILINEAR, center=(cx - left, cy - top))

    image = _background(canvas_size, identity, rng)
    draw_body(ImageDraw.Draw(image), pose, identity)
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
