"""Installing the VGG16 ImageNet weights from a file, for machines that never see the internet,
and telling what is installed without reading 553 MB."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modeling.ml import backbone
from modeling.ml.backbone import WeightsFileError, installed_weights_path, sha256_of_file
from modeling.ml.files import CopyMismatch, copy_checked


@dataclass(frozen=True)
class InstalledWeights:
    """What training and assessment would find: the file, or why they fall back to random init."""

    path: Path
    present: bool
    size: int | None
    problem: str

    @property
    def usable(self) -> bool:
        return self.present and not self.problem


def installed_weights() -> InstalledWeights:
    """A cheap look (no hashing): the file's presence and size. Its sha256 is checked when it is
    installed and again whenever a backbone is built from it."""
    path = installed_weights_path()
    if not path.is_file():
        return InstalledWeights(path=path, present=False, size=None, problem="no weights file")
    size = path.stat().st_size
    problem = ""
    if size != backbone.VGG16_IMAGENET_BYTES:
        problem = f"{size:,} bytes, expected {backbone.VGG16_IMAGENET_BYTES:,}: not the ImageNet file"
    return InstalledWeights(path=path, present=True, size=size, problem=problem)


def install_imagenet_weights(source: Path, *, destination: Path | None = None) -> tuple[Path, str]:
    """Check `source` is torchvision's VGG16 IMAGENET1K_V1 file (its whole sha256), then copy it
    where training and assessment look, atomically: the copy is hashed as it is written and
    renamed into place only when it matches, so a failed or interrupted install leaves the old
    state. Returns the installed path and its sha256."""
    expected = backbone.VGG16_IMAGENET_SHA256
    source = Path(source)
    if not source.is_file():
        raise WeightsFileError(f"{source} is not a file")
    sha = sha256_of_file(source)
    if sha != expected:
        raise WeightsFileError(
            f"{source} is not torchvision's VGG16 IMAGENET1K_V1 weights file: its sha256 is {sha}, expected {expected}"
        )
    target = Path(destination) if destination is not None else installed_weights_path()
    try:
        copy_checked(source, target, expected_sha256=expected)
    except CopyMismatch:
        raise WeightsFileError(f"{source} changed while it was copied: nothing was installed") from None
    return target, sha
