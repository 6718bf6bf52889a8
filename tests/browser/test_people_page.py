"""An admin (staff, not superuser) manages people on /people/ in headless Chromium."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from painsite.core.models import AuditEvent
from painsite.core.roles import CLINICIAN, RESEARCHER, role_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_admin_adds_a_person_gives_a_role_to_a_waiting_account_and_resets_a_password(
    page_for, admin_user, outsider, artifacts_dir
):
    page = page_for(admin_user)
    page.goto("/", wait_until="domcontentloaded", timeout=60_000)
    page.click("nav >> text=People")

    page.fill("#id_username", "nina")
    page.select_option("#id_role", CLINICIAN)
    page.click("button:has-text('Add person')")
    page.wait_for_selector("#shown-password")
    password = page.inner_text("#new-password")
    nina = User.objects.get(username="nina")
    assert role_of(nina) == CLINICIAN and nina.check_password(password)

    page.select_option(f"#role-{outsider.pk}", RESEARCHER)
    page.click(f"#person-{outsider.username} >> text=Set role")
    page.wait_for_selector(f".messages >> text={outsider.username} is now {RESEARCHER}")
    assert role_of(outsider) == RESEARCHER

    page.click("#person-nina >> text=Reset password")
    page.wait_for_selector("#shown-password >> text=New password for nina")
    nina.refresh_from_db()
    assert nina.check_password(page.inner_text("#new-password")) and not nina.check_password(password)
    page.screenshot(path=str(artifacts_dir / "people.png"), full_page=True)

    page.click("#person-nina >> text=Deactivate")
    page.wait_for_selector(".messages >> text=nina is deactivated")
    nina.refresh_from_db()
    assert not nina.is_active
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "user.create",
        "user.role_change",
        "user.password_reset",
        "user.deactivate",
    ]
    assert not [message for message in page.console_messages if message.startswith("pageerror")]
