"""Real `celery worker` processes for tests.

The worker is a separate process, like in production: it reads the same test database (a
SQLite file, or PostgreSQL when DATABASE_URL is set) and the same broker (an embedded SQLite
broker file per test session, or Redis/RabbitMQ when CELERY_BROKER_URL is set), and the same
media and data folders as the test. Tests using it need `pytest.mark.django_db(transaction=True)`
so that what they write is committed and visible to the worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import kombu.pools
from django.conf import settings
from django.db import connection

from painsite.celery import app as celery_app

REPO_ROOT = Path(__file__).resolve().parent.parent


def database_url_for_subprocess() -> str:
    """The URL of the database this test session is really using (the test database)."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    if db["ENGINE"] == "django.db.backends.postgresql":
        auth = quote(db["USER"] or "")
        if db.get("PASSWORD"):
            auth += ":" + quote(db["PASSWORD"])
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or "5432"
        return f"postgres://{auth}@{host}:{port}/{db['NAME']}"
    raise RuntimeError(f"no subprocess URL for database engine {db['ENGINE']}")


def point_celery_at(url: str) -> None:
    """Make this process's Celery app publish to `url` from now on.

    Celery reads the CELERY_BROKER_URL environment variable before its own settings, and kombu
    keeps producer pools per connection in a process-wide registry: both are reset, or tasks
    would still go to (or fail on) the previous broker.
    """
    if "CELERY_BROKER_URL" in os.environ:
        os.environ["CELERY_BROKER_URL"] = url
    # Django-namespaced settings: the key is CELERY_BROKER_URL, not broker_url.
    celery_app.conf.update(CELERY_BROKER_URL=url)
    kombu.pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def use_test_broker(tmp_dir: Path) -> str:
    """Point this process's Celery app at the test broker and return its URL.

    With CELERY_BROKER_URL set (CI: Redis) that broker is used and its queues are purged;
    otherwise each test session gets its own embedded SQLite broker file, so a developer's
    running `make run` worker never takes test tasks.
    """
    url = os.environ.get("CELERY_BROKER_URL") or f"sqla+sqlite:///{tmp_dir / 'test-broker.sqlite3'}"
    point_celery_at(url)
    if url.startswith(("redis://", "amqp://")):
        # Leftovers of an earlier, interrupted test session must not reach this session's workers.
        with celery_app.connection_for_write() as conn:
            channel = conn.default_channel
            for queue in ("default", "training"):
                channel.queue_declare(queue=queue, durable=True, auto_delete=False)
                channel.queue_purge(queue)
    return url


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    hostname: str
    log_path: Path
    queues: tuple[str, ...]
    env: dict[str, str] = field(repr=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once, as a crash or OOM kill would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def worker_environment(broker_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "painsite.settings",
        "DATABASE_URL": database_url_for_subprocess(),
        "CELERY_BROKER_URL": broker_url,
        "PAINSITE_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PAINSITE_DATA_DIR": str(settings.PAINSITE_DATA_DIR),
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


@contextmanager
def celery_worker(
    *,
    broker_url: str,
    queues: tuple[str, ...] = ("default", "training"),
    concurrency: int = 1,
    log_dir: Path,
    extra_args: tuple[str, ...] = (),
    ready_timeout: float = 90,
    **extra_env: str,
) -> Iterator[WorkerProcess]:
    """Start `celery -A painsite worker` on `queues`, wait until it is ready, stop it after."""
    hostname = f"test-{'-'.join(queues)}-{uuid.uuid4().hex[:6]}@%h"
    log_path = log_dir / f"worker-{uuid.uuid4().hex[:6]}.log"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = worker_environment(broker_url, **extra_env)
    command = [
        sys.executable, "-m", "celery", "-A", "painsite", "worker",
        "-Q", ",".join(queues), "-c", str(concurrency), "-n", hostname,
        "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
        *extra_args,
    ]  # fmt: skip
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = WorkerProcess(process=process, hostname=hostname, log_path=log_path, queues=queues, env=env)
    try:
        deadline = time.monotonic() + ready_timeout
        while " ready." not in worker.log():
            if process.poll() is not None:
                raise RuntimeError(f"celery worker exited with {process.returncode}:\n{worker.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"celery worker not ready after {ready_timeout}s:\n{worker.log()}")
            time.sleep(0.2)
        yield worker
    except BaseException:
        # pytest shows captured output for a failing test: the worker's side of the story.
        print(f"---- log of celery worker {hostname} ----\n{worker.log()}")
        raise
    finally:
        worker.stop()


def wait_for(predicate, *, timeout: float = 60, interval: float = 0.2, message: str = "condition") -> None:
    """Poll `predicate` until it is truthy; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
