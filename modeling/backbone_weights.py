"""The VGG16 ImageNet weights on this machine: installing them offline (audited) and telling
admins whether training would fall back to a random initialisation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth.models import User

from modeling.ml.backbone import VGG16_IMAGENET_SHA256, offline
from modeling.ml.weights_install import InstalledWeights, install_imagenet_weights, installed_weights
from modeling.models import ModelVersion
from painsite.core.services import record_event


@dataclass(frozen=True)
class BackboneStatus:
    """What the dashboard shows admins: this machine's weights file and the backbone the newest
    model version was trained on (workers on other machines show there)."""

    weights: InstalledWeights
    offline: bool
    newest_version: ModelVersion | None

    @property
    def falls_back_to_random_init(self) -> bool:
        return not self.weights.usable


def backbone_status() -> BackboneStatus:
    newest = ModelVersion.objects.only("id", "name", "backbone", "created_at").order_by("-created_at").first()
    return BackboneStatus(weights=installed_weights(), offline=offline(), newest_version=newest)


def install_weights(*, path: Path, installed_by: User | None) -> Path:
    """Check and install the VGG16 ImageNet weights file, then record who installed which file
    where. A refused file raises WeightsFileError and records nothing."""
    installed, sha256 = install_imagenet_weights(Path(path))
    record_event(
        actor=installed_by,
        action="weights.install",
        object_type="backbone",
        object_id="vgg16-imagenet1k-v1",
        details={
            "source": str(Path(path).resolve()),
            "path": str(installed),
            "sha256": sha256,
            "expected_sha256": VGG16_IMAGENET_SHA256,
        },
    )
    return installed
