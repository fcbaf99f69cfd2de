"""Who sees what, in a browser: staff-only dashboard, and the end user's own job page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.support import PASSWORD, SameDocument, progress_above
from tests.support.runtime import row, wait_running
from workers import services
from workers.pdf.models import Report, ReportEntry, ReportSection
from workers.pdf.services import pdf_build_request

DASHBOARD_PAGES = ["/dashboard/", "/dashboard/jobs/", "/dashboard/failures/", "/dashboard/workers/",
                   "/dashboard/schedules/"]


def test_anonymous_visitor_is_sent_to_the_login_form_and_back(pages, staff_user, live_server):
    # Given a browser that is not logged in
    page = pages()
    # When it opens the dashboard
    page.goto("/dashboard/jobs/")
    # Then it lands on the admin's login form, which leads back to the dashboard once logged in
    expect(page).to_have_url(f"{live_server.url}/admin/login/?next=/dashboard/jobs/")
    page.fill("#id_username", staff_user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/dashboard/jobs/")
    expect(page.locator("form#job-filters")).to_be_visible()


@pytest.mark.parametrize("path", DASHBOARD_PAGES)
def test_non_staff_user_gets_staff_only_on_every_dashboard_page(pages, member, path):
    # Given a logged-in user who is not staff
    page = pages(member)
    # When they open a dashboard page
    response = page.goto(path)
    # Then they get a 403 that says why
    assert response is not None
    assert response.status == 403
    expect(page.locator("body")).to_contain_text("Staff only")


def test_owner_watches_their_job_progress_and_result_on_the_end_user_page(pages, member, start_workers):
    # Given a job that an end user started, running in a real worker
    start_workers()
    job = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 8}, requested_by=member)
    wait_running(job, timeout=60)
    # When they open its page, not yet logged in: the end users' login form brings them back to it
    page = pages()
    page.goto(f"/jobs/{job.pk}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/jobs/"))
    page.fill("#id_username", member.username)
    page.fill("#id_password", PASSWORD)
    page.click("[data-testid=login]")
    expect(page).to_have_url(re.compile(rf"/jobs/{job.pk}/$"))
    same = SameDocument(page)
    # Then they see it advance, then finish with its result, without reloading
    bar = "progress[data-testid=job-progress]"
    first = progress_above(page, bar, 0)
    assert progress_above(page, bar, first) > first
    expect(page.locator("[data-testid=job-status]")).to_have_text("SUCCESSFUL")
    slept = row(job).result["slept"]
    expect(page.locator("body")).to_contain_text(str(slept))  # the result, not just the progress message
    same.check()


def test_end_user_job_page_is_not_found_for_someone_else(pages, member, django_user_model, broker):
    # Given a job of another user
    other = django_user_model.objects.create_user(username="other")
    job = services.job_enqueue(task="diagnostics.noop", requested_by=other)
    # When the member opens its page
    page = pages(member)
    response = page.goto(f"/jobs/{job.pk}/")
    # Then it does not exist for them
    assert response is not None
    assert response.status == 404


def test_owner_downloads_their_built_pdf_from_the_end_user_page(pages, member, start_workers):
    # Given an end user's report, and its PDF build asked for and run by a real worker
    start_workers()
    report = Report.objects.create(title="Protocol labels", owner=member)
    ReportSection.objects.create(report=report, heading="Scope", body="Every label of the protocol.")
    ReportEntry.objects.bulk_create(ReportEntry(report=report, position=n, label=f"label {n}") for n in range(20))
    job, _ = pdf_build_request(report=report, requested_by=member)
    # When they open the build's page and it finishes
    page = pages(member)
    page.goto(f"/jobs/{job.pk}/")
    expect(page.locator("[data-testid=job-status]")).to_have_text("SUCCESSFUL")
    # Then the page links to the PDF, which downloads as a PDF with their session
    link = page.locator("a[data-testid=result-link]")
    expect(link).to_have_attribute("href", re.compile(rf"/pdf/files/{job.pk}\.pdf$"))
    response = page.request.get(link.get_attribute("href") or "")
    assert response.status == 200
    assert response.body().startswith(b"%PDF")
