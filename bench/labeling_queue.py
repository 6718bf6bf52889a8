"""Benchmark: the labeling queue under load, at 1,000 and at 100,000 images.

Run alone: ``python bench/labeling_queue.py`` (needs PostgreSQL; --server-url names the server to use).
For each size it fills a throw-away database (default `painsite_bench`, created and dropped here)
with images and 1.5 labels per image by COPY, starts gunicorn on 127.0.0.1 against it, and lets 8
clients (threads, token auth, a new loopback connection per request) repeat one labeling step:
`GET /api/queue/next/` then `POST /api/images/<id>/labels/`, under two loads:
- clinician pace: each client looks at the image for a think time drawn from 0.25-0.75 s before
  its next step (two images a second each, faster than a person rates faces);
- saturated: no think time, every client fires its next step at once (the server's capacity; on
  2 cores the 8 clients then queue for the CPU, so latency there is throughput in disguise).
It prints p50/p95 per size and load, the ratio p50(100k)/p50(1k), the gunicorn workers' CPU
time per step (user + system from /proc/<pid>/stat, before and after each load, divided by the
steps they served) and the share of steps that scored an image another client also scored in the
same load, and writes bench/results/queue.json (or --output).
Targets: p95 < 50 ms at both sizes; p50 at 100,000 images <= 1.5 x p50 at 1,000 images; web-worker
CPU per step <= 8 ms at 100,000 images, saturated.

Queue orders (--orders, default `arrival,uncertainty`): every load runs --rounds times (4) per
order, the orders taking turns on freshly loaded data (A B, B A, ...), pooled per order; the first
order (arrival, the default) gives the figures above and each other order is reported beside it. The never-labeled images with a face carry a prediction of the
production model (annotation_imageprediction, as modeling writes it: random levels, entropy and
margin; 3% of images have no face and no prediction). The JSON gives each other order's p50, p95
and server CPU per step divided by arrival's, per size and load; target: at most 1.2.
The server runs with the deployment defaults (persistent, health-checked database connections).

Data shape per size (by image): 20% never labeled, 10% one observer score (they need a second),
50% two observer scores, 20% a self-report and an observer score: 1.5 labels per image, from 30
raters, the benchmark's 8 clinicians among them. The data is loaded afresh before each load, and
the never-labeled share is raised (the other shares shrink in proportion) where 20% would be fewer
images than the load's planned steps (clients x (warm-up + steps)): every measured step is then a
never-labeled step and the queue cannot run dry. A load that still stops early (an empty queue,
the time limit) is reported with completed/planned steps and `partial: true`, never as a full one.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import load_average, machine

RESULTS = ROOT / "bench" / "results" / "queue.json"
TARGET_P95_MS = 50.0
TARGET_CPU_MS_PER_STEP = 8.0
TARGET_P50_RATIO = 1.5
BACKGROUND_RATERS = 22
# Think time per client between steps, seconds: a clinician looking at the face, and none at all.
LOADS = {"clinician_pace": (0.25, 0.75), "saturated": (0.0, 0.0)}
BASE_SHAPE = {"never_labeled": 0.2, "one_observer": 0.1, "two_observers": 0.5, "self_report_and_observer": 0.2}
TARGET_ORDER_RATIO = 1.2
# One image in NO_FACE_EVERY has no face box, so no prediction: the uncertainty orders hand those
# out after the predicted ones, from their own step.
NO_FACE_EVERY = 33
LEVEL_NAMES = ("none", "mild", "moderate", "severe")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def admin_connection(server_url: str):
    import psycopg2

    connection = psycopg2.connect(server_url.rstrip("/") + "/postgres")
    connection.autocommit = True
    return connection


def recreate_database(server_url: str, name: str) -> None:
    connection = admin_connection(server_url)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()


def drop_database(server_url: str, name: str) -> None:
    connection = admin_connection(server_url)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    connection.close()


def copy_rows(cursor, table: str, columns: list[str], rows) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if value is None else str(value) for value in row) + "\n")
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


def data_shape(n_images: int, unlabeled_at_least: int) -> dict[str, float]:
    """Shares of images by what they hold: 20/10/50/20, with the never-labeled share raised to
    cover `unlabeled_at_least` images where 20% would not (the rest shrink in proportion)."""
    unlabeled = min(1.0, max(BASE_SHAPE["never_labeled"], unlabeled_at_least / n_images))
    rest = (1.0 - unlabeled) / (1.0 - BASE_SHAPE["never_labeled"])
    return {
        kind: round(unlabeled if kind == "never_labeled" else share * rest, 4) for kind, share in BASE_SHAPE.items()
    }


def fill(n_images: int, rater_ids: list[int], shape: dict[str, float], seed: int = 0) -> dict[str, int]:
    """Replace patients, images and labels with `n_images` images shaped as `shape`."""
    from django.db import connection

    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    patients = max(1, n_images // 7)
    images, labels, predictions = [], [], []
    label_id = 0
    next_rank = [0] * len(LEVEL_NAMES)
    # The first images (the oldest, served first) are the never-labeled ones, exactly as many as
    # the shape says; the others are drawn.
    never_labeled = round(shape["never_labeled"] * n_images)
    bounds = [shape["one_observer"], shape["one_observer"] + shape["two_observers"]]
    drawn_total = 1.0 - shape["never_labeled"]
    for image_id in range(1, n_images + 1):
        bucket = rng.random() * drawn_total
        if image_id <= never_labeled:
            kinds = []
        elif bucket < bounds[0]:
            kinds = ["observer"]
        elif bucket < bounds[1]:
            kinds = ["observer", "observer"]
        else:
            kinds = ["self_report", "observer"]
        raters = rng.sample(rater_ids, len(kinds))
        for kind, rater in zip(kinds, raters):
            label_id += 1
            labels.append(
                (
                    label_id,
                    image_id,
                    rater,
                    rng.randint(0, 10),
                    kind,
                    start + timedelta(seconds=label_id),
                    None,
                    "f",
                    "f",
                )
            )
        observers = kinds.count("observer")
        has_face = image_id % NO_FACE_EVERY != 0
        if has_face and not kinds:
            level = rng.randrange(len(LEVEL_NAMES))
            top = rng.uniform(0.25, 1.0)
            predictions.append(
                (
                    image_id,
                    1,
                    level,
                    LEVEL_NAMES[level],
                    round(rng.random(), 6),
                    round(rng.uniform(0.0, top), 6),
                    next_rank[level],
                    start,
                )
            )
            next_rank[level] += 1
        images.append(
            (
                image_id,
                1 + (image_id - 1) % patients,
                f"images/bench/{image_id}.jpg",
                "",
                f"{image_id:064x}",
                640,
                480,
                "[200, 120, 240, 240]" if has_face else None,
                None,
                None,
                start + timedelta(seconds=image_id),
                len(kinds),
                observers,
            )
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE annotation_imageprediction, annotation_painlabel, annotation_image, annotation_patient, "
            "core_auditevent RESTART IDENTITY CASCADE"
        )
        raw = cursor.cursor
        copy_rows(
            raw,
            "annotation_patient",
            ["id", "code", "cohort", "consent", "created_at"],
            ((i, f"B{i:06d}", "clinical", "granted", start) for i in range(1, patients + 1)),
        )
        copy_rows(
            raw,
            "annotation_image",
            [
                "id",
                "patient_id",
                "file",
                "thumbnail",
                "sha256",
                "width",
                "height",
                "face_box",
                "captured_at",
                "uploaded_by_id",
                "uploaded_at",
                "label_count",
                "observer_rater_count",
            ],
            images,
        )
        copy_rows(
            raw,
            "annotation_painlabel",
            ["id", "image_id", "rater_id", "nrs", "kind", "created_at", "supersedes_id", "is_undo", "is_retraction"],
            labels,
        )
        copy_rows(
            raw,
            "annotation_imageprediction",
            [
                "image_id",
                "model_version_id",
                "predicted_level",
                "predicted_level_name",
                "entropy",
                "margin",
                "level_rank",
                "computed_at",
            ],
            predictions,
        )
        for table in ("annotation_patient", "annotation_image", "annotation_painlabel"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
        cursor.execute("ANALYZE annotation_patient, annotation_image, annotation_painlabel, annotation_imageprediction")
    return {
        "images": n_images,
        "labels": len(labels),
        "patients": patients,
        "never_labeled": never_labeled,
        "predictions": len(predictions),
    }


def explain_queue(user) -> dict[str, float]:
    """Execution time of the queue's steps inside PostgreSQL, for one bench user. With an order
    that uses predictions the never-labeled step is two: predicted images, then the others."""
    from django.db import connection

    from annotation.queue_order import current_queue_order
    from annotation.selectors import queue_steps

    order = current_queue_order()
    steps = {}
    for reason, step in queue_steps(user, order=order):
        name = f"{reason}_step"
        if order.uses_predictions and reason == "unlabeled":
            name = "unlabeled_unpredicted_step" if "unlabeled_predicted_step" in steps else "unlabeled_predicted_step"
        steps[name] = step[:1]
    timings = {}
    for name, queryset in steps.items():
        sql, params = queryset.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0]
        plan = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
        timings[name + "_ms"] = round(plan["Execution Time"], 3)
    return timings


def preloaded_application():
    """gunicorn's app for this benchmark: painsite.wsgi's, loaded before forking (--preload)."""
    from painsite.wsgi import application

    return application


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(database_url: str, workers: int, scratch: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "False",
        "ALLOWED_HOSTS": "127.0.0.1",
        "PAINSITE_VAR_DIR": str(scratch),
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "painsite.settings",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "bench.labeling_queue:preloaded_application()",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--preload",
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(scratch / "gunicorn.log", "ab"),
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited; see {scratch / 'gunicorn.log'}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server, port
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("gunicorn did not start within 120 s")


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def worker_cpu_seconds(master_pid: int) -> tuple[float, float]:
    """CPU time used so far by gunicorn's worker processes, from /proc: (user, system) seconds."""
    user = system = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:  # fields[1] is the parent pid
            user += int(fields[11])  # utime, in clock ticks
            system += int(fields[12])  # stime
    ticks = os.sysconf("SC_CLK_TCK")
    return user / ticks, system / ticks


def request(port: int, method: str, path: str, token: str, body: dict | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    payload = None
    if body is not None:
        payload = json.dumps(body)
        headers["Content-Type"] = "application/json"
    connection.request(method, path, body=payload, headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data


def client_loop(
    port: int, token: str, steps: int, warmup: int, deadline: float, think: tuple[float, float], out: dict
) -> None:
    rng = random.Random(token)
    for step in range(warmup + steps):
        if time.monotonic() > deadline:
            out["time_limit"] += 1
            break
        if think[1]:
            time.sleep(rng.uniform(*think))
        started = time.perf_counter()
        status, data = request(port, "GET", "/api/queue/next/", token)
        got = time.perf_counter()
        if status == 204:
            out["empty"] += 1
            break
        if status != 200:
            out["errors"].append(f"GET {status} {data[:200]!r}")
            continue
        offered = json.loads(data)
        image_id = offered["id"]
        status, data = request(
            port, "POST", f"/api/images/{image_id}/labels/", token, {"nrs": rng.randint(0, 10), "kind": "observer"}
        )
        done = time.perf_counter()
        if status != 201:
            out["errors"].append(f"POST {status} {data[:200]!r}")
            continue
        out["scored"].append(image_id)
        if step >= warmup:
            out["measured"].append(image_id)
            out["reasons"][offered.get("reason", "")] += 1
            out["step_ms"].append(1000 * (done - started))
            out["get_ms"].append(1000 * (got - started))
            out["post_ms"].append(1000 * (done - got))


def run_clients(
    port: int, tokens: list[str], steps: int, warmup: int, seconds: float, think: tuple[float, float] = (0.0, 0.0)
) -> dict:
    deadline = time.monotonic() + seconds
    outs = [
        {
            "step_ms": [],
            "get_ms": [],
            "post_ms": [],
            "errors": [],
            "empty": 0,
            "time_limit": 0,
            "reasons": Counter(),
            "scored": [],
            "measured": [],
        }
        for _ in tokens
    ]
    threads = [
        threading.Thread(target=client_loop, args=(port, token, steps, warmup, deadline, think, out))
        for token, out in zip(tokens, outs)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    merged = {key: [value for out in outs for value in out[key]] for key in ("step_ms", "get_ms", "post_ms", "errors")}
    steps_done = len(merged["step_ms"])
    planned = steps * len(tokens)
    # An image scored by two of the clients in one load: two clinicians were handed the same image.
    scored_by = Counter(image for out in outs for image in set(out["scored"]))
    shared = sum(1 for out in outs for image in out["measured"] if scored_by[image] > 1)
    return {
        "steps": steps_done,
        "planned_steps": planned,
        "partial": steps_done < planned,
        "clients_stopped_by_empty_queue": sum(out["empty"] for out in outs),
        "clients_stopped_by_time_limit": sum(out["time_limit"] for out in outs),
        "measured_steps_by_queue_reason": dict(sum((out["reasons"] for out in outs), Counter())),
        "steps_on_an_image_another_client_scored": shared,
        "share_on_an_image_another_client_scored": round(shared / steps_done, 4) if steps_done else None,
        "seconds": round(elapsed, 2),
        "steps_per_second": round(steps_done / elapsed, 1) if elapsed else None,
        "p50_ms": round(statistics.median(merged["step_ms"]), 2) if steps_done else None,
        "p95_ms": round(percentile(merged["step_ms"], 0.95), 2) if steps_done else None,
        "get_p50_ms": round(statistics.median(merged["get_ms"]), 2) if steps_done else None,
        "post_p50_ms": round(statistics.median(merged["post_ms"]), 2) if steps_done else None,
        "errors": merged["errors"][:5],
        "error_count": len(merged["errors"]),
        # The samples themselves, for pooling rounds (removed before the JSON is written).
        "_samples": {key: merged[key] for key in ("step_ms", "get_ms", "post_ms")},
    }


def set_order(order: str) -> None:
    from annotation.queue_order import set_queue_order

    set_queue_order(order=order, actor=None)


def measure_load(size, shape, order, load, think, rater_ids, clients, tokens, server, port, args) -> dict:
    """Fill the data afresh, choose the queue order, and run one load against the server."""
    from django.db import connection

    # Every load starts from the same data: the one before it labeled part of it.
    loaded_at = time.perf_counter()
    filled = fill(size, rater_ids, shape)
    set_order(order)
    fill_seconds = round(time.perf_counter() - loaded_at, 1)
    plan = explain_queue(clients[0])
    connection.close()
    cpu_before = worker_cpu_seconds(server.pid)
    measured = run_clients(port, tokens, args.steps, args.warmup, args.seconds, think)
    # Warm-up steps are included: every step the workers served costs CPU.
    served = measured["steps"] + args.warmup * len(tokens)
    cpu_seconds = [after - before for after, before in zip(worker_cpu_seconds(server.pid), cpu_before)]
    user, system = (1000 * seconds / served for seconds in cpu_seconds)
    measured["_cpu"] = {"user_seconds": cpu_seconds[0], "system_seconds": cpu_seconds[1], "served": served}
    # System time is the kernel working for the workers: sockets, and each sync worker woken for
    # every new connection.
    measured.update(
        order=order,
        server_cpu_ms_per_step=round(user + system, 2),
        server_user_cpu_ms_per_step=round(user, 2),
        server_system_cpu_ms_per_step=round(system, 2),
        fill_seconds=fill_seconds,
        queue_sql=plan,
    )
    partial = " PARTIAL" if measured["partial"] else ""
    print(
        f"{size:>7} images, {filled['labels']} labels, {order}, {load}: {measured['steps']}/"
        f"{measured['planned_steps']} steps{partial}, p50 {measured['p50_ms']} ms, "
        f"p95 {measured['p95_ms']} ms (GET p50 {measured['get_p50_ms']} ms, POST p50 "
        f"{measured['post_p50_ms']} ms), {measured['steps_per_second']} steps/s, server CPU "
        f"{measured['server_cpu_ms_per_step']} ms/step (user {measured['server_user_cpu_ms_per_step']}, "
        f"system {measured['server_system_cpu_ms_per_step']}), on an image another client scored "
        f"{measured['share_on_an_image_another_client_scored']}, errors {measured['error_count']}, "
        f"queue SQL {plan}",
        flush=True,
    )
    measured.update({key: filled[key] for key in ("labels", "patients", "never_labeled", "predictions")})
    return measured


def pooled(runs: list[dict]) -> dict:
    """One order's rounds of a load as one measurement: latency percentiles over every measured
    step of every round, CPU per step over every served step; each round's p50 kept beside it."""
    samples = {
        key: [value for run in runs for value in run["_samples"][key]] for key in ("step_ms", "get_ms", "post_ms")
    }
    cpu = {key: sum(run["_cpu"][key] for run in runs) for key in ("user_seconds", "system_seconds", "served")}
    steps, seconds = sum(run["steps"] for run in runs), sum(run["seconds"] for run in runs)
    reasons: Counter = sum((Counter(run["measured_steps_by_queue_reason"]) for run in runs), Counter())
    shared = sum(run["steps_on_an_image_another_client_scored"] for run in runs)
    user, system = (1000 * cpu[key] / cpu["served"] for key in ("user_seconds", "system_seconds"))
    return {
        **{key: value for key, value in runs[0].items() if not key.startswith("_")},
        "rounds": len(runs),
        "p50_ms_by_round": [run["p50_ms"] for run in runs],
        "steps": steps,
        "planned_steps": sum(run["planned_steps"] for run in runs),
        "partial": any(run["partial"] for run in runs),
        "clients_stopped_by_empty_queue": sum(run["clients_stopped_by_empty_queue"] for run in runs),
        "clients_stopped_by_time_limit": sum(run["clients_stopped_by_time_limit"] for run in runs),
        "measured_steps_by_queue_reason": dict(reasons),
        "steps_on_an_image_another_client_scored": shared,
        "share_on_an_image_another_client_scored": round(shared / steps, 4) if steps else None,
        "seconds": round(seconds, 2),
        "steps_per_second": round(steps / seconds, 1) if seconds else None,
        "p50_ms": round(statistics.median(samples["step_ms"]), 2) if steps else None,
        "p95_ms": round(percentile(samples["step_ms"], 0.95), 2) if steps else None,
        "get_p50_ms": round(statistics.median(samples["get_ms"]), 2) if steps else None,
        "post_p50_ms": round(statistics.median(samples["post_ms"]), 2) if steps else None,
        "errors": [error for run in runs for error in run["errors"]][:5],
        "error_count": sum(run["error_count"] for run in runs),
        "server_cpu_ms_per_step": round(user + system, 2),
        "server_user_cpu_ms_per_step": round(user, 2),
        "server_system_cpu_ms_per_step": round(system, 2),
        "fill_seconds": runs[0]["fill_seconds"],
    }


def order_ratios(sizes: dict, baseline: str) -> dict:
    """Each other order's p50, p95 and server CPU per step over the baseline's, per size and load."""
    ratios: dict = {}
    for size, data in sizes.items():
        for order, loads in data.get("other_orders", {}).items():
            for load, measured in loads.items():
                base = data["loads"][load]
                ratios.setdefault(order, {}).setdefault(size, {})[load] = {
                    f"{figure}_ratio": round(measured[figure] / base[figure], 3)
                    if measured[figure] and base[figure]
                    else None
                    for figure in ("p50_ms", "p95_ms", "server_cpu_ms_per_step")
                } | {"partial": measured["partial"] or base["partial"]}
    return ratios


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server-url", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server, no database"
    )
    parser.add_argument("--database", default="painsite_bench", help="throw-away database, created and dropped here")
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--steps", type=int, default=60, help="measured steps per client and size")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured steps per client first")
    parser.add_argument("--seconds", type=float, default=90.0, help="time limit per size and load")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument(
        "--orders",
        default="arrival,uncertainty",
        help="queue orders to run side by side, the first as the baseline: arrival, uncertainty, level-balanced",
    )
    parser.add_argument("--rounds", type=int, default=4, help="turns each order takes per size and load (pooled)")
    args = parser.parse_args()
    orders = [part.strip() for part in args.orders.split(",") if part.strip()]
    if not orders or any(order not in ("arrival", "uncertainty", "level-balanced") for order in orders):
        parser.error("--orders lists arrival, uncertainty and/or level-balanced")
    if min(args.clients, args.workers, args.steps, args.rounds) < 1 or args.warmup < 0 or args.seconds <= 0:
        parser.error("--clients, --workers and --steps must be at least 1, --warmup at least 0, --seconds positive")
    started_machine = machine()

    database_url = f"{args.server_url.rstrip('/')}/{args.database}"
    scratch = Path(tempfile.mkdtemp(prefix="painsite-bench-queue-"))
    os.environ.update(
        DATABASE_URL=database_url,
        PAINSITE_VAR_DIR=str(scratch),
        DJANGO_SETTINGS_MODULE="painsite.settings",
        LOG_LEVEL="WARNING",
    )
    recreate_database(args.server_url, args.database)
    try:
        import django

        django.setup()
        from django.contrib.auth.models import User
        from django.core.management import call_command
        from rest_framework.authtoken.models import Token

        from painsite.core.roles import CLINICIAN, assign_role

        call_command("migrate", verbosity=0)
        clients = [User.objects.create_user(f"bench-clinician-{i}") for i in range(args.clients)]
        background = [User.objects.create_user(f"bench-rater-{i}") for i in range(BACKGROUND_RATERS)]
        for user in clients:
            assign_role(user, CLINICIAN)
        tokens = [Token.objects.create(user=user).key for user in clients]
        rater_ids = [user.pk for user in clients + background]

        sizes = {}
        planned_per_load = args.clients * (args.warmup + args.steps)
        for size in [int(part) for part in args.sizes.split(",")]:
            shape = data_shape(size, planned_per_load)
            data = {"images": size, "planned_steps_per_load_with_warmup": planned_per_load, "shape": shape, "loads": {}}
            server, port = start_server(database_url, args.workers, scratch)
            try:
                for load, think in LOADS.items():
                    # The orders take turns, one right after the other on the same data, and every
                    # other round in reverse (A B, B A, ...), so the machine's load drifting during
                    # the run weighs on every order alike.
                    runs: dict[str, list[dict]] = {order: [] for order in orders}
                    for number in range(args.rounds):
                        for order in orders if number % 2 == 0 else list(reversed(orders)):
                            measured = measure_load(
                                size, shape, order, load, think, rater_ids, clients, tokens, server, port, args
                            )
                            data.update(
                                {
                                    key: measured.pop(key)
                                    for key in ("labels", "patients", "never_labeled", "predictions")
                                }
                            )
                            runs[order].append(measured)
                    for order, order_runs in runs.items():
                        if order == orders[0]:
                            data["loads"][load] = pooled(order_runs)
                        else:
                            data.setdefault("other_orders", {}).setdefault(order, {})[load] = pooled(order_runs)
            finally:
                stop_server(server)
            sizes[str(size)] = data
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(args.server_url, args.database)

    small, large = min(sizes, key=int), max(sizes, key=int)
    ratios = {
        load: round(sizes[large]["loads"][load]["p50_ms"] / sizes[small]["loads"][load]["p50_ms"], 3)
        for load in LOADS
        if sizes[small]["loads"][load]["p50_ms"] and sizes[large]["loads"][load]["p50_ms"]
    }
    # A partial load measured fewer steps than planned: no target is judged on it (None).
    complete = {load: not any(size["loads"][load]["partial"] for size in sizes.values()) for load in LOADS}
    p95_met = {
        load: all(
            size["loads"][load]["p95_ms"] is not None and size["loads"][load]["p95_ms"] < TARGET_P95_MS
            for size in sizes.values()
        )
        if complete[load]
        else None
        for load in LOADS
    }
    largest_saturated = sizes[large]["loads"]["saturated"]
    cpu_met = (
        None if largest_saturated["partial"] else largest_saturated["server_cpu_ms_per_step"] <= TARGET_CPU_MS_PER_STEP
    )
    by_order = order_ratios(sizes, orders[0])
    order_met = {
        order: all(
            figures["p50_ms_ratio"] is not None
            and figures["p95_ms_ratio"] is not None
            and max(figures["p50_ms_ratio"], figures["p95_ms_ratio"]) <= TARGET_ORDER_RATIO
            for loads in by_size.values()
            for figures in loads.values()
        )
        if not any(figures["partial"] for loads in by_size.values() for figures in loads.values())
        else None
        for order, by_size in by_order.items()
    }
    result = {
        "benchmark": "labeling queue: GET /api/queue/next/ then POST /api/images/<id>/labels/",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**started_machine, "load_average_at_end": load_average()},
        "partial": any(load["partial"] for size in sizes.values() for load in size["loads"].values()),
        "settings": {
            "clients": args.clients,
            "gunicorn_workers": args.workers,
            "steps_per_client": args.steps,
            "warmup_per_client": args.warmup,
            "think_seconds": {load: list(think) for load, think in LOADS.items()},
            "orders": orders,
            "baseline_order": orders[0],
            "rounds_per_order": args.rounds,
            "images_without_a_face": f"1 in {NO_FACE_EVERY}",
        },
        "sizes": sizes,
        "p50_ratio_large_to_small": ratios,
        "order_to_baseline": by_order,
        "targets": {
            "order_to_baseline_ratio_at_most": TARGET_ORDER_RATIO,
            "order_ratio_met": order_met,
            "p95_ms_below": TARGET_P95_MS,
            "p50_ratio_at_most": TARGET_P50_RATIO,
            "server_cpu_ms_per_step_at_most": TARGET_CPU_MS_PER_STEP,
            "server_cpu_met": cpu_met,
            "p95_met": p95_met,
            "ratio_met": {
                load: ratio <= TARGET_P50_RATIO if complete[load] else None for load, ratio in ratios.items()
            },
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"p50 ratio {large}/{small} images: {ratios} (target <= {TARGET_P50_RATIO})")
    print(f"each order / {orders[0]}: {json.dumps(by_order)} (target <= {TARGET_ORDER_RATIO}): {order_met}")
    print(
        f"p95 target < {TARGET_P95_MS} ms met: {p95_met}; web-worker CPU per step at {large} images, saturated, "
        f"{largest_saturated['server_cpu_ms_per_step']} ms (target <= {TARGET_CPU_MS_PER_STEP}): {cpu_met}; "
        f"wrote {args.output}"
    )
    return result


if __name__ == "__main__":
    main()
