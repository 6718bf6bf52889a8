"""Where a run's files live under PAINSITE_DATA_DIR: work folders, published weights, the feature cache, and the stored images' local paths."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from modeling.models import ModelVersion


def run_work_dir(run_id: int) -> Path:
    """Checkpoints of a run in progress: kept across attempts so a new attempt resumes."""
    return Path(settings.PAINSITE_DATA_DIR) / "runs" / str(run_id)


def run_artifact_dir(run_id: int) -> Path:
    """The published weights of the model version a run produced."""
    return Path(settings.PAINSITE_DATA_DIR) / "models" / f"run-{run_id}"


def feature_cache_dir() -> Path:
    return Path(settings.PAINSITE_DATA_DIR) / "feature-cache"


def remove_run_files(run_id: int, *, keep_artifacts: bool = False) -> None:
    shutil.rmtree(run_work_dir(run_id), ignore_errors=True)
    if not keep_artifacts:
        shutil.rmtree(run_artifact_dir(run_id), ignore_errors=True)


def weights_file(version: ModelVersion) -> Path:
    """The version's weights file: `weights_path` is relative to PAINSITE_DATA_DIR unless absolute."""
    path = Path(version.weights_path)
    return path if path.is_absolute() else Path(settings.PAINSITE_DATA_DIR) / path


def local_image_path(name: str, sha256: str, *, folders: dict[str, str] | None = None) -> str:
    """A local file the ML core can open: the stored file itself on local storage, else a copy
    under PAINSITE_DATA_DIR/image-cache (object storage), fetched once per image.

    `folders` keeps the storage's answer per folder across calls: thousands of images share a
    few folders, and the storage's checks cost more per file than the rest of a record."""
    folder, file_name = os.path.split(name)
    try:
        if folders is None or file_name in ("", ".", ".."):
            return default_storage.path(name)
        if folder not in folders:
            folders[folder] = default_storage.path(folder)
        return os.path.join(folders[folder], file_name)
    except NotImplementedError:
        pass
    cached = Path(settings.PAINSITE_DATA_DIR) / "image-cache" / f"{sha256}{Path(name).suffix}"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f".{cached.name}.{os.getpid()}.part")
        with default_storage.open(name, "rb") as source, open(partial, "wb") as target:
            shutil.copyfileobj(source, target)
        os.replace(partial, cached)
    return str(cached)
