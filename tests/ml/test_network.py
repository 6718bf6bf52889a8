"""Backbone weights: ImageNet file checks, a loud random-init fallback, the network layout."""

from __future__ import annotations

import logging
import sys
import urllib.error

import pytest
import torch
from torch import nn

from modeling.ml import backbone, network
from modeling.ml.backbone import (
    RANDOM_INIT,
    BackboneIdentity,
    WeightsFileError,
    backbone_from_identity,
    load_backbone,
    read_imagenet_state,
    state_sha256,
)
from modeling.ml.network import CpuDropout, FrozenFeatures, PainHead, PainNet


@pytest.fixture
def offline_without_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("PAINSITE_VGG16_WEIGHTS", raising=False)
    monkeypatch.setenv("PAINSITE_OFFLINE", "1")


def test_without_imagenet_weights_it_uses_random_init_and_warns(offline_without_weights, caplog):
    with caplog.at_level(logging.WARNING, logger="modeling.ml.network"):
        model, identity = load_backbone(init_seed=0)
    assert identity.name == RANDOM_INIT
    assert identity.init_seed == 0 and len(identity.sha256) == 64
    assert "RANDOM-INIT" in caplog.text
    assert isinstance(model.features, nn.Sequential)


def test_a_failed_download_says_so_on_stderr_and_leaves_stdout_to_the_json(monkeypatch, tmp_path, capsys):
    """torch.hub announces a download on stdout; the command line prints its JSON there."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("PAINSITE_OFFLINE", raising=False)
    monkeypatch.setattr(backbone, "_download_failed", False)

    def unreachable(url, *args, **kwargs):
        sys.stdout.write(f'Downloading: "{url}"\n')
        raise urllib.error.URLError("unreachable in this test")

    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", unreachable)
    assert backbone.download_imagenet_weights() is None
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Downloading" in captured.err
    assert backbone.download_imagenet_weights() is None  # tried once per process
    assert capsys.readouterr().err == ""


def test_a_random_init_backbone_is_rebuilt_from_its_identity(offline_without_weights):
    _, identity = load_backbone(init_seed=0)
    assert backbone_from_identity(identity) is not None
    forged = BackboneIdentity(RANDOM_INIT, "0" * 64, 0)
    with pytest.raises(WeightsFileError, match="differs from the one the model was trained on"):
        backbone_from_identity(forged)


def test_a_weights_path_that_does_not_exist_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PAINSITE_VGG16_WEIGHTS", str(tmp_path / "missing.pth"))
    with pytest.raises(WeightsFileError, match="missing.pth"):
        load_backbone()


def test_a_weights_file_with_the_wrong_checksum_is_refused(tmp_path):
    impostor = tmp_path / "vgg16-397923af.pth"
    impostor.write_bytes(b"not the ImageNet weights")
    with pytest.raises(WeightsFileError, match="expected 397923af"):
        read_imagenet_state(impostor)


def test_the_state_fingerprint_changes_with_any_weight():
    layer = nn.Linear(3, 2)
    before = state_sha256(layer.state_dict())
    assert state_sha256(layer.state_dict()) == before
    with torch.no_grad():
        layer.weight[0, 0] += 1e-3
    assert state_sha256(layer.state_dict()) != before


def test_the_whole_network_equals_features_then_the_rest(offline_without_weights):
    vgg, _ = load_backbone(init_seed=0)
    net = PainNet(FrozenFeatures(vgg), PainHead(4, hidden=0), round_features=False).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits = net(images)
        assert logits.shape == (2, 4)
        torch.testing.assert_close(net.from_conv_output(net.features(images)), logits)
    assert network.LAST_CONV_BLOCK == 24 and isinstance(net.features[28], nn.Conv2d)


@pytest.mark.parametrize("p", [0.5, 0.3, 0.9])
def test_cpu_dropout_drops_the_share_p_and_keeps_the_expectation_as_torch_dropout_does(p):
    values = torch.rand(256, 4096) + 0.5
    torch.manual_seed(0)
    ours = CpuDropout(p).train()(values)
    theirs = nn.Dropout(p).train()(values)
    n = values.numel()
    tolerance = 4 * (p * (1 - p) / n) ** 0.5
    for out in (ours, theirs):
        assert abs(float((out == 0).float().mean()) - p) < tolerance
        kept = out != 0
        torch.testing.assert_close(out[kept], values[kept] / (1 - p), rtol=1e-4, atol=0)
    assert abs(float(ours.mean() - values.mean())) < 0.01
    assert not torch.equal(ours == 0, theirs == 0)


def test_cpu_dropout_repeats_under_torch_manual_seed_and_passes_gradients_through_its_mask():
    values = torch.randn(64, 4096, requires_grad=True)
    dropout = CpuDropout(0.5).train()
    torch.manual_seed(7)
    first = dropout(values)
    torch.manual_seed(7)
    second = dropout(values)
    assert torch.equal(first, second)
    assert not torch.equal(first, dropout(values))
    first.sum().backward()
    torch.testing.assert_close(values.grad, (first != 0).float() * 2.0)


def test_cpu_dropout_is_the_identity_in_evaluation_and_at_p_zero():
    values = torch.randn(8, 4096)
    assert torch.equal(CpuDropout(0.5).eval()(values), values)
    assert torch.equal(CpuDropout(0.0).train()(values), values)
