"""Benchmark: latency of POST /api/assessments/ through a real gunicorn process, against the bare
forward pass of the same model in the same server process, in the same run.

Run alone: ``python bench/assess.py [--rounds 5] [--requests 10] [--image-size 224]`` prints the
figures and writes bench/results/assess.json. It trains a small head-mode model on synthetic faces
(at the real 224 px input, so the forward pass costs what production's does), makes it the
production version in a throw-away SQLite database, starts gunicorn on 127.0.0.1 (one worker, four
threads) and sends a 640x480 JPEG with token auth.

The bare forward pass is measured inside that gunicorn worker: the benchmark serves painsite's
WSGI application plus one extra path (this file's `application_with_bare_pass`, never part of the
product) that runs only the production model's forward pass on the face crop already at the
network's input size, in a request thread of the same pool, under the same per-model lock, torch
thread count and OpenMP wait policy as an assessment, and answers how long the pass took. Bare
passes, plain requests and heatmap requests are interleaved one at a time, so load from other
processes hits all three alike; a round is --requests of each, and the ratio request p50 / bare
p50 is reported per round with its median and spread over --rounds rounds.
Then four clients post at once for the throughput figure.
Target: p50 without heatmap <= 1.3x the bare forward pass (median over rounds).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.machine import machine

TARGET_RATIO = 1.3
WIDTH, HEIGHT = 640, 480
CONCURRENT_CLIENTS = 4


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(1000 * statistics.median(values), 1),
        "p95_ms": round(1000 * percentile(values, 95), 1),
        "n": len(values),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def multipart(fields: dict[str, str], jpeg: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="face.jpg"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n".encode()
        + jpeg
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Client:
    """One keep-alive connection to the server, like a browser tab."""

    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.token = token

    def assess(self, jpeg: bytes, *, heatmap: bool) -> tuple[float, dict]:
        body, content_type = multipart({"heatmap": "true" if heatmap else "false"}, jpeg)
        started = time.perf_counter()
        self.connection.request(
            "POST",
            "/api/assessments/",
            body=body,
            headers={
                "Content-Type": content_type,
                "Authorization": f"Token {self.token}",
                "Accept": "application/json",
            },
        )
        response = self.connection.getresponse()
        payload = json.loads(response.read())
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"the server answered {response.status}: {payload}")
        return elapsed, payload

    def bare_pass(self, jpeg: bytes) -> dict:
        self.connection.request("POST", BARE_PATH, body=jpeg, headers={"Content-Type": "image/jpeg"})
        response = self.connection.getresponse()
        payload = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"the bare pass answered {response.status}: {payload}")
        return payload


BARE_PATH = "/bench/bare-forward-pass/"
_bare_input: dict[str, object] = {}


def application_with_bare_pass():
    """gunicorn's app for this benchmark: painsite's WSGI application, plus BARE_PATH, which
    times only the forward pass of the production model that assessments use in this process."""
    from painsite.wsgi import application

    def app(environ, start_response):
        if environ.get("PATH_INFO") != BARE_PATH:
            return application(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.dumps(bare_forward_pass(environ["wsgi.input"].read(length))).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return app


def bare_forward_pass(jpeg: bytes) -> dict[str, object]:
    """Seconds for one forward pass of the served production model on the face crop of `jpeg`
    at the network's input size (cropped and resized once, outside the timing), and the state
    the pass ran in: device, torch threads and OpenMP wait policy of this process."""
    import torch
    from PIL import Image

    from annotation.faces import detect_face
    from modeling.inference import models, production_version
    from modeling.ml.transforms import crop_face

    served = models.get(production_version())
    if "picture" not in _bare_input:
        picture = Image.open(io.BytesIO(jpeg)).convert("RGB")
        size = served.model.image_size
        crop = crop_face(picture, detect_face(picture)).resize((size, size), Image.Resampling.BILINEAR)
        _bare_input["picture"] = crop
    started = time.perf_counter()
    served.predict(_bare_input["picture"], None)  # the lock and call an assessment goes through
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds, "device": served.model.device, "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(OpenMP default)"), "pid": os.getpid(),
    }  # fmt: skip


def start_server(port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "bench.assess:application_with_bare_pass()",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--threads",
        "4",
        "--worker-class",
        "gthread",
        "--timeout",
        "300",
    ]
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}: see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.3)
    stop_server(server)
    raise RuntimeError("gunicorn did not start listening within 120 s")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def main() -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds, each with its own ratio")
    parser.add_argument("--requests", type=int, default=10, help="measured requests of each kind per round")
    parser.add_argument("--concurrent-requests", type=int, default=8, help="requests per client in the 4-client run")
    parser.add_argument("--image-size", type=int, default=224, help="network input size the model is trained at")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "bench" / "results" / "assess.json", help="where the JSON goes"
    )
    args = parser.parse_args()
    if min(args.rounds, args.requests, args.concurrent_requests) < 1 or args.image_size < 32:
        parser.error("--rounds, --requests and --concurrent-requests must be at least 1, --image-size at least 32")

    started_machine = machine()
    scratch = Path(tempfile.mkdtemp(prefix="painsite-bench-assess-"))
    env_overrides = {
        "DATABASE_URL": f"sqlite:///{scratch / 'bench.sqlite3'}",
        "PAINSITE_VAR_DIR": str(scratch),
        "PAINSITE_MEDIA_ROOT": str(scratch / "media"),
        "PAINSITE_DATA_DIR": str(scratch / "data"),
        "PAINSITE_OFFLINE": "1",
        "DEBUG": "False",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "painsite.settings",
        # What painsite/wsgi.py sets for the server, so the bare pass runs under the same
        # OpenMP policy as the requests it is compared with.
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
    }
    os.environ.update(env_overrides)
    server = None
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from rest_framework.authtoken.models import Token

        call_command("migrate", verbosity=0)
        import numpy as np
        import torch

        from modeling.models import Stage
        from tests.conftest import make_user
        from tests.modeling.tiny_model import make_face, make_model_version, tiny_model

        print(f"training a head-mode model at {args.image_size} px on synthetic faces...", flush=True)
        result = tiny_model(image_size=args.image_size)
        version = make_model_version(result, name="v1", stage=Stage.PRODUCTION)
        user = make_user("bench-clinician", "clinician")
        token = Token.objects.create(user=user).key

        picture = make_face(seed=1, size=(WIDTH, HEIGHT))
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=90)
        jpeg = buffer.getvalue()

        port = free_port()
        print(f"starting gunicorn on 127.0.0.1:{port}...", flush=True)
        server = start_server(port, {**os.environ, **env_overrides}, scratch / "gunicorn.log")
        client = Client(port, token)
        for heatmap in (False, True, False):  # the first request loads the model into the server
            _, payload = client.assess(jpeg, heatmap=heatmap)
        assert payload["model_version"] == version.pk
        for _ in range(2):
            client.bare_pass(jpeg)

        load_before = os.getloadavg()[0]
        rounds = []
        for number in range(args.rounds):
            bare, plain, explained = [], [], []
            for _ in range(args.requests):
                state = client.bare_pass(jpeg)
                bare.append(state["seconds"])
                plain.append(client.assess(jpeg, heatmap=False)[0])
                explained.append(client.assess(jpeg, heatmap=True)[0])
            rounds.append({
                "bare_forward": summary_ms(bare), "request_without_heatmap": summary_ms(plain),
                "request_with_heatmap": summary_ms(explained),
                "p50_ratio_without_heatmap": round(statistics.median(plain) / statistics.median(bare), 3),
                "p50_ratio_with_heatmap": round(statistics.median(explained) / statistics.median(bare), 3),
                "load_average_1m": round(os.getloadavg()[0], 2),
            })  # fmt: skip
            print(f"round {number + 1}: bare p50 {rounds[-1]['bare_forward']['p50_ms']} ms, request p50 "
                  f"{rounds[-1]['request_without_heatmap']['p50_ms']} ms, ratio {rounds[-1]['p50_ratio_without_heatmap']}",
                  flush=True)  # fmt: skip

        concurrent_times: list[float] = []
        errors: list[BaseException] = []

        def run_client() -> None:
            own = Client(port, token)
            try:
                for _ in range(args.concurrent_requests):
                    concurrent_times.append(own.assess(jpeg, heatmap=False)[0])
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=run_client) for _ in range(CONCURRENT_CLIENTS)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        concurrent_seconds = time.perf_counter() - started
        if errors:
            raise errors[0]
        load_after = os.getloadavg()[0]

        ratios = [one["p50_ratio_without_heatmap"] for one in rounds]
        heatmap_ratios = [one["p50_ratio_with_heatmap"] for one in rounds]
        ratio = statistics.median(ratios)
        output = {
            "benchmark": "assess",
            "image_size": [WIDTH, HEIGHT],
            "network_input": args.image_size,
            "model": {"mode": "head", "backbone": result.backbone, "device": state["device"]},
            "server": "gunicorn 1 worker x 4 threads (gthread), SQLite, token auth, DEBUG off",
            "bare_forward_measured": "inside the gunicorn worker, in a request thread, under the served model's lock",
            "server_process": {key: state[key] for key in ("pid", "torch_threads", "omp_wait_policy")},
            "rounds": rounds,
            "p50_ratio_without_heatmap_to_bare_forward": {
                "median": round(ratio, 3),
                "min": min(ratios),
                "max": max(ratios),
                "per_round": ratios,
            },
            "p50_ratio_with_heatmap_to_bare_forward": {
                "median": round(statistics.median(heatmap_ratios), 3),
                "min": min(heatmap_ratios),
                "max": max(heatmap_ratios),
                "per_round": heatmap_ratios,
            },
            "target_ratio": TARGET_RATIO,
            "meets_target": ratio <= TARGET_RATIO,
            "concurrent": {
                "clients": CONCURRENT_CLIENTS,
                "requests": len(concurrent_times),
                "seconds": round(concurrent_seconds, 2),
                "assessments_per_second": round(len(concurrent_times) / concurrent_seconds, 2),
                **summary_ms(concurrent_times),
            },
            "machine": {
                **started_machine,
                "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
                "load_average_1m_before": round(load_before, 2),
                "load_average_1m_after": round(load_after, 2),
                "torch": torch.__version__,
                "numpy": np.__version__,
            },
        }
    finally:
        if server is not None:
            stop_server(server)
        shutil.rmtree(scratch, ignore_errors=True)

    path = args.output
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(output, indent=2) + "\n")
    print(
        f"POST /api/assessments/ p50 / bare forward p50 (same server process), median of {args.rounds} rounds: "
        f"x{ratio:.2f} (min x{min(ratios):.2f}, max x{max(ratios):.2f}; target x{TARGET_RATIO}); with heatmap "
        f"x{output['p50_ratio_with_heatmap_to_bare_forward']['median']:.2f}; {CONCURRENT_CLIENTS} clients: "
        f"{output['concurrent']['assessments_per_second']} assessments/s; load average {load_before:.1f} "
        f"on {os.cpu_count()} cores -> {path}"
    )
    return output


if __name__ == "__main__":
    main()
