"""The dashboard's job pages in a browser: live progress without reloads, and cancelling from the page."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.support import SameDocument, progress_above
from tests.support.runtime import row, wait_running
from workers import services
from workers.models import JobStatus


def test_job_page_shows_progress_live_and_cancels_the_job_with_its_button(pages, staff_user, start_workers):
    # Given a worker running a long job that reports progress every second
    start_workers()
    job = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 120})
    wait_running(job, timeout=60)
    # When an operator opens its page and watches
    page = pages(staff_user)
    page.goto(f"/dashboard/jobs/{job.pk}/")
    same = SameDocument(page)
    status = page.locator("[data-testid=job-status]")
    expect(status).to_have_text("RUNNING")
    bar = "progress[data-testid=job-progress]"
    first = progress_above(page, bar, 0)
    # Then the bar advances, the message follows, and the page never reloads
    later = progress_above(page, bar, first)
    assert later > first
    expect(page.locator("[data-testid=job-progress-message]")).to_contain_text("slept")
    same.check()
    # When they press Cancel
    page.locator("button[data-testid=cancel-job]").click()
    # Then the page comes back with a message, and shows the job CANCELLED once the job has stopped
    expect(page.locator(".messages")).to_be_visible()
    expect(status).to_have_text("CANCELLED")
    assert row(job).status == JobStatus.CANCELLED
    # And, reloaded, it offers a retry instead of a cancel
    page.reload()
    expect(page.locator("button[data-testid=retry-job]")).to_be_visible()
    expect(page.locator("button[data-testid=cancel-job]")).to_have_count(0)


def test_job_page_shows_the_final_state_when_the_job_finishes(pages, staff_user, start_workers):
    # Given a short job, running
    start_workers()
    job = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 5})
    wait_running(job, timeout=60)
    # When an operator keeps its page open until it ends
    page = pages(staff_user)
    page.goto(f"/dashboard/jobs/{job.pk}/")
    same = SameDocument(page)
    # Then the page turns SUCCESSFUL with a full bar, by itself
    expect(page.locator("[data-testid=job-status]")).to_have_text("SUCCESSFUL")
    bar = page.locator("progress[data-testid=job-progress]")
    expect(bar).to_have_attribute("value", re.compile(r"^\d+(\.\d+)?$"))
    assert bar.evaluate("bar => bar.value === bar.max"), bar.evaluate("bar => [bar.value, bar.max]")
    same.check()
    # And its timeline and params are on the page
    expect(page.locator("ol[data-testid=job-timeline] li").first).to_be_visible()
    expect(page.locator("pre").filter(has_text='"seconds": 5').first).to_be_visible()


def test_jobs_list_updates_an_active_rows_progress_and_status_without_reload(pages, staff_user, start_workers):
    # Given a job that runs for a few seconds, reporting progress each second
    start_workers()
    job = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 10})
    wait_running(job, timeout=60)
    # When an operator watches the jobs list
    page = pages(staff_user)
    page.goto("/dashboard/jobs/")
    same = SameDocument(page)
    expect(page.locator(f'tr[data-job-id="{job.pk}"]')).to_be_visible()
    bar = f'progress[data-job-progress="{job.pk}"]'
    first = progress_above(page, bar, 0)
    # Then the row's bar advances, and its status turns SUCCESSFUL, without a reload
    later = progress_above(page, bar, first)
    assert later > first
    expect(page.locator(f'[data-job-status="{job.pk}"]')).to_have_text("SUCCESSFUL")
    same.check()
