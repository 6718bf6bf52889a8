from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PAINSITE_", "SECRET_KEY"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True
    )


def test_production_mode_passes_check_deploy_with_no_warnings(tmp_path):
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING",
        PAINSITE_ENV="production",
        SECRET_KEY="x" * 20 + "-a-long-random-production-secret-key-0123456789",
        ALLOWED_HOSTS="painsite.example.org",
        PAINSITE_VAR_DIR=str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_mode_refuses_to_start_without_a_secret_key(tmp_path):
    result = run_manage("check", PAINSITE_ENV="production", PAINSITE_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_the_embedded_defaults_need_no_server(settings):
    if os.environ.get("DATABASE_URL") or os.environ.get("CELERY_BROKER_URL"):
        pytest.skip("this run points at external servers")
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert settings.DATABASES["default"]["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in settings.DATABASES["default"]["OPTIONS"]["init_command"]
    assert settings.CELERY_BROKER_URL.startswith("sqla+sqlite:///")


def test_media_is_never_mapped_to_a_public_url(settings, client):
    assert settings.MEDIA_URL in (None, "")
    assert client.get("/media/images/anything.jpg").status_code in (302, 404)


def test_the_web_entry_point_loads_every_view_and_keeps_them_from_the_garbage_collector(tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PAINSITE_", "SECRET_KEY"))}
    probe = (
        "import gc, sys, painsite.wsgi; "
        "print(gc.get_freeze_count(), 'annotation.api_labeling' in sys.modules, 'modeling.api_training' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**clean, "PAINSITE_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    frozen, labeling_loaded, training_loaded = result.stdout.split()
    assert int(frozen) > 100_000 and labeling_loaded == training_loaded == "True"


def read_setting(name: str, var_dir: Path) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PAINSITE_", "SECRET_KEY"))}
    probe = f"from django.conf import settings; print(settings.{name})"
    env = {**clean, "PAINSITE_VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "painsite.settings"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_development_installation_makes_its_own_secret_key_once_readable_only_by_its_owner(tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    key = read_setting("SECRET_KEY", first)
    assert len(key) >= 50
    assert read_setting("SECRET_KEY", first) == key
    assert (first / "secret_key").stat().st_mode & 0o777 == 0o600
    assert read_setting("SECRET_KEY", second) != key
    assert "development-only-key" not in (ROOT / "painsite" / "settings.py").read_text()


def database_settings(tmp_path, **env: str) -> list[str]:
    result = run_manage(
        "shell", "-c",
        "from django.conf import settings; db = settings.DATABASES['default']; "
        "print(db['CONN_MAX_AGE'], db.get('CONN_HEALTH_CHECKS', False))",
        PAINSITE_VAR_DIR=str(tmp_path), **env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[-1].split()  # the shell first says what it imported


def test_postgresql_connections_are_kept_open_and_checked_by_default(tmp_path):
    assert database_settings(tmp_path, DATABASE_URL="postgres://painsite@db.example.org/painsite") == ["600", "True"]
    assert database_settings(
        tmp_path, DATABASE_URL="postgres://painsite@db.example.org/painsite", DATABASE_CONN_MAX_AGE="0"
    ) == ["0", "True"]


def test_sqlite_opens_a_connection_per_request_by_default(tmp_path):
    assert database_settings(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3") == ["0", "False"]


def test_a_negative_queue_reservation_is_refused(tmp_path):
    result = run_manage("check", PAINSITE_QUEUE_RESERVATION_SECONDS="-5", PAINSITE_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "PAINSITE_QUEUE_RESERVATION_SECONDS must be 0" in result.stderr
