"""The VGG16 network: the frozen feature extractor, the small pain head, and the whole classifier.
Where the backbone's weights come from is modeling/ml/backbone.py.

Layout of torchvision's VGG16 as used here:
  features (13 conv layers; the last block, conv5_1..conv5_3 + pool, starts at index 24)
  → avgpool → fc6, ReLU, Dropout, fc7, ReLU   (the 4096-d "frozen features" cached in head mode)
  → PainHead (replaces VGG16's last Dropout + Linear(4096, 1000))
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torchvision.models import VGG

FEATURE_SIZE = 4096
LAST_CONV_BLOCK = 24


class FrozenFeatures(nn.Module):
    """VGG16 up to fc7 + ReLU: image → 4096-d vector. `features` is the conv stack (Grad-CAM
    hooks its last block)."""

    def __init__(self, vgg: VGG) -> None:
        super().__init__()
        self.features = vgg.features
        self.avgpool = vgg.avgpool
        self.fully_connected = nn.Sequential(*list(vgg.classifier.children())[:5])

    def from_conv_output(self, activation: torch.Tensor) -> torch.Tensor:
        return self.fully_connected(torch.flatten(self.avgpool(activation), 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.from_conv_output(self.features(images))


class CpuDropout(nn.Dropout):
    """`nn.Dropout` whose mask, on the CPU, comes from NumPy's PCG64 seeded from torch's generator.

    torch's CPU dropout draws each element's Bernoulli from a Mersenne Twister one at a time: on a
    batch of 64 cached 4096-d vectors that took 3.3 ms, more than half of a warm head retrain.
    PCG64's 16-bit draws take 0.25 ms. The seed comes from torch's default generator, so
    `torch.manual_seed` still makes a run repeat exactly (resume, warm equals cold). `p` is used
    to the nearest 1/65536 and the kept values are scaled by the kept share actually drawn for,
    so the expectation is unchanged. Elsewhere (CUDA) it is `nn.Dropout`."""

    RESOLUTION = 2**16

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or input.device.type != "cpu":
            return super().forward(input)
        threshold = min(self.RESOLUTION, round(self.p * self.RESOLUTION))
        if threshold == self.RESOLUTION:
            return input * 0.0
        seed = int(torch.randint(0, 2**63 - 1, (1,), dtype=torch.int64))
        draws = np.random.Generator(np.random.PCG64(seed)).integers(
            0, self.RESOLUTION, size=tuple(input.shape), dtype=np.uint16
        )
        kept = 1 - threshold / self.RESOLUTION
        mask = torch.from_numpy(draws >= threshold).to(input.dtype).mul_(1 / kept)
        return input * mask


class PainHead(nn.Module):
    """The classifier on the 4096-d features. With `hidden=0` it is exactly VGG16's replaced last
    layer (Dropout + Linear); with `hidden>0`, a one-hidden-layer MLP. Features are standardised
    with the training set's statistics, stored as buffers so they travel with the weights."""

    def __init__(self, n_levels: int, *, hidden: int = 0, dropout: float = 0.5) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(FEATURE_SIZE))
        self.register_buffer("scale", torch.ones(FEATURE_SIZE))
        if hidden:
            self.layers = nn.Sequential(
                CpuDropout(dropout),
                nn.Linear(FEATURE_SIZE, hidden),
                nn.ReLU(),
                CpuDropout(dropout),
                nn.Linear(hidden, n_levels),
            )
        else:
            self.layers = nn.Sequential(CpuDropout(dropout), nn.Linear(FEATURE_SIZE, n_levels))

    def set_standardisation(self, features: torch.Tensor) -> None:
        self.mean.copy_(features.mean(dim=0))
        self.scale.copy_(1.0 / features.std(dim=0).clamp_min(1e-3))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers((features.float() - self.mean) * self.scale)


class PainNet(nn.Module):
    """The whole classifier: image → level logits.

    In head mode the 4096-d features pass through float16 on their way to the head, exactly as
    they do through the feature cache, so assessing an image reproduces training bit for bit.
    """

    def __init__(self, backbone: FrozenFeatures, head: PainHead, *, round_features: bool) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.round_features = round_features

    @property
    def features(self) -> nn.Sequential:
        return self.backbone.features

    def from_conv_output(self, activation: torch.Tensor) -> torch.Tensor:
        """Logits from the output of `features`: the rest of the network, for Grad-CAM."""
        vectors = self.backbone.from_conv_output(activation)
        if self.round_features:
            vectors = vectors.to(torch.float16)
        return self.head(vectors.float())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.from_conv_output(self.features(images))


def trainable_copy_for_finetune(vgg: VGG) -> FrozenFeatures:
    """A private copy of the backbone with the last conv block and fc6/fc7 trainable."""
    backbone = FrozenFeatures(copy.deepcopy(vgg))
    backbone.requires_grad_(False)
    for layer in list(backbone.features.children())[LAST_CONV_BLOCK:]:
        layer.requires_grad_(True)
    backbone.fully_connected.requires_grad_(True)
    return backbone


def for_inference(module: nn.Module, *, device: torch.device, dtype: torch.dtype, channels_last: bool) -> nn.Module:
    """An eval-mode copy in the given precision and memory layout. Casting the weights once
    (instead of on every batch under autocast) is what makes bf16 extraction fast."""
    moved = copy.deepcopy(module).to(device=device, dtype=dtype)
    if channels_last:
        moved = moved.to(memory_format=torch.channels_last)
    moved.eval()
    moved.requires_grad_(False)
    return moved
