"""Benchmark: where one labeling step's web-worker CPU goes, inside one Django process.

Run alone: ``python bench/labeling_step_cpu.py`` (needs PostgreSQL; --server-url names the server).
It fills a throw-away database (default `painsite_bench_step`, created and dropped here) with
--images never-labeled images, then repeats the labeling step of bench/labeling_queue.py with one
clinician's API token, `GET /api/queue/next/` then `POST /api/images/<id>/labels/`, through
Django's WSGI handler in this process (no HTTP server, no other clients), with the deployment's
database defaults (a kept, health-checked connection). It reports:
- CPU per step (user + system of this process, `time.process_time`) over --steps steps;
- the same steps again under cProfile timed by CPU, split into the parts named in PARTS: each
  part's share of the profiled CPU, times the unprofiled CPU per step (the profiler's own cost
  spread evenly; a guide to proportions, not a stopwatch);
- the SQL statements each request runs (transaction control counted apart).
It writes bench/results/labeling_step_cpu.json (or --output). bench/labeling_queue.py measures
the same step from outside, under load, with gunicorn; the difference is the HTTP server and the
machine's contention.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.labeling_queue import drop_database, recreate_database
from bench.machine import load_average, machine

RESULTS = ROOT / "bench" / "results" / "labeling_step_cpu.json"
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
# Part of a step -> the functions whose cumulative CPU it is (file suffix, function name).
PARTS = {
    "token and its user (DRF TokenAuthentication)": [("rest_framework/authentication.py", "authenticate_credentials")],
    "permission check": [("painsite/core/auth.py", "get_all_permissions")],
    "queue hand-out and reservation (reserve_next_image)": [
        ("annotation/services.py", "reserve_next_image"),
        ("annotation/selectors.py", "next_image_for"),  # all of the queue where nothing reserves
    ],
    "recording the label (record_label)": [("annotation/services.py", "record_label")],
    "response serializers (QueueItemSerializer, LabelSerializer)": [("rest_framework/serializers.py", "data")],
    "request body parsing and validation": [("rest_framework/serializers.py", "is_valid")],
}
# Across the parts above: how much of the step is Django turning querysets into SQL, and how much
# is the database driver (sending, waiting is not CPU, receiving, converting rows).
ACROSS = {
    "ORM compiling querysets to SQL": [("django/db/models/sql/compiler.py", "as_sql")],
    "database driver (psycopg2 execute and commit)": [
        ("~", "<method 'execute' of 'psycopg2.extensions.cursor' objects>"),
        ("~", "<method 'commit' of 'psycopg2.extensions.connection' objects>"),
    ],
}


def wsgi_call(app, token: str, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "HTTP_AUTHORIZATION": f"Token {token}",
        "HTTP_ACCEPT": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json" if body else "",
    }
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = int(status.split()[0])

    response = app(environ, start_response)
    data = b"".join(response)
    response.close()
    return answer["status"], data


def cumulative_cpu(stats: pstats.Stats, functions: list[tuple[str, str]], *, nested: bool) -> float:
    """The CPU spent in `functions` and what they call. `nested`: the functions call each other
    (Serializer.data calls BaseSerializer.data, reserve_next_image calls next_image_for), so the
    outermost, the largest, holds the others; otherwise they are separate (the insert, update and
    select compilers, the driver's execute and commit)."""
    times = [
        cumtime
        for (filename, _line, name), (_calls, _primitive, _tottime, cumtime, _callers) in stats.stats.items()
        if any(filename.endswith(suffix) and name == wanted for suffix, wanted in functions)
    ]
    if not times:
        return 0.0
    return max(times) if nested else sum(times)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server-url", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server, no database"
    )
    parser.add_argument("--database", default="painsite_bench_step", help="throw-away database, created and dropped")
    parser.add_argument("--images", type=int, default=1000, help="never-labeled images (at least 2 x steps + 50)")
    parser.add_argument("--steps", type=int, default=300, help="steps measured, then as many profiled")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args()
    if args.steps < 1 or args.images < 2 * args.steps + 50:
        parser.error("--steps must be at least 1 and --images at least 2 x --steps + 50 (every step needs an image)")
    started_machine = machine()
    scratch = Path(tempfile.mkdtemp(prefix="painsite-bench-step-"))
    os.environ.update(
        DATABASE_URL=f"{args.server_url.rstrip('/')}/{args.database}",
        PAINSITE_VAR_DIR=str(scratch),
        DJANGO_SETTINGS_MODULE="painsite.settings",
        DEBUG="False",
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="WARNING",
    )
    recreate_database(args.server_url, args.database)
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth.models import User
        from django.core.handlers.wsgi import WSGIHandler
        from django.core.management import call_command
        from django.db import connection
        from django.test.utils import CaptureQueriesContext
        from rest_framework.authtoken.models import Token

        from annotation.models import Image, Patient
        from painsite.core.roles import CLINICIAN, assign_role

        call_command("migrate", verbosity=0)
        clinician = User.objects.create_user("bench-clinician")
        assign_role(clinician, CLINICIAN)
        token = Token.objects.create(user=clinician).key
        patient = Patient.objects.create(code="B000001", cohort="clinical", consent="granted")
        Image.objects.bulk_create(
            Image(patient=patient, file=f"images/bench/{i}.jpg", sha256=f"{i:064x}", width=640, height=480)
            for i in range(args.images)
        )
        app = WSGIHandler()

        def step() -> None:
            status, data = wsgi_call(app, token, "GET", "/api/queue/next/")
            assert status == 200, (status, data[:200])
            image_id = json.loads(data)["id"]
            body = json.dumps({"nrs": 5, "kind": "observer"}).encode()
            status, data = wsgi_call(app, token, "POST", f"/api/images/{image_id}/labels/", body)
            assert status == 201, (status, data[:200])

        for _ in range(25):
            step()
        statements = {}
        for name, method in (("GET /api/queue/next/", "GET"), ("POST /api/images/<id>/labels/", "POST")):
            with CaptureQueriesContext(connection) as captured:
                if method == "GET":
                    status, data = wsgi_call(app, token, "GET", "/api/queue/next/")
                    image_id = json.loads(data)["id"]
                else:
                    body = json.dumps({"nrs": 5, "kind": "observer"}).encode()
                    wsgi_call(app, token, "POST", f"/api/images/{image_id}/labels/", body)
            sql = [query["sql"] for query in captured.captured_queries]
            statements[name] = {
                "statements": [text[:90] for text in sql if not text.startswith(TRANSACTION_CONTROL)],
                "transaction_control": sum(1 for text in sql if text.startswith(TRANSACTION_CONTROL)),
            }

        cpu_started = time.process_time()
        for _ in range(args.steps):
            step()
        cpu_ms_per_step = 1000 * (time.process_time() - cpu_started) / args.steps

        profile = cProfile.Profile(time.process_time)
        profile.enable()
        for _ in range(args.steps):
            step()
        profile.disable()
        stats = pstats.Stats(profile)
        profiled_total = sum(entry[2] for entry in stats.stats.values())  # every function's own CPU
        parts = {
            name: round(cpu_ms_per_step * cumulative_cpu(stats, functions, nested=True) / profiled_total, 2)
            for name, functions in PARTS.items()
        }
        parts["everything else (Django's request handling, middleware, DRF's view, JSON)"] = round(
            cpu_ms_per_step - sum(parts.values()), 2
        )
        across = {
            name: round(cpu_ms_per_step * cumulative_cpu(stats, functions, nested=False) / profiled_total, 2)
            for name, functions in ACROSS.items()
        }
        database = settings.DATABASES["default"]
        result = {
            "benchmark": "one labeling step in one Django process: GET /api/queue/next/ then POST its label",
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {**started_machine, "load_average_at_end": load_average()},
            "settings": {
                "images": args.images,
                "steps": args.steps,
                "conn_max_age": database["CONN_MAX_AGE"],
                "conn_health_checks": database.get("CONN_HEALTH_CHECKS", False),
            },
            "cpu_ms_per_step": round(cpu_ms_per_step, 2),
            "cpu_ms_per_step_by_part": parts,
            "cpu_ms_per_step_across_parts": across,
            "statements_per_request": statements,
        }
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(args.server_url, args.database)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"CPU per step in one process: {result['cpu_ms_per_step']} ms")
    for name, value in {**parts, **across}.items():
        print(f"  {value:6.2f} ms  {name}")
    for name, counted in statements.items():
        print(f"{name}: {len(counted['statements'])} statements + {counted['transaction_control']} transaction control")
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
