"""The refusal and not-found pages as a new account sees them in headless Chromium."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_account_without_a_role_reads_why_once_and_can_log_in_as_someone_else(page_for, outsider, artifacts_dir):
    page = page_for(outsider)
    response = page.goto("/", wait_until="domcontentloaded", timeout=60_000)
    assert response.status == 403
    text = page.inner_text("main")
    assert text.count("administrator") == 1 and outsider.username in text
    assert page.locator("main a:has-text('Back to the dashboard')").count() == 0
    assert page.evaluate("document.querySelector('link[rel=icon]').href").endswith("/static/favicon.svg")
    page.screenshot(path=str(artifacts_dir / "403-no-role.png"), full_page=True)
    page.click("text=Log in as someone else")
    page.wait_for_url("**/accounts/login/**")


def test_an_unknown_address_shows_the_normal_not_found_page(page_for, clinician, artifacts_dir):
    page = page_for(clinician)
    response = page.goto("/no-such-page/", wait_until="domcontentloaded", timeout=60_000)
    assert response.status == 404
    assert "There is nothing at this address." in page.inner_text("main")
    page.screenshot(path=str(artifacts_dir / "404.png"), full_page=True)
