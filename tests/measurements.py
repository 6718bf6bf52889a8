"""What a fault or load test measured, kept for docs/reliability.md.

With PAINSITE_RESULTS_DIR set (bench/suite_under_load.py sets it to bench/results), `record`
writes reliability_<name>.json there: the test's figures, the test that measured them, the
database and broker it ran on, and the CPU (bench/machine.py). bench/report.py renders
docs/reliability.md from these files, so no figure there is copied by hand. Without the variable
nothing is written: an ordinary test run leaves the repository as it was.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from django.db import connection

from bench.machine import machine

RESULTS_DIR_VARIABLE = "PAINSITE_RESULTS_DIR"


def record(name: str, figures: dict[str, object], *, broker: str = "") -> Path | None:
    folder = os.environ.get(RESULTS_DIR_VARIABLE)
    if not folder:
        return None
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    payload = {
        "test": test,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": connection.vendor,
        "broker": broker,
        "machine": machine(),
        **figures,
    }
    path = Path(folder) / f"reliability_{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path
