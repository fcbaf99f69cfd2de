"""Helpers of the browser tests: log in, wait for live updates, read numbers off the page."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

from django.conf import settings
from playwright.sync_api import Locator, Page, expect

# Where screenshots go: the one the tests take on purpose, and one per open page of a failed test.
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
# Generous waits (ms) for pages and live updates: a loaded CI machine may lag; nothing asserts speed.
TIMEOUT_MS = 30_000
# Password of the users the tests create and log in with through the admin's form.
PASSWORD = "correct horse battery staple"


def log_in(page: Page, username: str, *, next_path: str = "/admin/") -> None:
    """Log in through the admin's login form and land on `next_path`."""
    page.goto(f"/admin/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"^(?!.*/admin/login/).*$"))
    expect(page.locator("#user-tools")).to_contain_text(username.upper(), ignore_case=True)


def wait_for_streams_to_close(timeout: float = 30) -> None:
    """Wait until the live server has finished every request, event streams included.

    A stream notices its browser has gone only at its next write; until then its thread holds a
    database connection, which would block the flush after the test (and, on PostgreSQL, the drop of
    the test database at the end).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [t for t in threading.enumerate() if "process_request_thread" in t.name]
        if not busy:
            return
        time.sleep(0.1)


class SameDocument:
    """Proves a page updated itself: a marker set on `window` survives only if the page never reloaded."""

    def __init__(self, page: Page) -> None:
        self.page = page
        page.evaluate("window.__greenroomSameDocument = 'still here'")

    def check(self) -> None:
        assert self.page.evaluate("window.__greenroomSameDocument") == "still here", "the page was reloaded"


def progress_above(page: Page, selector: str, floor: float) -> float:
    """Wait until the determinate `<progress>` at `selector` shows a value above `floor`; return it."""
    handle = page.wait_for_function(
        """([selector, floor]) => {
            const bar = document.querySelector(selector);
            return bar && bar.hasAttribute("value") && bar.value > floor ? bar.value : false;
        }""",
        arg=[selector, floor],
        timeout=TIMEOUT_MS,
    )
    return float(handle.json_value())


def number_in(locator: Locator) -> int:
    """The first whole number in an element's text (e.g. "12" or "12 jobs")."""
    text = locator.inner_text()
    match = re.search(r"\d+", text.replace(",", ""))
    assert match, f"no number in {text!r}"
    return int(match.group())
