"""Loading a trained model and assessing images exactly as in training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modeling.ml.backbone import WeightsFileError
from modeling.ml.data import load_image
from modeling.ml.predict import load_model


def test_it_predicts_one_probability_row_per_record(trained_head):
    test = trained_head.data.split("test")
    model = load_model(trained_head.result.weights_path)
    probabilities = model.predict_records(test)
    assert probabilities.shape == (len(test), 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-6)
    assert model.level_names == ["none", "mild", "moderate", "severe"]


def test_one_image_gets_what_its_record_got_with_cached_features(trained_head):
    record = trained_head.data.split("test")[0]
    model = load_model(trained_head.result.weights_path)
    from_cache = model.predict_records([record], cache_dir=trained_head.cache_dir)[0]
    single = model.predict_image(load_image(record.path), record.face_box)
    np.testing.assert_allclose(single, from_cache, atol=1e-6)


def test_the_network_exposes_its_conv_features_for_grad_cam(trained_head):
    model = load_model(trained_head.result.weights_path)
    images = model.preset(load_image(trained_head.data.records[0].path), None).unsqueeze(0)
    with torch.no_grad():
        logits = model.network.from_conv_output(model.network.features(images))
    assert logits.shape == (1, 4)


def test_a_corrupt_weights_file_is_a_clear_error(tmp_path):
    broken = tmp_path / "model.pt"
    broken.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(WeightsFileError, match="model.pt"):
        load_model(broken)
    with pytest.raises(WeightsFileError, match="does not exist"):
        load_model(tmp_path / "absent.pt")


def test_a_weights_file_that_changed_after_training_is_refused(trained_head):
    with pytest.raises(WeightsFileError, match="changed or damaged"):
        load_model(trained_head.result.weights_path, expected_sha256="0" * 64)
    assert load_model(trained_head.result.weights_path, expected_sha256=trained_head.result.weights_sha256)


def test_a_head_whose_backbone_cannot_be_reproduced_is_refused(trained_head, tmp_path):
    payload = torch.load(trained_head.result.weights_path, weights_only=True)
    payload["backbone"]["sha256"] = "f" * 64
    forged = tmp_path / "forged.pt"
    torch.save(payload, forged)
    with pytest.raises(WeightsFileError, match="differs from the one the model was trained on"):
        load_model(forged)


def test_a_model_loaded_in_float32_computes_its_features_in_float32(trained_head):
    record = trained_head.data.split("test")[0]
    model = load_model(trained_head.result.weights_path, precision="float32")
    assert model.choice.dtype == torch.float32 and model.device.endswith("(float32)")
    probabilities = model.predict_image(load_image(record.path), record.face_box)
    np.testing.assert_allclose(probabilities.sum(), 1, atol=1e-6)
    with pytest.raises(ValueError, match="valid options: auto, float32, bfloat16"):
        load_model(trained_head.result.weights_path, precision="half")
