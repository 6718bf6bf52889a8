"""Preprocessing presets: face crop with a margin, resize, ImageNet normalisation."""

from __future__ import annotations

import torch
from PIL import Image

from modeling.ml.transforms import IMAGENET_MEAN, IMAGENET_STD, EvalPreset, FinetunePreset, face_crop_box


def make_image(width: int = 100, height: int = 80, colour: tuple[int, int, int] = (128, 64, 32)) -> Image.Image:
    return Image.new("RGB", (width, height), colour)


def test_the_crop_is_the_face_box_grown_by_the_margin():
    assert face_crop_box((100, 80), (30, 20, 40, 40)) == (22, 12, 56, 56)


def test_the_crop_is_clipped_to_the_image():
    assert face_crop_box((100, 80), (0, 50, 40, 40)) == (0, 42, 48, 38)


def test_without_a_face_box_the_whole_image_is_used():
    assert face_crop_box((100, 80), None) == (0, 0, 100, 80)


def test_the_eval_preset_resizes_and_normalises_with_imagenet_statistics():
    tensor = EvalPreset(48)(make_image(), None)
    assert tensor.shape == (3, 48, 48)
    expected = [(value / 255 - mean) / std for value, mean, std in zip((128, 64, 32), IMAGENET_MEAN, IMAGENET_STD)]
    torch.testing.assert_close(tensor.mean(dim=(1, 2)), torch.tensor(expected), atol=1e-4, rtol=0)


def test_the_eval_preset_sees_only_the_face_region():
    image = make_image(colour=(0, 0, 0))
    image.paste((255, 255, 255), (40, 30, 60, 50))
    face = EvalPreset(32)(image, (40, 30, 20, 20))
    whole = EvalPreset(32)(image, None)
    assert face.mean() > whole.mean() + 1


def test_the_eval_preset_is_deterministic_and_its_version_names_the_size():
    image = make_image()
    assert torch.equal(EvalPreset(32)(image, None), EvalPreset(32)(image, None))
    assert EvalPreset(32).version != EvalPreset(64).version


def test_the_finetune_preset_augments_but_keeps_the_shape():
    image = make_image()
    image.paste((255, 255, 255), (0, 0, 30, 80))
    preset = FinetunePreset(32)
    torch.manual_seed(0)
    views = [preset(image, None) for _ in range(4)]
    assert all(view.shape == (3, 32, 32) for view in views)
    assert any(not torch.equal(views[0], view) for view in views[1:])
