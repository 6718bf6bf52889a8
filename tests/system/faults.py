"""Real services to break in fault tests: a Redis broker and a PostgreSQL server of their own,
on spare loopback ports, started and stopped by the test (never the shared ones)."""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.workers import current_broker, point_celery_at


def spare_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


class RedisServer:
    """`redis-server` on its own port, without persistence; start() and stop() at will."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(lambda: port_is_open(self.port), timeout=20, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def queue_length(self, queue: str) -> int:
        output = subprocess.run(
            ["redis-cli", "-p", str(self.port), "llen", queue], capture_output=True, text=True, check=True, timeout=10
        ).stdout
        return int(output.strip())


def redis_available() -> bool:
    return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None


@contextmanager
def celery_publishing_to(url: str) -> Iterator[None]:
    """Point this process's Celery producer (what the web process uses to send tasks) at `url`."""
    previous = current_broker()
    point_celery_at(url)  # no key prefix: the test reads this server's queues by their own names
    try:
        yield
    finally:
        point_celery_at(previous[0], key_prefix=previous[1])


def postgres_bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """A throwaway PostgreSQL cluster in `data_dir` on its own port (trust auth, loopback only).

    PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user."""

    def __init__(self, port: int) -> None:
        self.bin = postgres_bin_dir()
        # Not under pytest's tmp_path: that is private to root, and the server runs as postgres.
        self.base_dir = Path(tempfile.mkdtemp(prefix="painsite-postgres-"))
        self.data_dir = self.base_dir / "data"
        self.port = port
        self.log = self.base_dir / "postgres.log"
        self.url = f"postgres://postgres@127.0.0.1:{port}/painsite"

    def _as_owner(self, *command: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)

    def _run(self, *command: str, timeout: float = 120) -> None:
        subprocess.run(self._as_owner(*command), check=True, capture_output=True, timeout=timeout)

    def _start_command(self) -> list[str]:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off"
        return self._as_owner(
            str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log), "-o", options, "-w", "start"
        )

    def _stop_command(self, mode: str) -> list[str]:
        return self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def restart_shell_command(self, *, down_seconds: float) -> str:
        """A shell line that stops the server (fast: open sessions are cut), waits, starts it."""
        stop, start = shlex.join(self._stop_command("fast")), shlex.join(self._start_command())
        return f"{stop} && sleep {down_seconds} && {start}"

    def init(self) -> None:
        self.data_dir.mkdir()
        self.log.touch()
        if os.geteuid() == 0:
            for path in (self.base_dir, self.data_dir, self.log):
                shutil.chown(path, "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "painsite")

    def start(self) -> None:
        subprocess.run(self._start_command(), check=True, capture_output=True, timeout=120)

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(self._stop_command(mode), check=True, capture_output=True, timeout=120)

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.base_dir, ignore_errors=True)


def postgres_unavailable_reason() -> str | None:
    if postgres_bin_dir() is None:
        return "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to own a throwaway cluster"
        if shutil.which("runuser") is None:
            return "running as root without runuser to start PostgreSQL as the postgres user"
    return None
