"""Benchmark: latency of POST /api/assessments/ through a real gunicorn process, against the bare
forward pass of the same model on the same machine, in the same run.

Run alone: ``python bench/assess.py [--requests 20] [--image-size 224]`` prints the figures and
writes bench/results/assess.json. It trains a small head-mode model on synthetic faces (at the
real 224 px input, so the forward pass costs what production's does), makes it the production
version in a throw-away SQLite database, starts gunicorn on 127.0.0.1 (one worker, four threads)
and sends a 640x480 JPEG with token auth. Server requests and bare forward passes are interleaved
one at a time, so load from other processes hits both alike and they never compete with each other.
Then four clients post at once for the throughput figure.
Target: p50 without heatmap <= 1.3x the bare forward pass.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
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
        f"Content-Type: image/jpeg\r\n\r\n".encode() + jpeg + b"\r\n"
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
            headers={"Content-Type": content_type, "Authorization": f"Token {self.token}", "Accept": "application/json"},
        )
        response = self.connection.getresponse()
        payload = json.loads(response.read())
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"the server answered {response.status}: {payload}")
        return elapsed, payload


def start_server(port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "painsite.wsgi:application",
        "--bind", f"127.0.0.1:{port}",
        "--workers", "1",
        "--threads", "4",
        "--worker-class", "gthread",
        "--timeout", "300",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                              start_new_session=True)
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
    parser.add_argument("--requests", type=int, default=20, help="measured requests of each kind")
    parser.add_argument("--concurrent-requests", type=int, default=8, help="requests per client in the 4-client run")
    parser.add_argument("--image-size", type=int, default=224, help="network input size the model is trained at")
    args = parser.parse_args()

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
        from PIL import Image

        from annotation.faces import detect_face
        from modeling.ml.predict import load_model
        from modeling.ml.transforms import crop_face
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

        # The bare forward pass: the loaded model on the face crop already at the network's
        # input size, so preprocessing is a no-op and only the network runs.
        model = load_model(result.weights_path)
        face_box = detect_face(picture)
        network_input = crop_face(picture, face_box).resize((args.image_size, args.image_size), Image.Resampling.BILINEAR)
        for _ in range(2):
            model.predict_image(network_input, None)

        port = free_port()
        print(f"starting gunicorn on 127.0.0.1:{port}...", flush=True)
        server = start_server(port, {**os.environ, **env_overrides}, scratch / "gunicorn.log")
        client = Client(port, token)
        for heatmap in (False, True, False):  # the first request loads the model into the server
            _, payload = client.assess(jpeg, heatmap=heatmap)
        assert payload["model_version"] == version.pk

        load_before = os.getloadavg()[0]
        bare, plain, explained = [], [], []
        for _ in range(args.requests):
            started = time.perf_counter()
            model.predict_image(network_input, None)
            bare.append(time.perf_counter() - started)
            plain.append(client.assess(jpeg, heatmap=False)[0])
            explained.append(client.assess(jpeg, heatmap=True)[0])

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

        bare_summary = summary_ms(bare)
        plain_summary = summary_ms(plain)
        ratio = plain_summary["p50_ms"] / bare_summary["p50_ms"]
        output = {
            "benchmark": "assess",
            "image_size": [WIDTH, HEIGHT],
            "network_input": args.image_size,
            "model": {"mode": "head", "backbone": result.backbone, "device": model.device},
            "server": "gunicorn 1 worker x 4 threads (gthread), SQLite, token auth, DEBUG off",
            "bare_forward": bare_summary,
            "request_without_heatmap": plain_summary,
            "request_with_heatmap": summary_ms(explained),
            "p50_ratio_without_heatmap_to_bare_forward": round(ratio, 3),
            "p50_ratio_with_heatmap_to_bare_forward": round(statistics.median(explained) / statistics.median(bare), 3),
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
                "cpus": os.cpu_count(),
                "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
                "torch_threads": torch.get_num_threads(),
                "load_average_1m_before": round(load_before, 2),
                "load_average_1m_after": round(load_after, 2),
                "python": platform.python_version(),
                "torch": torch.__version__,
                "numpy": np.__version__,
                "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            },
        }
    finally:
        if server is not None:
            stop_server(server)
        shutil.rmtree(scratch, ignore_errors=True)

    path = ROOT / "bench" / "results" / "assess.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(output, indent=2) + "\n")
    print(
        f"bare forward p50 {bare_summary['p50_ms']} ms; POST /api/assessments/ p50 {plain_summary['p50_ms']} ms "
        f"(x{ratio:.2f}, target x{TARGET_RATIO}), p95 {plain_summary['p95_ms']} ms; with heatmap p50 "
        f"{output['request_with_heatmap']['p50_ms']} ms; {CONCURRENT_CLIENTS} clients: "
        f"{output['concurrent']['assessments_per_second']} assessments/s; load average {load_before:.1f} "
        f"on {os.cpu_count()} cores -> {path}"
    )
    return output


if __name__ == "__main__":
    main()
