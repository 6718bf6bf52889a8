"""The ML core runs without Django: importing every module of modeling.ml never imports it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import importlib, json, pkgutil, sys
import modeling.ml
names = [m.name for m in pkgutil.walk_packages(modeling.ml.__path__, 'modeling.ml.') if m.name != 'modeling.ml.__main__']
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "django": sorted(k for k in sys.modules if k == 'django' or k.startswith('django.'))}))
"""


def test_no_module_of_modeling_ml_imports_django():
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"modeling.ml.training", "modeling.ml.predict", "modeling.ml.cli", "modeling.ml.features"} <= set(
        report["modules"]
    )
    assert report["django"] == []
