"""Labeling load: concurrent simulated clinicians against gunicorn on PostgreSQL, loopback only.

Each client is one clinician with an API token who labels random images as fast as the server
answers (POST /api/images/<id>/labels/). Every label the server acknowledged with 201 is counted
by id; afterwards the database must hold exactly those rows: nothing lost, nothing duplicated,
and each image's queue counters must agree with its label chains. Throughput and p50/p95/p99
latency go to bench/results/load.json.

    .venv/bin/python bench/load.py --seconds 60 --clients 16 --workers 4

It creates a fresh database `painsite_load` on the PostgreSQL server of --database-url (default
$DATABASE_URL, else postgres://postgres@127.0.0.1:5432/painsite), migrates it, and drops it at
the end. `--fault-at S --fault-command CMD` runs CMD S seconds into the load (tests use it to
restart PostgreSQL mid-way) and the results then say what the clients saw before, during and
after it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from bench.machine import machine

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results" / "load.json"
LOAD_DATABASE = "painsite_load"


# ---------------------------------------------------------------------------------------------
# Data: clinicians with tokens, a patient, small images (needs Django set up on the target DB)


@dataclass(frozen=True)
class LoadData:
    tokens: list[str]
    rater_ids: list[int]
    image_ids: list[int]


def prepare(*, clinicians: int, images: int) -> LoadData:
    """Clinicians (with API tokens) and small stored images to label, in the current database."""
    import io

    import numpy as np
    from django.contrib.auth.models import User
    from PIL import Image as PILImage
    from rest_framework.authtoken.models import Token

    from annotation.intake import store_image
    from annotation.models import Patient
    from painsite.core.roles import CLINICIAN, assign_role

    patient, _ = Patient.objects.get_or_create(code="LOAD-001", defaults={"cohort": "clinical", "consent": "granted"})
    image_ids = []
    for number in range(images):
        pixels = np.random.default_rng(10_000 + number).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        PILImage.fromarray(pixels).save(buffer, "JPEG", quality=90)
        stored = store_image(data=buffer.getvalue(), filename=f"load-{number}.jpg", patient=patient, uploaded_by=None)
        image_ids.append(stored.image.pk)
    tokens, rater_ids = [], []
    for number in range(clinicians):
        # No password: the clients authenticate with tokens, and hashing would only cost time here.
        user = User.objects.create(username=f"load-clinician-{number:02d}")
        assign_role(user, CLINICIAN)
        tokens.append(Token.objects.create(user=user).key)
        rater_ids.append(user.pk)
    return LoadData(tokens=tokens, rater_ids=rater_ids, image_ids=image_ids)


def check_labels(*, acknowledged: list[int], rater_ids: list[int]) -> dict[str, object]:
    """Compare the acknowledged label ids with the rows the database holds."""
    from django.db.models import Count, Q

    from annotation.models import Image, PainLabel

    stored = set(PainLabel.objects.filter(rater_id__in=rater_ids).values_list("id", flat=True))
    acknowledged_set = set(acknowledged)
    # Each rater's standing scores: the chain heads. The counters on Image must agree with them.
    heads = PainLabel.objects.filter(rater_id__in=rater_ids, superseded_by__isnull=True, is_retraction=False)
    standing = dict(heads.values("image_id").annotate(n=Count("rater", distinct=True)).values_list("image_id", "n"))
    chains_first_rows = Counter(
        PainLabel.objects.filter(rater_id__in=rater_ids, supersedes__isnull=True).values_list("image_id", "rater_id")
    )
    counter_mismatches = [
        image_id
        for image_id, label_count in Image.objects.filter(Q(labels__rater_id__in=rater_ids))
        .distinct()
        .values_list("id", "label_count")
        if label_count != standing.get(image_id, 0)
    ]
    return {
        "acknowledged": len(acknowledged),
        "acknowledged_twice": len(acknowledged) - len(acknowledged_set),
        "stored": len(stored),
        "lost": sorted(acknowledged_set - stored),
        "stored_but_not_acknowledged": sorted(stored - acknowledged_set),
        "chains_with_two_starts": sum(1 for count in chains_first_rows.values() if count > 1),
        "image_counter_mismatches": counter_mismatches,
    }


# ---------------------------------------------------------------------------------------------
# The server


def spare_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def gunicorn(
    *,
    database_url: str,
    media_root: Path,
    data_dir: Path,
    workers: int,
    threads: int,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
) -> Iterator[int]:
    """gunicorn serving PainSite on a spare loopback port; yields the port, stops it after."""
    port = spare_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "painsite.settings",
        "DATABASE_URL": database_url,
        "PAINSITE_MEDIA_ROOT": str(media_root),
        "PAINSITE_DATA_DIR": str(data_dir),
        "PAINSITE_VAR_DIR": str(data_dir / "var"),
        "DEBUG": "False",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    command = [
        sys.executable, "-m", "gunicorn", "painsite.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
        "--worker-class", "gthread", "--timeout", "60", "--graceful-timeout", "5", "--preload",
    ]  # fmt: skip
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while not _answers(port):
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer within 120 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        _warm_up(port, workers * threads * 2)
        yield port
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait(timeout=30)


def _warm_up(port: int, requests: int) -> None:
    """Concurrent requests before the clock starts, so each worker has loaded its views."""
    threads = [threading.Thread(target=_answers, args=(port, "/api/queue/next/")) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


def _answers(port: int, path: str = "/accounts/login/") -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", path)
        return connection.getresponse().status < 500
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# The clients


@dataclass
class Request:
    started: float  # seconds since the load began
    seconds: float
    status: int  # 0: no HTTP answer (connection refused or dropped)


@dataclass
class LoadResult:
    seconds: float
    clients: int
    requests: list[Request] = field(default_factory=list)
    acknowledged: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    fault: dict[str, float] | None = None

    def summary(self) -> dict[str, object]:
        answered = [r.seconds * 1000 for r in self.requests if r.status == 201]
        cuts = statistics.quantiles(answered, n=100) if len(answered) >= 2 else [float("nan")] * 99
        summary: dict[str, object] = {
            "seconds": round(self.seconds, 2),
            "clients": self.clients,
            "requests": len(self.requests),
            "labels_acknowledged": len(self.acknowledged),
            "labels_per_second": round(len(self.acknowledged) / self.seconds, 1),
            "latency_ms": {"p50": round(cuts[49], 1), "p95": round(cuts[94], 1), "p99": round(cuts[98], 1)},
            "statuses": dict(sorted(Counter(str(r.status) for r in self.requests).items())),
            "connection_errors": len(self.errors),
        }
        if self.fault is not None:
            start, end = self.fault["start"], self.fault["end"]
            phases = {
                "before": [r for r in self.requests if r.started < start],
                "during": [r for r in self.requests if start <= r.started <= end + 1.0],
                "after": [r for r in self.requests if r.started > end + 1.0],
            }
            summary["fault"] = {
                **{key: round(value, 2) for key, value in self.fault.items()},
                **{
                    phase: dict(sorted(Counter(str(r.status) for r in requests).items()))
                    for phase, requests in phases.items()
                },
            }
        return summary


def _client(
    *, port: int, token: str, image_ids: list[int], began: float, stop_at: float, seed: int, result: LoadResult,
    lock: threading.Lock,
) -> None:  # fmt: skip
    rng = random.Random(seed)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    requests, acknowledged, errors = [], [], []
    while time.monotonic() < stop_at:
        image_id = rng.choice(image_ids)
        body = json.dumps({"nrs": rng.randint(0, 10), "kind": "observer"})
        started = time.monotonic()
        try:
            connection.request("POST", f"/api/images/{image_id}/labels/", body, headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            requests.append(Request(started - began, time.monotonic() - started, 0))
            errors.append(f"{type(error).__name__}: {error}")
            connection.close()
            time.sleep(0.1)
            continue
        requests.append(Request(started - began, time.monotonic() - started, response.status))
        if response.status == 201:
            acknowledged.append(json.loads(data)["id"])
        elif response.status == 503:
            # The server says retry later (Retry-After); capped so a test stays short.
            time.sleep(min(float(response.getheader("Retry-After", "1")), 0.5))
    connection.close()
    with lock:
        result.requests.extend(requests)
        result.acknowledged.extend(acknowledged)
        result.errors.extend(errors)


def run_load(
    *, port: int, tokens: list[str], image_ids: list[int], seconds: float,
    fault_at: float | None = None, fault: Callable[[], None] | None = None,
) -> LoadResult:  # fmt: skip
    """One thread per token labels for `seconds`; `fault()` runs `fault_at` seconds in."""
    result = LoadResult(seconds=seconds, clients=len(tokens))
    lock = threading.Lock()
    began = time.monotonic()
    stop_at = began + seconds
    threads = [
        threading.Thread(
            target=_client,
            kwargs=dict(port=port, token=token, image_ids=image_ids, began=began, stop_at=stop_at, seed=number,
                        result=result, lock=lock),
            daemon=True,
        )
        for number, token in enumerate(tokens)
    ]  # fmt: skip
    for thread in threads:
        thread.start()
    if fault is not None and fault_at is not None:
        time.sleep(max(0.0, began + fault_at - time.monotonic()))
        start = time.monotonic() - began
        fault()
        result.fault = {"start": start, "end": time.monotonic() - began}
    for thread in threads:
        thread.join(timeout=seconds + 60)
    result.seconds = time.monotonic() - began
    return result


# ---------------------------------------------------------------------------------------------
# Stand-alone run


def _database_url(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _recreate_database(server_url: str, name: str, *, drop_only: bool = False) -> None:
    import psycopg2

    parts = urlsplit(server_url)
    connection = psycopg2.connect(
        host=parts.hostname or "127.0.0.1", port=parts.port or 5432, user=parts.username or "postgres",
        password=parts.password or None, dbname="postgres",
    )  # fmt: skip
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/painsite"),
        help="a PostgreSQL server; a fresh database painsite_load is made on it and dropped after",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--fault-at", type=float, default=None, help="seconds into the load to run --fault-command")
    parser.add_argument("--fault-command", default=None, help="a shell command run once during the load")
    args = parser.parse_args(argv)
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("the load runs against PostgreSQL: give --database-url postgres://...")

    database_url = _database_url(args.database_url, LOAD_DATABASE)
    work = Path(tempfile.mkdtemp(prefix="painsite-load-"))
    media, data = work / "media", work / "data"
    env = {**os.environ, "DATABASE_URL": database_url, "PAINSITE_MEDIA_ROOT": str(media), "PAINSITE_DATA_DIR": str(data),
           "PAINSITE_VAR_DIR": str(data / "var"), "DJANGO_SETTINGS_MODULE": "painsite.settings"}  # fmt: skip
    _recreate_database(args.database_url, LOAD_DATABASE)
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "--skip-checks", "-v", "0"],
            cwd=REPO_ROOT, env=env, check=True,
        )  # fmt: skip
        os.environ.update({key: env[key] for key in ("DATABASE_URL", "PAINSITE_MEDIA_ROOT", "PAINSITE_DATA_DIR",
                                                     "PAINSITE_VAR_DIR", "DJANGO_SETTINGS_MODULE")})  # fmt: skip
        import django

        django.setup()
        from django.db import connections

        load_data = prepare(clinicians=args.clients, images=args.images)
        connections.close_all()  # the fault may restart the server under this connection
        fault = None
        if args.fault_command:
            fault = lambda: subprocess.run(args.fault_command, shell=True, check=True, timeout=120)  # noqa: E731
        with gunicorn(
            database_url=database_url, media_root=media, data_dir=data, workers=args.workers, threads=args.threads,
            log_path=work / "gunicorn.log",
        ) as port:  # fmt: skip
            result = run_load(
                port=port, tokens=load_data.tokens, image_ids=load_data.image_ids, seconds=args.seconds,
                fault_at=args.fault_at, fault=fault,
            )  # fmt: skip
        check = check_labels(acknowledged=result.acknowledged, rater_ids=load_data.rater_ids)
        connections.close_all()
    finally:
        _recreate_database(args.database_url, LOAD_DATABASE, drop_only=True)
        shutil.rmtree(work, ignore_errors=True)

    report = {
        **result.summary(),
        "gunicorn": {"workers": args.workers, "threads": args.threads},
        "images": args.images,
        "check": {**check, "lost": len(check["lost"]), "stored_but_not_acknowledged": len(check["stored_but_not_acknowledged"]),
                  "image_counter_mismatches": len(check["image_counter_mismatches"])},
        "cpu_count": os.cpu_count(),
        "machine": machine(),
        "command": "bench/load.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    intact = not (check["lost"] or check["stored_but_not_acknowledged"] or check["acknowledged_twice"]
                  or check["chains_with_two_starts"] or check["image_counter_mismatches"])  # fmt: skip
    print("labels intact: nothing lost, nothing duplicated" if intact else "LABELS NOT INTACT: see check above")
    return 0 if intact else 1


if __name__ == "__main__":
    raise SystemExit(main())
