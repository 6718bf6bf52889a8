"""Shared test helpers: one user per role plus an outsider, and an isolated media folder."""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture(scope="session", autouse=True)
def session_broker(tmp_path_factory) -> Iterator[str]:
    """Where a task goes that a test sends without a worker of its own (never a developer's
    `make run` broker, never another test's worker)."""
    from tests.workers import own_broker

    with own_broker(tmp_path_factory.mktemp("broker")) as url:
        yield url


@pytest.fixture
def test_broker_url(session_broker, tmp_path) -> Iterator[str]:
    """A broker of this test's own, shared by its real worker processes and this test process
    (see tests/workers.py): nothing an earlier test left in a broker reaches this test's workers."""
    from tests.workers import own_broker

    with own_broker(tmp_path / "broker") as url:
        yield url


@pytest.fixture
def worker_log_dir(tmp_path) -> Path:
    return tmp_path / "worker-logs"


# The longest files first: with whole files per test process (`--dist loadfile`), a long file
# handed out last keeps one process busy while the others have finished.
LONGEST_FILES = (
    "tests/system/test_permission_matrix.py",
    "tests/ml/test_feature_paths.py",
    "tests/ml/test_training.py",
    "tests/system/test_training_worker.py",
    "tests/system/test_faults.py",
    "tests/system/test_features_on_arrival.py",
    "tests/ml/test_cli.py",
    "tests/system/test_evaluation_worker.py",
    "tests/system/test_ward_worker.py",
    "tests/browser/test_learning_loop.py",
)
SLOW_FOLDERS = ("tests/system/", "tests/ml/", "tests/browser/")


def pytest_collection_modifyitems(config, items) -> None:
    root = Path(__file__).resolve().parent.parent

    def first_the_longest(item) -> tuple[int, int]:
        path = Path(str(item.fspath)).resolve().relative_to(root).as_posix()
        if path in LONGEST_FILES:
            return (0, LONGEST_FILES.index(path))
        folder = next((i for i, folder in enumerate(SLOW_FOLDERS) if path.startswith(folder)), len(SLOW_FOLDERS))
        return (1 + folder, 0)

    items.sort(key=first_the_longest)
