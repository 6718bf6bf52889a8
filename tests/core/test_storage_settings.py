from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_s3_storage_is_configured_from_the_environment(tmp_path):
    """PAINSITE_STORAGE=s3 selects django-storages' private, signed-URL S3 backend."""
    code = (
        "import django; django.setup();"
        'from django.core.files.storage import storages; s = storages["default"];'
        "print(type(s).__module__, s.bucket_name, s.default_acl, s.querystring_auth, s.file_overwrite)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "painsite.settings",
            "PAINSITE_STORAGE": "s3",
            "PAINSITE_S3_BUCKET": "painsite-media",
            "PAINSITE_VAR_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["storages.backends.s3", "painsite-media", "private", "True", "False"]
