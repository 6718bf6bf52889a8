"""Smoke run of what `make run` starts: migrate, seed a small demo, create demo users, start
web + worker on the embedded defaults, log in as each role, load the dashboard, run one task
through the worker, then stop the stack with SIGINT as Ctrl-C would."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"


def manage(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def log_in_and_get_dashboard(username: str, password: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login_page = opener.open(f"{BASE}/accounts/login/", timeout=30).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page).group(1)
    data = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
    request = urllib.request.Request(f"{BASE}/accounts/login/", data=data.encode(), headers={"Referer": BASE})
    page = opener.open(request, timeout=30).read().decode()
    if "Dashboard" not in page or "count-images" not in page:
        sys.exit(f"{username} could not log in and see the dashboard")
    return page


def main() -> None:
    var_dir = Path(tempfile.mkdtemp(prefix="painsite-smoke-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env["PAINSITE_VAR_DIR"] = str(var_dir)
    manage("migrate", "--noinput", env=env)
    print(manage("seed_demo", "--patients", "4", "--images-per-patient", "2", "--seed", "1", env=env))
    password_file = var_dir / "demo-passwords"
    manage("create_demo_users", "--password-file", str(password_file), env=env)
    stack = subprocess.Popen(
        [PYTHON, "manage.py", "runstack", "--port", str(PORT)], cwd=ROOT, env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{BASE}/accounts/login/", timeout=5)
                break
            except OSError:
                if stack.poll() is not None or time.monotonic() > deadline:
                    sys.exit("the web server did not come up")
                time.sleep(1)
        for line in password_file.read_text().splitlines():
            username, password = line.split()
            page = log_in_and_get_dashboard(username, password)
            print(f"{username}: dashboard OK ({len(page)} bytes)")
        print(manage("ping_worker", "--timeout", "120", env=env).strip())
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            stack.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
            sys.exit("the stack did not stop within 60 s of Ctrl-C")
    print("smoke run passed: web + worker on SQLite and the embedded broker, stopped cleanly")


if __name__ == "__main__":
    main()
