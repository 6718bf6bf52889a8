"""The feature cache: identical to fresh features within float16, incremental, self-healing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modeling.ml.backbone import load_backbone
from modeling.ml.data import UnreadableImage, load_image
from modeling.ml.device import choose_device
from modeling.ml.features import FeatureCache, extract_features, inference_extractor
from modeling.ml.network import FrozenFeatures
from modeling.ml.transforms import EvalPreset

from .conftest import IMAGE_SIZE


def make_extraction(records, cache_dir, **options):
    vgg, identity = load_backbone(init_seed=0, allow_download=False)
    choice = choose_device("cpu")
    preset = EvalPreset(IMAGE_SIZE)
    cache = (
        FeatureCache(
            cache_dir, backbone_sha256=identity.sha256, preprocessing=preset.version, precision=choice.precision
        )
        if cache_dir
        else None
    )
    features = extract_features(
        records,
        extractor=lambda: inference_extractor(FrozenFeatures(vgg), identity, choice),
        choice=choice,
        preset=preset,
        cache=cache,
        **options,
    )
    return features, cache, (vgg, identity, choice, preset)


def test_cached_features_equal_uncached_ones_within_float16_rounding(synthetic_data, tmp_path):
    records = synthetic_data.records[:6]
    cold, cache, (vgg, identity, choice, preset) = make_extraction(records, tmp_path)
    warm, _, _ = make_extraction(records, tmp_path)
    assert (cold.misses, warm.hits, warm.misses) == (6, 6, 0)
    np.testing.assert_array_equal(warm.vectors, cold.vectors)
    extractor = inference_extractor(FrozenFeatures(vgg), identity, choice)
    images = torch.stack([preset(load_image(r.path), r.face_box) for r in records]).to(choice.dtype)
    if choice.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        fresh = extractor(images).float().numpy()
    np.testing.assert_allclose(warm.vectors, fresh, rtol=2**-10, atol=1e-6)
    assert cache.path_for(records[0].sha256).read_bytes()[:6] == b"\x93NUMPY"


def test_only_new_images_are_computed(synthetic_data, tmp_path):
    make_extraction(synthetic_data.records[:4], tmp_path)
    grown, _, _ = make_extraction(synthetic_data.records[:7], tmp_path)
    assert (grown.hits, grown.misses) == (4, 3)
    assert grown.vectors.shape == (7, 4096)


def test_no_temporary_files_are_left_behind(synthetic_data, tmp_path):
    make_extraction(synthetic_data.records[:3], tmp_path)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".tmp")]
    assert len(list(tmp_path.rglob("*.npy"))) == 3


def test_a_damaged_cache_entry_is_recomputed(synthetic_data, tmp_path):
    records = synthetic_data.records[:2]
    first, cache, _ = make_extraction(records, tmp_path)
    cache.path_for(records[0].sha256).write_bytes(b"garbage")
    again, _, _ = make_extraction(records, tmp_path)
    assert (again.hits, again.misses) == (1, 1)
    # Recomputed alone rather than in a batch of two: bf16 kernels may round differently.
    np.testing.assert_allclose(again.vectors, first.vectors, rtol=2**-6, atol=1e-3)


def test_an_unreadable_image_fails_naming_it_or_is_skipped_and_counted(synthetic_data, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    records = [
        *synthetic_data.records[:2],
        synthetic_data.records[2].__class__(
            path=str(broken), sha256="ab" * 32, face_box=None, nrs=3, level=1, patient="X"
        ),
    ]
    with pytest.raises(UnreadableImage, match="broken.jpg"):
        make_extraction(records, None)
    kept, _, _ = make_extraction(records, None, skip_unreadable=True)
    assert len(kept.records) == 2 and len(kept.skipped) == 1 and "broken.jpg" in kept.skipped[0]
