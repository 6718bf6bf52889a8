"""Shared test helpers: one user per role plus an outsider, and an isolated media folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from rest_framework.test import APIClient

from painsite.core.roles import ADMIN, CLINICIAN, RESEARCHER, assign_role

PASSWORD = "correct-horse-battery-staple"


def make_user(username: str, role: str | None = None) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD)
    if role is not None:
        assign_role(user, role)
    return user


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """PBKDF2's deliberate cost is wasted on test users; the log-in flows work the same."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def empty_cache():
    """Cached comparisons and throttling state must not leak from one test into the next."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def isolated_media(settings, tmp_path):
    """Each test writes images and model artifacts under its own temporary folders."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "base_url": None},
        },
    }
    settings.PAINSITE_DATA_DIR = tmp_path / "data"
    return tmp_path


@pytest.fixture
def clinician(db) -> User:
    return make_user("carla", CLINICIAN)


@pytest.fixture
def clinician2(db) -> User:
    return make_user("chen", CLINICIAN)


@pytest.fixture
def researcher(db) -> User:
    return make_user("rosa", RESEARCHER)


@pytest.fixture
def admin_user(db) -> User:
    return make_user("ada", ADMIN)


@pytest.fixture
def outsider(db) -> User:
    return make_user("otto")


def api_client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture(scope="session")
def test_broker_url(tmp_path_factory) -> str:
    """The broker real worker processes and this test process share (see tests/workers.py)."""
    from tests.workers import use_test_broker

    return use_test_broker(tmp_path_factory.mktemp("broker"))


@pytest.fixture
def worker_log_dir(tmp_path) -> Path:
    return tmp_path / "worker-logs"
