"""Installing the VGG16 ImageNet weights offline, the dashboard's backbone panel, PAINSITE_OFFLINE.

The real file is 553 MB and cannot be downloaded here, so the accepted-file tests check the hashing
and copying path with a small file whose sha256 is put in place of torchvision's, in these tests only.
"""

from __future__ import annotations

import hashlib
import logging

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from modeling.ml import backbone
from modeling.ml.backbone import VGG16_IMAGENET_SHA256, WEIGHTS_FILENAME
from painsite.core.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def weights_home(monkeypatch, tmp_path):
    """A machine with no weights: its own TORCH_HOME, no PAINSITE_VGG16_WEIGHTS."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("PAINSITE_VGG16_WEIGHTS", raising=False)
    return tmp_path / "torch" / "hub" / "checkpoints" / WEIGHTS_FILENAME


@pytest.fixture
def small_weights_file(monkeypatch, tmp_path):
    """A small file that stands for the ImageNet weights: its sha256 and size are the expected ones."""
    content = b"stands for the VGG16 ImageNet weights" * 100
    path = tmp_path / "usb" / WEIGHTS_FILENAME
    path.parent.mkdir()
    path.write_bytes(content)
    monkeypatch.setattr(backbone, "VGG16_IMAGENET_SHA256", hashlib.sha256(content).hexdigest())
    monkeypatch.setattr(backbone, "VGG16_IMAGENET_BYTES", len(content))
    return path


def dashboard_for(user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_published_hash_is_torchvisions_vgg16_imagenet1k_v1():
    from torchvision.models import VGG16_Weights

    assert VGG16_Weights.IMAGENET1K_V1.url.endswith(f"/{WEIGHTS_FILENAME}")
    assert VGG16_IMAGENET_SHA256.startswith(WEIGHTS_FILENAME.split("-")[1].split(".")[0])
    assert len(VGG16_IMAGENET_SHA256) == 64


def test_a_wrong_file_is_refused_and_nothing_changes(weights_home, tmp_path, admin_user):
    wrong = tmp_path / WEIGHTS_FILENAME
    wrong.write_bytes(b"a file that only has the right name")
    with pytest.raises(CommandError, match="not torchvision's VGG16 IMAGENET1K_V1 weights file"):
        call_command("install_weights", str(wrong), "--by", admin_user.username)
    assert not weights_home.exists()
    assert not weights_home.parent.exists()
    assert not AuditEvent.objects.filter(action="weights.install").exists()


def test_a_missing_file_is_refused(weights_home, tmp_path):
    with pytest.raises(CommandError, match="is not a file"):
        call_command("install_weights", str(tmp_path / "nowhere.pth"))
    assert not weights_home.exists()


def test_the_right_file_is_installed_where_training_finds_it_and_audited(weights_home, small_weights_file, admin_user):
    call_command("install_weights", str(small_weights_file), "--by", admin_user.username)
    assert weights_home.read_bytes() == small_weights_file.read_bytes()
    assert backbone.imagenet_weights_path() == weights_home
    assert not [p for p in weights_home.parent.iterdir() if p.name.startswith(".installing-")]
    event = AuditEvent.objects.get(action="weights.install")
    assert event.actor == admin_user
    assert event.details["sha256"] == backbone.VGG16_IMAGENET_SHA256
    assert event.details["path"] == str(weights_home)


def test_it_installs_to_painsite_vgg16_weights_when_that_is_set(monkeypatch, tmp_path, small_weights_file):
    target = tmp_path / "models" / "vgg16.pth"
    monkeypatch.setenv("PAINSITE_VGG16_WEIGHTS", str(target))
    call_command("install_weights", str(small_weights_file))
    assert target.read_bytes() == small_weights_file.read_bytes()
    assert backbone.imagenet_weights_path() == target


def test_a_refused_file_leaves_an_installed_one_in_place(weights_home, small_weights_file, tmp_path):
    call_command("install_weights", str(small_weights_file))
    wrong = tmp_path / "other.pth"
    wrong.write_bytes(b"x" * 10)
    with pytest.raises(CommandError):
        call_command("install_weights", str(wrong))
    assert weights_home.read_bytes() == small_weights_file.read_bytes()


def test_the_admin_dashboard_warns_when_training_would_fall_back_to_random_init(
    weights_home, admin_user, clinician, monkeypatch
):
    monkeypatch.setenv("PAINSITE_OFFLINE", "1")
    page = dashboard_for(admin_user)
    assert 'id="backbone-warning"' in page
    assert "fall back to a random initialisation" in page
    assert "will not download them" in page
    assert "backbone-status" not in dashboard_for(clinician)


def test_the_admin_dashboard_shows_installed_weights(weights_home, small_weights_file, admin_user):
    call_command("install_weights", str(small_weights_file))
    page = dashboard_for(admin_user)
    assert "VGG16 ImageNet weights installed on this machine" in page
    assert 'id="backbone-warning"' not in page


def test_a_file_of_the_wrong_size_in_place_is_shown_as_not_usable(weights_home, admin_user):
    weights_home.parent.mkdir(parents=True)
    weights_home.write_bytes(b"truncated")
    page = dashboard_for(admin_user)
    assert 'id="backbone-warning"' in page
    assert "not the ImageNet file" in page


def test_offline_it_never_downloads_and_says_so_once(weights_home, monkeypatch, caplog):
    monkeypatch.setenv("PAINSITE_OFFLINE", "1")
    monkeypatch.setattr(backbone, "_offline_said", False)
    monkeypatch.setattr(backbone, "_download_failed", False)

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download while PAINSITE_OFFLINE is set")

    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", no_download)
    with caplog.at_level(logging.WARNING, logger="modeling.ml.backbone"):
        assert backbone.download_imagenet_weights() is None
        assert backbone.download_imagenet_weights() is None
    said = [record for record in caplog.records if "PAINSITE_OFFLINE" in record.getMessage()]
    assert len(said) == 1
    assert "install_weights" in said[0].getMessage()
