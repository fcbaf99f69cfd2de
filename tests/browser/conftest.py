"""Browser tests: Playwright drives Debian's chromium against a live server, with real worker processes.

Collected only when GREENROOM_BROWSER_TESTS=1 (`make test-browser` sets it), so `make test` stays
browser-free. The stack of each test: pytest-django's `live_server` (a threaded WSGI server on the
test database, serving static files through staticfiles' finders), real Dramatiq workers from
`start_workers` on the suite's private Redis, and a headless chromium at GREENROOM_CHROMIUM
(default /usr/bin/chromium). Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.browser.support import ARTIFACTS, PASSWORD, TIMEOUT_MS, log_in, wait_for_streams_to_close

ENABLED = os.environ.get("GREENROOM_BROWSER_TESTS") == "1"
# Without the switch, pytest does not even import the test modules.
collect_ignore_glob = [] if ENABLED else ["test_*.py"]

# The browser binary: Debian's chromium package (`apt-get install chromium`).
CHROMIUM = os.environ.get("GREENROOM_CHROMIUM", "/usr/bin/chromium")

_reports = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Kept on the item so that the `pages` fixture knows, while tearing down, whether the test failed.
    report: pytest.TestReport = yield
    item.stash.setdefault(_reports, {})[report.when] = report
    return report


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    """A headless chromium of its own for the test."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: apt-get install -y chromium, or set GREENROOM_CHROMIUM")
    # Playwright's sync API keeps an asyncio loop running on this thread, and Django refuses ORM calls
    # from a thread with a running loop; the ORM calls here are plain synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
            # While that loop runs, asgiref gives this thread a second set of database connections,
            # which Django's own teardown never sees; left open, PostgreSQL refuses to drop the test
            # database at the end.
            connections.close_all()


@pytest.fixture
def staff_user(transactional_db: None, django_user_model: Any) -> Any:
    """An operator: staff, no other permission."""
    return django_user_model.objects.create_user(username="operator", password=PASSWORD, is_staff=True)


@pytest.fixture
def member(transactional_db: None, django_user_model: Any) -> Any:
    """An end user: not staff, owns the jobs they enqueue."""
    return django_user_model.objects.create_user(username="member", password=PASSWORD)


@pytest.fixture
def pages(browser: Browser, live_server: Any, request: pytest.FixtureRequest) -> Iterator[Callable[..., Page]]:
    """`pages(user=None)`: a page in a fresh browser context on the live server, logged in as `user`.

    Staff log in through the /admin/login/ form, as an operator would. The admin's form refuses
    non-staff accounts, so a non-staff user gets a session made by Django's test client instead.
    A failed test leaves a screenshot of each page in test-artifacts/.
    """
    expect.set_options(timeout=TIMEOUT_MS)
    contexts: list[BrowserContext] = []
    opened: list[Page] = []

    def open_page(user: Any = None) -> Page:
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        opened.append(page)
        if user is not None and user.is_staff:
            log_in(page, user.username)
        elif user is not None:
            client = Client()
            client.force_login(user)
            session = client.cookies[settings.SESSION_COOKIE_NAME].value
            context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])
        return page

    yield open_page

    failed = any(report.failed for report in request.node.stash.get(_reports, {}).values())
    if failed:
        ARTIFACTS.mkdir(exist_ok=True)
        for n, page in enumerate(opened):
            name = re.sub(r"[^\w.-]+", "_", request.node.name)
            try:
                page.screenshot(path=ARTIFACTS / f"failed-{name}-{n}.png", full_page=True)
            except Exception as exc:  # a crashed page must not hide the test's own failure
                print(f"no screenshot of page {n}: {exc}")
    for context in contexts:
        context.close()
    wait_for_streams_to_close()
