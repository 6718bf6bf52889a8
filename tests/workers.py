"""Real `celery worker` processes for tests.

The worker is a separate process, like in production: it reads the same test database (a
SQLite file, or PostgreSQL when DATABASE_URL is set), the same media and data folders as the
test, and a broker that belongs to one test alone (see `own_broker`): an embedded SQLite broker
file in the test's folder, or, when CELERY_BROKER_URL names a Redis server (CI), that database
under a key prefix of the test's own. Tests using it need
`pytest.mark.django_db(transaction=True)` so that what they write is committed and visible to
the worker.

Why a broker per test: a broker outlives the workers that read it. A beat scheduler sends
`reap_stale_runs` every second in the crash-recovery test; on a busy machine it sends faster than
its worker takes them, and what is left in a shared broker reaches the next test's worker ahead of
that test's own task.
"""

from __future__ import annotations

import os
import signal
import socket
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


# What CELERY_BROKER_URL said when the tests started: point_celery_at() rewrites the variable.
CONFIGURED_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
KEY_PREFIX_VARIABLE = "CELERY_BROKER_KEY_PREFIX"  # read by painsite/settings.py (Redis only)


def current_broker() -> tuple[str, str]:
    """(URL, Redis key prefix) this process's Celery app publishes to now."""
    options = celery_app.conf.broker_transport_options or {}
    return celery_app.conf.broker_url, options.get("global_keyprefix", "")


def point_celery_at(url: str, *, key_prefix: str = "") -> None:
    """Make this process's Celery app, and processes started from it, use `url` from now on.

    Celery reads the CELERY_BROKER_URL environment variable before its own settings, and kombu
    keeps producer pools per connection in a process-wide registry: both are reset, or tasks
    would still go to (or fail on) the previous broker. `key_prefix` (Redis) goes into the
    environment too, so a worker or web server started by the test reads the same keys.
    """
    if "CELERY_BROKER_URL" in os.environ:
        os.environ["CELERY_BROKER_URL"] = url
    if key_prefix:
        os.environ[KEY_PREFIX_VARIABLE] = key_prefix
    else:
        os.environ.pop(KEY_PREFIX_VARIABLE, None)
    options = {k: v for k, v in (celery_app.conf.broker_transport_options or {}).items() if k != "global_keyprefix"}
    if key_prefix:
        options["global_keyprefix"] = key_prefix
    # Django-namespaced settings: the keys are CELERY_BROKER_URL..., not broker_url.
    celery_app.conf.update(CELERY_BROKER_URL=url, CELERY_BROKER_TRANSPORT_OPTIONS=options)
    kombu.pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def delete_prefixed_keys(url: str, key_prefix: str) -> None:
    """Drop what a test left under its Redis key prefix (queues, bindings, unacknowledged tasks)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{key_prefix}*", count=500))
        if keys:
            client.delete(*keys)
    except redis.ConnectionError:
        pass  # a broker that is gone holds nothing
    finally:
        client.close()


@contextmanager
def own_broker(folder: Path) -> Iterator[str]:
    """Point this process's Celery app at a broker no other test uses; yield its URL.

    Without CELERY_BROKER_URL: a new SQLite broker file in `folder` (so a developer's running
    `make run` worker never takes test tasks either). With a Redis CELERY_BROKER_URL: that
    database under a new key prefix, whose keys are deleted afterwards. RabbitMQ: the configured
    virtual host with its queues purged first (a virtual host cannot be made from here).
    Afterwards the app publishes where it did before.
    """
    previous = current_broker()
    configured = CONFIGURED_BROKER_URL
    key_prefix = ""
    if not configured or configured.startswith("sqla+sqlite"):
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqla+sqlite:///{folder / f'broker-{uuid.uuid4().hex[:8]}.sqlite3'}"
    else:
        url = configured
        if url.startswith(("redis://", "rediss://")):
            key_prefix = f"painsite-test-{uuid.uuid4().hex[:10]}:"
    point_celery_at(url, key_prefix=key_prefix)
    try:
        if url.startswith("amqp://"):
            with celery_app.connection_for_write() as conn:
                for queue in ("default", "training", "monitoring"):
                    conn.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False)
                    conn.default_channel.queue_purge(queue)
        yield url
    finally:
        point_celery_at(previous[0], key_prefix=previous[1])
        if key_prefix:
            delete_prefixed_keys(url, key_prefix)


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    hostname: str
    log_path: Path
    queues: tuple[str, ...]
    env: dict[str, str] = field(repr=False)
    schedule_path: Path | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once, as a crash or OOM kill would."""
        signal_group(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 30) -> None:
        """Warm shutdown, then SIGKILL for whatever of its process group is left.

        The group holds the pool children and an embedded beat: a beat that outlived its worker
        would go on sending tasks to the broker after the test."""
        if self.process.poll() is None:
            signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        end_group(self.process.pid)
        if self.schedule_path is not None:
            # The beat's schedule file (shelve adds a suffix on some dbm back ends).
            for leftover in self.schedule_path.parent.glob(self.schedule_path.name + "*"):
                leftover.unlink()

    def alive_in_group(self) -> bool:
        return group_exists(self.process.pid)


def signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass  # all of it has exited already


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def end_group(pgid: int, *, timeout: float = 30) -> None:
    """SIGKILL every process left in the group and wait until the kernel has removed them."""
    deadline = time.monotonic() + timeout
    while group_exists(pgid):
        signal_group(pgid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes of group {pgid} survived SIGKILL for {timeout}s")
        time.sleep(0.05)


def worker_environment(broker_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "painsite.settings",
        "DATABASE_URL": database_url_for_subprocess(),
        "CELERY_BROKER_URL": broker_url,
        "PAINSITE_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PAINSITE_DATA_DIR": str(settings.PAINSITE_DATA_DIR),
        "PYTHONUNBUFFERED": "1",
        # A worker computes new images' features only where a test asks for it
        # (tests/system/test_features_on_arrival.py): elsewhere it would compete with the
        # training or the timing a test is about.
        "PAINSITE_FEATURES_ON_ARRIVAL": "0",
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
    beat: bool = False,
    extra_args: tuple[str, ...] = (),
    ready_timeout: float = 300,
    **extra_env: str,
) -> Iterator[WorkerProcess]:
    """Start `celery -A painsite worker` on `queues`, wait until it is ready, stop it after.

    Ready means the worker logged "<name> ready.", which Celery does once its consumer takes
    tasks from the broker. Start-up time on a busy machine is no guess: the wait ends when that
    line appears or the process dies; `ready_timeout` only bounds a worker that hangs. `beat`
    embeds the beat scheduler with a schedule file of this worker's own, removed afterwards.
    """
    name = f"test-{'-'.join(queues)}-{uuid.uuid4().hex[:6]}"
    hostname = f"{name}@%h"
    ready_line = f"{name}@{socket.gethostname()} ready."
    log_path = log_dir / f"worker-{name}.log"
    log_dir.mkdir(parents=True, exist_ok=True)
    schedule_path = log_dir / f"celerybeat-schedule-{name}" if beat else None
    env = worker_environment(broker_url, **extra_env)
    command = [
        sys.executable, "-m", "celery", "-A", "painsite", "worker",
        "-Q", ",".join(queues), "-c", str(concurrency), "-n", hostname,
        "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
        *(("-B", "--schedule", str(schedule_path)) if schedule_path else ()),
        *extra_args,
    ]  # fmt: skip
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = WorkerProcess(
        process=process, hostname=hostname, log_path=log_path, queues=queues, env=env, schedule_path=schedule_path
    )
    try:
        deadline = time.monotonic() + ready_timeout
        while ready_line not in worker.log():
            if process.poll() is not None:
                raise RuntimeError(f"celery worker exited with {process.returncode}:\n{worker.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"celery worker hung: not ready after {ready_timeout}s:\n{worker.log()}")
            time.sleep(0.1)
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
