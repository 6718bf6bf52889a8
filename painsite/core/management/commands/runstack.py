from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

BASE_DIR = Path(settings.BASE_DIR)


class Command(BaseCommand):
    help = (
        "Run the whole PainSite stack on one machine: the web server (gunicorn) and one Celery "
        "worker consuming every queue (default, training and monitoring), with its embedded beat scheduler "
        "for periodic checks. Ctrl-C (or SIGTERM) stops both cleanly."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
        parser.add_argument("--no-worker", action="store_true", help="start only the web server")

    def handle(self, *args, host: str, port: int, web_workers: int, no_worker: bool, **options) -> None:
        if not settings.DEBUG:
            call_command("collectstatic", interactive=False, verbosity=0)
        var_dir = Path(settings.VAR_DIR)
        var_dir.mkdir(parents=True, exist_ok=True)
        web = [
            sys.executable, "-m", "gunicorn", "painsite.wsgi:application",
            "--bind", f"{host}:{port}", "--workers", str(web_workers), "--threads", "4",
            "--timeout", "120", "--graceful-timeout", "20", "--access-logfile", "-",
        ]  # fmt: skip
        worker = [
            sys.executable, "-m", "celery", "-A", "painsite", "worker", "-Q", "default,training,monitoring",
            "-c", "1", "--loglevel", "INFO", "-B", "--schedule", str(var_dir / "celerybeat-schedule"),
        ]  # fmt: skip
        children: list[subprocess.Popen] = [subprocess.Popen(web, cwd=BASE_DIR)]
        if not no_worker:
            children.append(subprocess.Popen(worker, cwd=BASE_DIR))
        self.stdout.write(self.style.SUCCESS(f"PainSite is starting at http://{host}:{port}/  (Ctrl-C stops it)"))

        stopping = False

        def stop(signum, frame) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.5)
        finally:
            self._stop_all(children)
        failed = [child for child in children if child.returncode not in (0, -signal.SIGTERM, -signal.SIGINT)]
        if not stopping and failed:
            raise SystemExit(f"a process of the stack exited unexpectedly (exit {failed[0].returncode})")
        self.stdout.write("PainSite stopped.")

    def _stop_all(self, children: list[subprocess.Popen]) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
