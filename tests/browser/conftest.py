"""Headless Chromium (Debian's package) driven by Playwright, against pytest-django's live server.

Without /usr/bin/chromium these tests are skipped with the reason, unless
PAINSITE_REQUIRE_BROWSER=1 (set by CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    # A synthetic camera, so the camera pages can be tested headless.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]

# Playwright's sync API runs an event loop in this thread; the Django ORM calls the tests make
# between page actions are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def live_server(request):
    """pytest-django's live server, started with a MEDIA_URL Django's test media handler can parse.

    PainSite has no public media URL (MEDIA_URL is None: faces leave only through an
    authenticated view), and the live server's media handler fails on every request with None.
    The prefix given here only exists while the server thread starts; nothing links to it.
    """
    from django.test.utils import override_settings
    from pytest_django.live_server_helper import LiveServer

    address = request.config.getvalue("liveserver") or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS") or "localhost"
    with override_settings(MEDIA_URL="/no-public-media/"):
        server = LiveServer(address)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        reason = "Debian's chromium is not installed (/usr/bin/chromium); `make test` installs it with apt-get"
        if os.environ.get("PAINSITE_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " and PAINSITE_REQUIRE_BROWSER=1 forbids skipping browser tests")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def page_for(browser, live_server) -> Iterator[Callable[[User], object]]:
    """page_for(user) -> a Playwright page logged in as `user`, with base_url at the live server."""
    contexts = []

    def open_page(user: User, **context_options):
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        context = browser.new_context(base_url=live_server.url, **context_options)
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}])
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.console_messages = []
        page.on("console", lambda message: page.console_messages.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: page.console_messages.append(f"pageerror: {error}"))
        return page

    yield open_page
    for context in contexts:
        context.close()
