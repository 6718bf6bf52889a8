"""Grad-CAM on a small VGG-shaped network whose evidence is known: brightness in channel 0."""

from __future__ import annotations

import base64
import io
import threading

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from modeling.ml.gradcam import (
    grad_cam,
    last_conv_index,
    overlay_base64,
    place_on_image,
    render_overlay,
)


def make_brightness_network() -> tuple[nn.Sequential, nn.Module]:
    """Two conv blocks that pass brightness through, and a head where class 1 means 'bright'."""
    features = nn.Sequential(
        nn.Conv2d(3, 2, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(2, 2, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )
    with torch.no_grad():
        for conv in (features[0], features[3]):
            conv.weight.zero_()
            conv.bias.zero_()
        features[0].weight[0, :, 1, 1] = 1 / 3
        features[3].weight[0, 0, 1, 1] = 1.0
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))
    with torch.no_grad():
        head[2].weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
        head[2].bias.zero_()
    return features, head


def make_batch_with_bright_square(size: int = 32, *, top: int, left: int, side: int = 8) -> torch.Tensor:
    batch = torch.zeros(1, 3, size, size)
    batch[:, :, top : top + side, left : left + side] = 1.0
    return batch


def test_it_explains_with_the_activation_of_the_last_convolution():
    features, _ = make_brightness_network()
    assert last_conv_index(features) == 3


def test_it_finds_the_bright_square_that_drives_the_class():
    features, head = make_brightness_network()
    cam, target = grad_cam(features, head, make_batch_with_bright_square(top=0, left=16))
    assert target == 1
    assert cam.shape == (16, 16)
    assert cam.max() == pytest.approx(1.0)
    peak_row, peak_col = np.unravel_index(cam.argmax(), cam.shape)
    assert peak_row < 4 and 8 <= peak_col < 12
    assert cam[12:, :].max() == 0.0


def test_it_maps_the_crop_back_onto_an_image_with_its_aspect_ratio():
    cam = np.zeros((4, 4), dtype=np.float32)
    cam[0, 0] = 1.0
    heatmap = place_on_image(cam, crop_box=(320, 120, 200, 200), image_size=(640, 480))
    assert heatmap.shape == (384, 512)
    assert heatmap.shape[1] / heatmap.shape[0] == pytest.approx(640 / 480, rel=0.01)
    rows, cols = np.nonzero(heatmap)
    scale = 512 / 640
    assert rows.min() >= round(120 * scale) and rows.max() < round(320 * scale)
    assert cols.min() >= round(320 * scale) and cols.max() < round(520 * scale)
    peak_row, peak_col = np.unravel_index(heatmap.argmax(), heatmap.shape)
    assert peak_row < round(170 * scale) and peak_col < round(370 * scale)


def test_it_keeps_small_images_at_their_own_size():
    heatmap = place_on_image(np.ones((2, 2), np.float32), crop_box=(0, 0, 30, 40), image_size=(30, 40))
    assert heatmap.shape == (40, 30)
    assert heatmap.min() == pytest.approx(1.0)


def test_it_does_not_write_gradients_on_the_shared_network():
    features, head = make_brightness_network()
    grad_cam(features, head, make_batch_with_bright_square(top=8, left=8))
    assert all(parameter.grad is None for parameter in [*features.parameters(), *head.parameters()])


def test_it_explains_the_same_way_from_several_threads():
    features, head = make_brightness_network()
    batches = [make_batch_with_bright_square(top=4 * i, left=4 * i) for i in range(4)]
    expected = [grad_cam(features, head, batch)[0] for batch in batches]
    results: dict[int, np.ndarray] = {}

    def explain(index: int) -> None:
        for _ in range(5):
            results[index] = grad_cam(features, head, batches[index])[0]

    threads = [threading.Thread(target=explain, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, cam in enumerate(expected):
        np.testing.assert_allclose(results[index], cam)


def test_it_works_inside_inference_mode():
    features, head = make_brightness_network()
    with torch.inference_mode():
        batch = make_batch_with_bright_square(top=0, left=0)
        cam, _ = grad_cam(features, head, batch)
    assert cam.max() == pytest.approx(1.0)


def test_the_overlay_is_a_png_of_the_heatmap_size_that_colours_only_the_hot_region():
    image = Image.new("RGB", (640, 480), (128, 128, 128))
    heatmap = np.zeros((384, 512), dtype=np.float32)
    heatmap[:100, :100] = 1.0
    overlay = Image.open(io.BytesIO(render_overlay(image, heatmap)))
    assert overlay.format == "PNG"
    assert overlay.size == (512, 384)
    pixels = np.asarray(overlay)
    assert tuple(pixels[300, 400]) == (128, 128, 128)
    assert tuple(pixels[50, 50]) != (128, 128, 128)
    decoded = Image.open(io.BytesIO(base64.b64decode(overlay_base64(image, heatmap))))
    assert decoded.size == (512, 384)


# A colour difference a clinician sees at a glance (out of 255 in the most changed channel).
VISIBLE = 40


def blob_heatmap(
    shape: tuple[int, int], *, crop: tuple[int, int, int, int], centre: tuple[int, int], sigma: float
) -> np.ndarray:
    """Grad-CAM as it looks on a face: a peak, faint heat over the rest of the crop, none outside."""
    height, width = shape
    rows, cols = np.mgrid[0:height, 0:width]
    heat = np.exp(-((rows - centre[1]) ** 2 + (cols - centre[0]) ** 2) / (2 * sigma**2)) + 0.05
    x, y, w, h = crop
    inside = np.zeros(shape, dtype=bool)
    inside[y : y + h, x : x + w] = True
    heat = np.where(inside, heat, 0.0)
    return (heat / heat.max()).astype(np.float32)


def region_holding(heatmap: np.ndarray, share: float) -> np.ndarray:
    """The pixels above the highest threshold whose region still holds `share` of the mass (bisection)."""
    low, high = 0.0, float(heatmap.max())
    total = float(heatmap.sum())
    for _ in range(40):
        middle = (low + high) / 2
        if heatmap[heatmap >= middle].sum() >= share * total:
            low = middle
        else:
            high = middle
    return heatmap >= low


def visible_change(image: Image.Image, heatmap: np.ndarray) -> np.ndarray:
    overlay = np.asarray(Image.open(io.BytesIO(render_overlay(image, heatmap))).convert("RGB"), dtype=int)
    base = np.asarray(image.convert("RGB").resize(heatmap.shape[::-1], Image.Resampling.BILINEAR), dtype=int)
    return np.abs(overlay - base).max(axis=2) >= VISIBLE


def photos_with_heat() -> dict[str, tuple[Image.Image, np.ndarray]]:
    from painsite.synthetic_faces import draw_face, make_identity
    from tests.ml.real_photos import ASTRONAUT_FACE, astronaut

    x, y, w, h = ASTRONAUT_FACE
    synthetic = draw_face(make_identity(np.random.default_rng(3), "clinical"), 8, np.random.default_rng(3), size=224)
    return {
        "astronaut": (
            astronaut(),
            blob_heatmap((512, 512), crop=ASTRONAUT_FACE, centre=(x + w // 2, y + h // 3), sigma=18),
        ),
        "synthetic face": (synthetic, blob_heatmap((224, 224), crop=(40, 40, 150, 150), centre=(115, 150), sigma=20)),
    }


@pytest.mark.parametrize("name", ["astronaut", "synthetic face"])
def test_the_overlay_visibly_colours_the_region_holding_most_of_the_heat_and_little_else(name):
    image, heatmap = photos_with_heat()[name]
    visible = visible_change(image, heatmap)
    hot = region_holding(heatmap, 0.8)
    assert visible[hot].mean() >= 0.9, f"only {visible[hot].mean():.0%} of the hot region is visibly coloured"
    # The outline may stray a few pixels over the region's edge; nothing else changes visibly.
    near_hot = cv2.dilate(hot.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    assert (visible & ~near_hot).sum() <= 0.02 * visible.sum()
    assert heatmap[visible].sum() >= 0.7 * heatmap.sum()


def test_an_empty_heatmap_leaves_the_photo_as_it_was():
    image = Image.new("RGB", (64, 48), (120, 90, 70))
    overlay = Image.open(io.BytesIO(render_overlay(image, np.zeros((48, 64), dtype=np.float32))))
    assert np.array_equal(np.asarray(overlay), np.asarray(image))
