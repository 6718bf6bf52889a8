from __future__ import annotations

from pathlib import Path

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from modeling.backbone_weights import install_weights
from modeling.ml.backbone import VGG16_IMAGENET_SHA256, WeightsFileError, installed_weights_path


class Command(BaseCommand):
    help = (
        "Install the VGG16 ImageNet weights from a file (torchvision's vgg16-397923af.pth, copied to this "
        "machine by hand): checks its sha256 against torchvision's IMAGENET1K_V1 "
        f"({VGG16_IMAGENET_SHA256}), copies it where training and assessment look (PAINSITE_VGG16_WEIGHTS "
        "if set, else $TORCH_HOME/hub/checkpoints/) and records the installation in the audit log. "
        "A wrong file is refused and nothing changes. Run it on every machine that trains or assesses."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="the weights file, e.g. /media/usb/vgg16-397923af.pth")
        parser.add_argument("--by", metavar="USERNAME", help="the admin installing it, for the audit log")

    def handle(self, *args, path: str, by: str | None, **options) -> None:
        installed_by = None
        if by:
            installed_by = User.objects.filter(username=by).first()
            if installed_by is None:
                raise CommandError(f"no user {by!r}")
        self.stdout.write(f"Checking {path} (sha256 of about 553 MB)…")
        try:
            installed = install_weights(path=Path(path), installed_by=installed_by)
        except WeightsFileError as error:
            raise CommandError(
                f"{error}; nothing was installed (still expected at {installed_weights_path()})"
            ) from None
        self.stdout.write(self.style.SUCCESS(f"Installed the VGG16 ImageNet weights at {installed}"))
