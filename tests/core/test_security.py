from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from painsite.core.models import AuditEvent
from tests.conftest import PASSWORD, api_client_for

pytestmark = pytest.mark.django_db


def fail_logins(client, username: str, times: int, address: str = "127.0.0.1") -> None:
    for _ in range(times):
        client.post(reverse("login"), {"username": username, "password": "wrong-password"}, REMOTE_ADDR=address)


def test_the_login_page_locks_an_account_after_repeated_failures(client, clinician, settings):
    fail_logins(client, "carla", settings.PAINSITE_LOGIN_FAILURE_LIMIT)
    response = client.post(reverse("login"), {"username": "carla", "password": PASSWORD})
    assert response.status_code == 200
    assert "Too many failed log-in attempts" in response.content.decode()
    assert client.get(reverse("dashboard")).status_code == 302


def test_a_lockout_is_audit_logged_once(client, clinician, settings):
    fail_logins(client, "carla", settings.PAINSITE_LOGIN_FAILURE_LIMIT + 2)
    events = AuditEvent.objects.filter(action="auth.lockout")
    assert events.count() == 1
    assert events.get().details["username"] == "carla"


def test_fewer_failures_than_the_limit_do_not_lock_and_success_resets_the_count(client, clinician, settings):
    fail_logins(client, "carla", settings.PAINSITE_LOGIN_FAILURE_LIMIT - 1)
    assert client.post(reverse("login"), {"username": "carla", "password": PASSWORD}).status_code == 302
    client.logout()
    fail_logins(client, "carla", settings.PAINSITE_LOGIN_FAILURE_LIMIT - 1)
    assert client.post(reverse("login"), {"username": "carla", "password": PASSWORD}).status_code == 302


def test_the_token_endpoint_is_locked_too(clinician, settings):
    client = api_client_for(None)
    for _ in range(settings.PAINSITE_LOGIN_FAILURE_LIMIT):
        client.post("/api/auth/token/", {"username": "carla", "password": "wrong"}, format="json")
    response = client.post("/api/auth/token/", {"username": "carla", "password": PASSWORD}, format="json")
    assert response.status_code == 429
    assert "Too many failed log-in attempts" in response.json()["error"]
    assert int(response.headers["Retry-After"]) == settings.PAINSITE_LOGIN_LOCKOUT_SECONDS
    assert not Token.objects.filter(user=clinician).exists()


def test_failures_from_one_address_do_not_lock_the_account_out_elsewhere(client, clinician, settings):
    """Someone guessing from another machine cannot keep a clinician from logging in at theirs."""
    fail_logins(client, "carla", settings.PAINSITE_LOGIN_FAILURE_LIMIT, address="203.0.113.9")
    locked = client.post(reverse("login"), {"username": "carla", "password": PASSWORD}, REMOTE_ADDR="203.0.113.9")
    assert "Too many failed log-in attempts" in locked.content.decode()
    at_the_ward = client.post(reverse("login"), {"username": "carla", "password": PASSWORD}, REMOTE_ADDR="10.1.2.3")
    assert at_the_ward.status_code == 302


def test_a_lockout_expires_after_the_cool_off(client, clinician, settings):
    fail_logins(client, "carla", settings.PAINSITE_LOGIN_FAILURE_LIMIT)
    assert client.post(reverse("login"), {"username": "carla", "password": PASSWORD}).status_code == 200
    # The failures are recorded with their time; move them to just before the cool-off began.
    cool_off_ago = timezone.now() - timedelta(seconds=settings.PAINSITE_LOGIN_LOCKOUT_SECONDS + 1)
    AccessAttempt.objects.filter(username="carla").update(attempt_time=cool_off_ago)
    assert client.post(reverse("login"), {"username": "carla", "password": PASSWORD}).status_code == 302


def test_a_revoked_token_no_longer_authenticates(clinician):
    client = api_client_for(None)
    token = client.post("/api/auth/token/", {"username": "carla", "password": PASSWORD}, format="json").json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.delete("/api/auth/token/").status_code == 204
    assert not Token.objects.filter(key=token).exists()
    assert client.get("/api/schema/", {"format": "json"}).status_code == 401
    assert AuditEvent.objects.filter(action="auth.token.revoke", actor=clinician).exists()


def test_pages_send_security_headers(client, clinician):
    client.force_login(clinician)
    response = client.get(reverse("dashboard"))
    csp = response["Content-Security-Policy"]
    script_src = next(part for part in csp.split(";") if part.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_no_page_template_uses_inline_script_or_event_handler_attributes():
    """Inline scripts would be blocked by the CSP; JavaScript lives in static/js."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent.parent / "templates"
    offenders = []
    for template in root.rglob("*.html"):
        text = template.read_text()
        for match in re.finditer(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", text):
            offenders.append(f"{template.relative_to(root)}: {match.group(0)}")
        if re.search(r"\son(click|load|change|submit|input|keydown|keyup)=", text):
            offenders.append(f"{template.relative_to(root)}: inline event handler")
    assert not offenders, offenders


def test_sessions_expire(settings):
    assert 0 < settings.SESSION_COOKIE_AGE <= 12 * 3600
    assert settings.SESSION_COOKIE_HTTPONLY


def test_every_form_page_carries_a_csrf_token(client, clinician):
    response = client.get(reverse("login"))
    assert b"csrfmiddlewaretoken" in response.content
