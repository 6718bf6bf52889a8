"""The whole test suite on a machine kept busy: does it pass when the cores are not its own?

`python bench/suite_under_load.py --name sqlite [--load-processes 2] [-- pytest args]` starts
bench/busy.py (one spinning process per core, bounded in time, stopped when the suite ends), runs
`python -m pytest` in the environment it was given (DATABASE_URL, CELERY_BROKER_URL ...), and
writes bench/results/suite_<name>.json: counts of passed/failed/skipped/errors, wall time, the
slowest tests, the database and broker kinds, the CPU and the load average before and after.
It exits with pytest's exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import load_average, machine


def scheme(variable: str, default: str) -> str:
    value = os.environ.get(variable, "")
    return value.split(":", 1)[0] if value else default


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="result file is bench/results/suite_<name>.json")
    parser.add_argument("--load-processes", type=int, default=os.cpu_count() or 2, help="busy processes (0: none)")
    parser.add_argument("--load-seconds", type=float, default=3600, help="upper bound on the load's duration")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args()
    if not args.name.replace("_", "").replace("-", "").isalnum():
        parser.error("--name: letters, digits, - and _ only")
    scratch = ROOT / "test-artifacts" / f"suite-{args.name}"
    scratch.mkdir(parents=True, exist_ok=True)
    junit = scratch / "junit.xml"
    env = {**os.environ, "PAINSITE_RESULTS_DIR": str(ROOT / "bench" / "results")}  # tests/measurements.py
    report = {
        "benchmark": "whole test suite under CPU load",
        "name": args.name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "database": scheme("DATABASE_URL", "sqlite"),
        "broker": scheme("CELERY_BROKER_URL", "sqla+sqlite (embedded)"),
        "load_processes": args.load_processes,
        "require_browser": os.environ.get("PAINSITE_REQUIRE_BROWSER") == "1",
        "pytest_args": args.pytest_args,
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
    }
    started = time.monotonic()
    suite = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", f"--junitxml={junit}", *args.pytest_args], cwd=ROOT, env=env
    )
    busy = None
    if args.load_processes:
        busy = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "busy.py"),
                "--seconds",
                str(args.load_seconds),
                "--processes",
                str(args.load_processes),
                "--while-pid",
                str(suite.pid),
            ]
        )
    load_samples = []
    while suite.poll() is None:
        load_samples.append(os.getloadavg()[0])
        time.sleep(5)
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    if busy is not None:
        busy.wait(timeout=60)
    report["exit_status"] = suite.returncode
    report["load_average_1m"] = {
        "mean": round(sum(load_samples) / max(len(load_samples), 1), 2),
        "max": round(max(load_samples, default=0), 2),
    }
    report["machine"]["load_average_at_end"] = load_average()
    tests, slowest = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}, []
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            outcome = "passed"
            for child in case:
                if child.tag in ("failure", "error", "skipped"):
                    outcome = {"failure": "failed", "error": "errors", "skipped": "skipped"}[child.tag]
            tests[outcome] += 1
            name = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
            slowest.append((float(case.get("time", 0)), name, outcome))
    report["tests"] = tests
    report["failed_tests"] = [name for _, name, outcome in slowest if outcome in ("failed", "errors")]
    report["slowest_tests"] = [
        {"test": name, "seconds": round(seconds, 1)} for seconds, name, _ in sorted(slowest, reverse=True)[:10]
    ]
    output = ROOT / "bench" / "results" / f"suite_{args.name}.json"
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"{tests} in {report['wall_seconds']} s, load average 1 min mean {report['load_average_1m']['mean']}; wrote {output.relative_to(ROOT)}"
    )
    return suite.returncode


if __name__ == "__main__":
    sys.exit(main())
