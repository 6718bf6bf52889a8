"""What a model version records about how it was made: data and split fingerprints, code and library versions."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
from typing import Any

from django.conf import settings

from modeling.ml.splits import split_sha256 as ml_split_sha256


def manifest_sha256(images: list[dict[str, Any]]) -> str:
    """Of the images and targets a version used: image id, sha256, patient, split, NRS, level."""
    keys = ("image_id", "sha256", "patient", "cohort", "split", "nrs", "level")
    rows = sorted(([item[key] for key in keys] for item in images), key=lambda row: row[0])
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


def split_sha256(images: list[dict[str, Any]]) -> str:
    """Of the split assignment of the patients a version used (the ML core's fingerprint)."""
    return ml_split_sha256({item["patient"]: item["split"] for item in images})


MANIFEST_KEYS = ("image_id", "sha256", "patient", "cohort", "split", "nrs", "level")


@functools.cache
def code_version() -> str:
    """The git commit of the running code, or PAINSITE_CODE_VERSION where there is no checkout.

    Asked once per process: the code a worker runs is the code it imported at start, and two git
    subprocesses forked from a worker holding VGG16 cost more than a warm retrain's bookkeeping."""
    if os.getenv("PAINSITE_CODE_VERSION"):
        return os.environ["PAINSITE_CODE_VERSION"]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{sha}-dirty" if sha and dirty else sha


def library_versions() -> dict[str, str]:
    import numpy
    import sklearn
    import torch
    import torchvision

    from modeling.ml.feature_paths import onnxruntime_version

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
        **({"onnxruntime": ort} if (ort := onnxruntime_version()) else {}),
    }
