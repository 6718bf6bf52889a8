"""Refusals, unknown addresses and the log: what a new clinic sees under `make run`."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent.parent


def test_a_user_without_a_role_is_told_once_who_can_help_and_is_not_sent_back_to_the_same_refusal(client, outsider):
    client.force_login(outsider)
    page = client.get(reverse("dashboard")).content.decode()
    assert page.count("administrator") == 1
    assert "People page" in page and outsider.username in page
    assert 'href="/"' not in page.split('<main id="main">')[1]  # no dashboard link: it would 403 again
    assert "Log in as someone else" in page


def test_a_clinician_refused_a_page_is_offered_the_dashboard(client, clinician):
    client.force_login(clinician)
    response = client.get(reverse("audit"))
    assert response.status_code == 403
    assert "Back to the dashboard" in response.content.decode()


def _log_handlers(logger: logging.Logger) -> list[logging.Handler]:
    handlers: list[logging.Handler] = []
    while logger is not None:
        handlers += logger.handlers
        logger = logger.parent if logger.propagate else None
    return handlers


def test_a_refusal_is_logged_once_without_a_traceback(client, outsider, settings):
    settings.DEBUG = True  # Django's own console handler speaks only in DEBUG
    client.force_login(outsider)
    written = io.StringIO()
    # The handlers settings.LOGGING and Django configure (not pytest's own capture handlers).
    handlers = [h for h in _log_handlers(logging.getLogger("django.request")) if type(h) is logging.StreamHandler]
    streams = [handler.setStream(written) for handler in handlers]
    try:
        assert client.get(reverse("dashboard")).status_code == 403
    finally:
        for handler, stream in zip(handlers, streams):
            handler.setStream(stream)
    log = written.getvalue()
    assert log.count("Forbidden (Permission denied): /") == 1, log
    assert "Traceback" not in log


def test_the_api_docs_send_anonymous_visitors_to_log_in_and_refuse_accounts_without_a_role(client, outsider, clinician):
    response = client.get("/api/docs/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client.force_login(outsider)
    assert client.get("/api/docs/").status_code == 403
    client.force_login(clinician)
    assert client.get("/api/docs/").status_code == 200


def test_debug_is_off_unless_asked_for_so_unknown_urls_get_the_normal_404_page(tmp_path, client, clinician):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PAINSITE_", "SECRET_KEY", "DEBUG"))}
    probe = [sys.executable, "manage.py", "shell", "-c", "from django.conf import settings; print(settings.DEBUG)"]
    default = subprocess.run(
        probe, cwd=ROOT, env={**clean, "PAINSITE_VAR_DIR": str(tmp_path)}, capture_output=True, text=True, check=False
    )
    asked = subprocess.run(
        probe,
        cwd=ROOT,
        env={**clean, "PAINSITE_VAR_DIR": str(tmp_path), "DEBUG": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert (default.stdout.split()[-1], asked.stdout.split()[-1]) == ("False", "True"), default.stderr + asked.stderr
    client.force_login(clinician)
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and "There is nothing at this address." in response.content.decode()


def test_every_page_names_a_favicon_served_from_our_own_static_files(client, clinician):
    client.force_login(clinician)
    assert '<link rel="icon" href="/static/favicon.svg"' in client.get(reverse("dashboard")).content.decode()
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/favicon.svg"
    assert (ROOT / "static" / "favicon.svg").read_text().startswith("<svg")
