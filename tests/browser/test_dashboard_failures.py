"""The failures page in a browser: a real failure, retried or discarded through the confirmation step."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.support.runtime import row, wait_status
from workers import services
from workers.models import Job, JobStatus

# A message with markup in it: the pages must show it as text, never as HTML.
MESSAGE = "report <b>refused</b> by the printer"


def failed_job(message: str = MESSAGE) -> Job:
    """A job that a worker ran and that failed for real (a permanent error: no retries)."""
    job = services.job_enqueue(task="diagnostics.fail", params={"kind": "permanent", "message": message})
    done = wait_status(job, timeout=60)
    assert done.status == JobStatus.FAILED, done.status
    return done


def select_failure(page: Page, job: Job) -> None:
    group = page.locator('section[data-testid=failure-group][data-task="diagnostics.fail"]')
    expect(group).to_have_count(1)
    group.locator(f'input[type=checkbox][name=job][value="{job.pk}"]').check()


def expect_confirmation_lists(page: Page, job: Job) -> None:
    expect(page.locator("button[data-testid=confirm]")).to_be_visible()
    listed = page.locator(f'[href*="{job.pk}"]').or_(page.get_by_text(str(job.pk)))
    expect(listed.first).to_be_visible()


def test_failed_job_is_retried_from_the_failures_page_through_the_confirmation(
    pages, staff_user, start_workers, live_server
):
    # Given a job that failed in a real worker
    start_workers()
    failed = failed_job()
    page = pages(staff_user)
    page.goto("/dashboard/failures/")
    # When an operator selects it and asks to retry the selection
    select_failure(page, failed)
    page.locator("button[data-testid=retry-selected]").click()
    # Then a confirmation page lists it, and nothing has been retried yet
    expect_confirmation_lists(page, failed)
    assert not Job.objects.filter(retry_of=failed).exists()
    # When they confirm
    page.locator("button[data-testid=confirm]").click()
    # Then they are back on the failures page with a message, the original is no longer listed
    expect(page).to_have_url(re.compile(rf"^{re.escape(live_server.url)}/dashboard/failures/"))
    expect(page.locator(".messages")).to_contain_text("Retried 1 job(s)")
    expect(page.locator(f'input[name=job][value="{failed.pk}"]')).to_have_count(0)
    assert row(failed).dismissed_at is not None
    # And the new job exists and is on the jobs list
    retry = Job.objects.get(retry_of=failed)
    assert (retry.task, retry.params) == (failed.task, failed.params)
    page.goto("/dashboard/jobs/")
    expect(page.locator(f'tr[data-job-id="{retry.pk}"]')).to_be_visible()
    # And once it has failed in its turn (the error is permanent), its page shows that failure
    assert wait_status(retry, timeout=60).status == JobStatus.FAILED
    page.goto(f"/dashboard/jobs/{retry.pk}/")
    expect(page.locator("[data-testid=job-status]")).to_have_text("FAILED")
    # And the error's markup is shown as text, escaped, not rendered
    traceback = page.locator("pre[data-testid=job-traceback]")
    expect(traceback).to_contain_text("PermanentError")
    expect(traceback).to_contain_text(MESSAGE)
    expect(traceback.locator("b")).to_have_count(0)


def test_failed_job_is_discarded_only_once_confirmed(pages, staff_user, start_workers, live_server):
    # Given a job that failed in a real worker, on the failures page
    start_workers()
    failed = failed_job("no printer")
    page = pages(staff_user)
    page.goto("/dashboard/failures/")
    # When an operator asks to discard it, then backs out of the confirmation
    select_failure(page, failed)
    page.locator("button[data-testid=discard-selected]").click()
    expect_confirmation_lists(page, failed)
    page.get_by_role("link", name=re.compile("cancel|back", re.IGNORECASE)).first.click()
    # Then the failure is still listed, and not dismissed
    expect(page).to_have_url(re.compile(rf"^{re.escape(live_server.url)}/dashboard/failures/"))
    expect(page.locator(f'input[name=job][value="{failed.pk}"]')).to_have_count(1)
    assert row(failed).dismissed_at is None
    # When they discard it and confirm
    select_failure(page, failed)
    page.locator("button[data-testid=discard-selected]").click()
    page.locator("button[data-testid=confirm]").click()
    # Then it is gone from the page, dismissed, and no job was retried
    expect(page.locator(".messages")).to_contain_text("Discarded 1 job(s)")
    expect(page.locator(f'input[name=job][value="{failed.pk}"]')).to_have_count(0)
    assert row(failed).dismissed_at is not None
    assert not Job.objects.filter(retry_of=failed).exists()
