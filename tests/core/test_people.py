"""Admins manage people: create, role, deactivate, reset password; each change audited."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.urls import reverse

from painsite.core.models import AuditEvent
from painsite.core.roles import ADMIN, CLINICIAN, RESEARCHER, role_of
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_an_admin_who_is_not_a_superuser_creates_an_account_with_a_generated_password(admin_client, admin_user):
    assert not admin_user.is_superuser
    response = admin_client.post(reverse("people"), {"username": "nina", "role": CLINICIAN})
    assert response.status_code == 200
    nina = User.objects.get(username="nina")
    assert role_of(nina) == CLINICIAN and not nina.is_staff
    password = response.context["shown_password"]["password"]
    assert password in response.content.decode()
    assert nina.check_password(password)
    assert response["Cache-Control"].startswith("max-age=0")
    event = AuditEvent.objects.get(action="user.create")
    assert (event.actor, event.object_id, event.details["role"]) == (admin_user, str(nina.pk), CLINICIAN)
    assert password not in str(event.details)


def test_an_admin_creates_an_account_with_a_chosen_password(admin_client):
    response = admin_client.post(reverse("people"), {"username": "ravi", "role": RESEARCHER, "password": PASSWORD})
    assert response.status_code == 302
    assert User.objects.get(username="ravi").check_password(PASSWORD)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "ada", "role": CLINICIAN}, "already exists"),
        ({"username": "ADA", "role": CLINICIAN}, "already exists"),
        ({"username": "nina", "role": "superuser"}, "valid choice"),
        ({"username": "nina", "role": CLINICIAN, "password": "123"}, "password refused"),
        ({"username": "bad name!", "role": CLINICIAN}, "refused"),
    ],
)
def test_bad_account_requests_are_refused_with_a_reason_and_change_nothing(admin_client, data, message):
    before = (User.objects.count(), AuditEvent.objects.count())
    response = admin_client.post(reverse("people"), data)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert (User.objects.count(), AuditEvent.objects.count()) == before


def test_an_admin_changes_a_role_and_staff_status_follows_the_admin_role(admin_client, admin_user, clinician):
    admin_client.post(reverse("person-role", args=[clinician.pk]), {"role": ADMIN})
    clinician.refresh_from_db()
    assert role_of(clinician) == ADMIN and clinician.is_staff
    admin_client.post(reverse("person-role", args=[clinician.pk]), {"role": RESEARCHER})
    clinician.refresh_from_db()
    assert role_of(clinician) == RESEARCHER and not clinician.is_staff
    changes = [
        (e.details["from"], e.details["to"])
        for e in AuditEvent.objects.filter(action="user.role_change").order_by("id")
    ]
    assert changes == [(CLINICIAN, ADMIN), (ADMIN, RESEARCHER)]


def test_an_admin_gives_a_role_to_an_account_that_has_none(admin_client, outsider):
    admin_client.post(reverse("person-role", args=[outsider.pk]), {"role": CLINICIAN})
    assert role_of(outsider) == CLINICIAN
    assert admin_client.get(reverse("dashboard")).status_code == 200


def test_an_unknown_role_changes_nothing(admin_client, clinician):
    response = admin_client.post(reverse("person-role", args=[clinician.pk]), {"role": "owner"}, follow=True)
    assert "Role not changed" in response.content.decode()
    assert role_of(clinician) == CLINICIAN
    assert not AuditEvent.objects.filter(action="user.role_change").exists()


def test_a_deactivated_account_cannot_log_in_and_can_be_reactivated(client, admin_user, clinician):
    client.force_login(admin_user)
    client.post(reverse("person-active", args=[clinician.pk]), {"active": "0"})
    clinician.refresh_from_db()
    assert not clinician.is_active
    client.logout()
    assert not client.login(username=clinician.username, password=PASSWORD)
    client.force_login(admin_user)
    client.post(reverse("person-active", args=[clinician.pk]), {"active": "1"})
    actions = list(
        AuditEvent.objects.filter(object_id=str(clinician.pk)).order_by("id").values_list("action", flat=True)
    )
    assert actions == ["user.deactivate", "user.activate"]


def test_a_password_reset_shows_a_new_password_once_and_the_old_one_stops_working(admin_client, clinician):
    response = admin_client.post(reverse("person-password", args=[clinician.pk]))
    password = response.context["shown_password"]["password"]
    clinician.refresh_from_db()
    assert clinician.check_password(password) and not clinician.check_password(PASSWORD)
    event = AuditEvent.objects.get(action="user.password_reset")
    assert event.object_id == str(clinician.pk) and password not in str(event.details)


def test_an_admin_cannot_lock_themselves_out(admin_client, admin_user):
    admin_client.post(reverse("person-active", args=[admin_user.pk]), {"active": "0"})
    response = admin_client.post(reverse("person-role", args=[admin_user.pk]), {"role": CLINICIAN}, follow=True)
    assert "ask another admin" in response.content.decode()
    admin_user.refresh_from_db()
    assert admin_user.is_active and role_of(admin_user) == ADMIN


def test_an_admin_cannot_change_a_superuser_account(admin_client):
    root = User.objects.create_superuser("root", password=PASSWORD)
    admin_client.post(reverse("person-password", args=[root.pk]))
    admin_client.post(reverse("person-active", args=[root.pk]), {"active": "0"})
    root.refresh_from_db()
    assert root.is_active and root.check_password(PASSWORD)
    assert not AuditEvent.objects.filter(object_id=str(root.pk)).exists()


def test_the_people_page_searches_by_username(admin_client, clinician, researcher):
    page = admin_client.get(reverse("people"), {"q": clinician.username}).content.decode()
    assert f"person-{clinician.username}" in page and f"person-{researcher.username}" not in page


def test_the_stock_user_admin_stays_closed_to_admins_who_are_not_superusers(admin_client):
    # It can grant superuser status; the People page cannot.
    assert admin_client.get("/admin/auth/user/").status_code == 403
    assert reverse("people") in admin_client.get("/admin/").content.decode()


def test_create_user_reads_the_password_from_stdin_and_audits(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    out = io.StringIO()
    call_command("create_user", "sam", "--role", RESEARCHER, "--password-stdin", stdout=out)
    sam = User.objects.get(username="sam")
    assert sam.check_password(PASSWORD) and role_of(sam) == RESEARCHER
    assert PASSWORD not in out.getvalue()
    assert AuditEvent.objects.get(action="user.create").object_id == str(sam.pk)


def test_create_user_generates_and_prints_a_password_once():
    out = io.StringIO()
    call_command("create_user", "gia", "--role", ADMIN, "--generate-password", stdout=out)
    printed = out.getvalue().split("password: ")[1].split()[0]
    gia = User.objects.get(username="gia")
    assert gia.check_password(printed) and gia.is_staff and role_of(gia) == ADMIN


def test_create_user_refuses_unknown_roles_existing_users_and_no_terminal(monkeypatch):
    make_user("taken", CLINICIAN)
    with pytest.raises(CommandError, match="unknown role 'boss'; valid roles: clinician, researcher, admin"):
        call_command("create_user", "x", "--role", "boss", "--generate-password")
    with pytest.raises(CommandError, match="a user named 'taken' already exists"):
        call_command("create_user", "taken", "--role", CLINICIAN, "--generate-password")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="use --password-stdin or --generate-password"):
        call_command("create_user", "y", "--role", CLINICIAN)
    assert set(User.objects.values_list("username", flat=True)) == {"taken"}


def test_an_admin_who_resets_their_own_password_stays_logged_in(admin_client, admin_user):
    response = admin_client.post(reverse("person-password", args=[admin_user.pk]))
    assert response.status_code == 200
    assert admin_client.get(reverse("people")).status_code == 200
