"""A warm retrain (every feature cached) never builds the VGG16; backbone fingerprints that key
the feature cache are checked, and a damaged one is recomputed."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from modeling.ml import backbone, feature_paths, features
from modeling.ml.backbone import FINGERPRINTS_FOLDER, WeightsFileError, load_backbone, open_backbone
from modeling.ml.data import load_image
from modeling.ml.predict import load_model
from modeling.ml.training import train


def as_in_a_fresh_process() -> None:
    """Forget the backbone, its fast copy and the fingerprints this process knows; the disk
    (feature cache and fingerprints) stays, as for a new worker process."""
    backbone.forget_backbones()
    features.forget_inference_copies()
    feature_paths.forget_int8_models()


def make_retrain(trained_head, work_dir: Path):
    data = trained_head.data
    return train(
        trained_head.config, data.split("train"), data.split("val"), work_dir=work_dir, cache_dir=trained_head.cache_dir
    )


def head_state(weights_path: str) -> dict[str, torch.Tensor]:
    return torch.load(weights_path, weights_only=True)["head_state"]


def fingerprint_entry(cache_dir: Path) -> Path:
    entries = list((cache_dir / FINGERPRINTS_FOLDER).glob("*.json"))
    assert len(entries) == 1, entries
    return entries[0]


def assert_same_weights(first: str, second: str) -> None:
    before, after = head_state(first), head_state(second)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_a_warm_retrain_never_builds_the_network_and_gives_bit_identical_weights(trained_head, tmp_path):
    as_in_a_fresh_process()
    built_before = backbone.vgg16_constructions
    again = make_retrain(trained_head, tmp_path)
    assert backbone.vgg16_constructions == built_before
    assert (again.cache_misses, again.backbone_sha256) == (0, trained_head.result.backbone_sha256)
    assert_same_weights(trained_head.result.weights_path, again.weights_path)


def test_predicting_cached_records_never_builds_the_network_until_an_image_needs_it(trained_head):
    records = trained_head.data.split("train")[:4]
    # What a worker keeps on disk beside the cache (the int8 model on that path) is there, whatever
    # other tests sharing this session's cache did to it; then a new process starts.
    load_model(trained_head.result.weights_path, cache_dir=trained_head.cache_dir).predict_image(
        load_image(records[0].path), records[0].face_box
    )
    as_in_a_fresh_process()
    built_before = backbone.vgg16_constructions
    model = load_model(trained_head.result.weights_path, cache_dir=trained_head.cache_dir)
    from_cache = model.predict_records(records, cache_dir=trained_head.cache_dir)
    assert backbone.vgg16_constructions == built_before
    # A new image needs the network: built once, checked, and it agrees with the cache (within
    # bf16 rounding: the cached vector was computed in a batch of many, this one alone). On the
    # int8 path the int8 model stored beside the cache (keyed by the backbone's sha256) serves.
    single = model.predict_image(load_image(records[0].path), records[0].face_box)
    built = 0 if model.feature_path == feature_paths.INT8_ONNXRUNTIME else 1
    assert backbone.vgg16_constructions == built_before + built
    np.testing.assert_allclose(single, from_cache[0], atol=1e-3)


def make_fingerprints_copy(trained_head, folder: Path) -> Path:
    """A copy of the fingerprint the session's training wrote, in a folder of its own."""
    entry = fingerprint_entry(trained_head.cache_dir)
    copied = folder / FINGERPRINTS_FOLDER / entry.name
    copied.parent.mkdir(parents=True)
    shutil.copyfile(entry, copied)
    return copied


@pytest.mark.parametrize("damage", ["cut short", "sha256 edited", "another backbone's entry"])
def test_a_damaged_fingerprint_is_detected_and_recomputed(trained_head, tmp_path, damage):
    entry = make_fingerprints_copy(trained_head, tmp_path)
    good = entry.read_text()
    content = json.loads(good)
    if damage == "cut short":
        entry.write_text(good[: len(good) // 2])
    elif damage == "sha256 edited":
        content["sha256"] = "0" * 64
        entry.write_text(json.dumps(content))
    else:
        content["source"]["init_seed"] = 7
        entry.write_text(json.dumps(content))
    as_in_a_fresh_process()
    built_before = backbone.vgg16_constructions
    opened = open_backbone(init_seed=0, fingerprint_dir=tmp_path)
    assert backbone.vgg16_constructions == built_before + 1
    assert opened.identity.sha256 == trained_head.result.backbone_sha256
    assert json.loads(entry.read_text()) == json.loads(good)


def test_a_fingerprint_naming_another_backbone_fails_loudly_once_the_network_is_built(trained_head, tmp_path):
    cache_dir = tmp_path / "cache"
    as_in_a_fresh_process()
    true_sha = open_backbone(init_seed=0, fingerprint_dir=cache_dir).identity.sha256
    entry = fingerprint_entry(cache_dir)
    # A consistent entry (valid checksum) that names the wrong weights: only a build can tell.
    forged = json.loads(entry.read_text())
    forged["sha256"] = "ab" * 32
    signed = json.dumps({"source": forged["source"], "sha256": forged["sha256"]}, sort_keys=True)
    forged["checksum"] = hashlib.sha256(signed.encode()).hexdigest()
    entry.write_text(json.dumps(forged))
    as_in_a_fresh_process()
    backbone = open_backbone(init_seed=0, fingerprint_dir=cache_dir)
    assert backbone.identity.sha256 == "ab" * 32 and not backbone.built
    with pytest.raises(WeightsFileError, match="differs from the one the model was trained on"):
        backbone.build()
    assert json.loads(entry.read_text())["sha256"] == true_sha


def test_a_backbone_built_before_any_fingerprint_folder_was_named_is_still_recorded(tmp_path):
    as_in_a_fresh_process()
    _, identity = load_backbone(init_seed=0)
    built = backbone.vgg16_constructions
    assert open_backbone(init_seed=0, fingerprint_dir=tmp_path).identity == identity
    as_in_a_fresh_process()
    assert open_backbone(init_seed=0, fingerprint_dir=tmp_path).identity == identity
    assert backbone.vgg16_constructions == built
