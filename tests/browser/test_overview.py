"""The overview under load, in a browser: live queue numbers while workers are busy, and a screenshot of it."""

from __future__ import annotations

import shutil

from playwright.sync_api import Page, expect

from tests.browser.support import ARTIFACTS, TIMEOUT_MS, SameDocument
from tests.support.workers import worker_program
from workers import services

# Where the lead looks at the screenshot, besides test-artifacts/ (kept by CI).
LEAD_COPY = "/tmp/overview-under-load.png"


def cell(queue: str, field: str) -> str:
    return f'tr[data-queue="{queue}"] [data-field="{field}"]'


def wait_for_number(page: Page, selector: str, test: str) -> int:
    """Wait until the first whole number in the element's text passes `test` (a JS expression of `n`)."""
    handle = page.wait_for_function(
        f"""(selector) => {{
            const el = document.querySelector(selector);
            const match = el && el.textContent.replace(/,/g, "").match(/\\d+/);
            if (!match) return false;
            const n = Number(match[0]);
            return ({test}) ? String(n) : false;
        }}""",
        arg=selector,
        timeout=TIMEOUT_MS,
    )
    return int(handle.json_value())


def test_overview_follows_a_loaded_system_live_and_is_captured(pages, staff_user, start_workers):
    # Given two busy worker processes and a backlog: slow jobs, quick ones, and some that fail
    start_workers(
        worker_program("worker-1", queues=["interactive", "default", "batch"]),
        worker_program("worker-2", queues=["interactive", "default", "batch"]),
    )
    for _ in range(60):
        services.job_enqueue(task="diagnostics.sleep", params={"seconds": 3})
    for _ in range(30):
        services.job_enqueue(task="diagnostics.noop")
    for n in range(6):
        services.job_enqueue(task="diagnostics.fail", params={"kind": "permanent", "message": f"overload {n}"})
    # When an operator opens the overview
    page = pages(staff_user)
    page.goto("/dashboard/")
    same = SameDocument(page)
    for queue in ("interactive", "default", "batch"):
        expect(page.locator(f'tr[data-queue="{queue}"]')).to_be_visible()
    expect(page.locator("svg#throughput-chart")).to_be_visible()
    # Then it shows both workers alive and jobs in flight, with a backlog waiting
    wait_for_number(page, "[data-testid=workers-alive]", "n >= 2")
    wait_for_number(page, cell("default", "in_flight"), "n > 0")
    backlog = wait_for_number(page, cell("default", "waiting"), "n > 0")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "overview-under-load.png"
    page.screenshot(path=shot, full_page=True)
    shutil.copyfile(shot, LEAD_COPY)
    assert shot.stat().st_size > 0
    # And, as the workers drain it, the backlog shrinks on the page without a reload
    wait_for_number(page, cell("default", "waiting"), f"n < {backlog}")
    # And the failures reach the dead-letter column
    wait_for_number(page, cell("default", "dead"), "n >= 6")
    same.check()
