"""The stack the browser tests stand on: chromium, the live server with its static files, real workers."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.support.runtime import wait_status
from workers import services
from workers.models import JobStatus


def test_staff_user_logs_in_through_the_admin_form_and_gets_its_styles(pages, staff_user, live_server):
    # Given an operator's browser
    page = pages()
    styles: list[Any] = []
    page.on("response", lambda response: styles.append(response) if response.url.endswith(".css") else None)
    # When they log in through /admin/login/
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "wrong password")
    page.click("input[type=submit]")
    # Then a wrong password is refused, and the right one lands on the admin index, styled
    expect(page.locator(".errornote")).to_be_visible()
    page.fill("#id_password", "correct horse battery staple")
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/admin/")
    expect(page.locator("#user-tools")).to_contain_text("operator", ignore_case=True)
    assert styles, "the admin page loaded no stylesheet"
    assert all(response.status == 200 for response in styles), [(r.url, r.status) for r in styles]


def test_a_job_run_by_real_workers_shows_as_successful_in_the_admin(
    pages, staff_user, start_workers, django_user_model
):
    # Given a worker process and a superuser's browser (the admin's job pages need model permissions)
    django_user_model.objects.filter(pk=staff_user.pk).update(is_superuser=True)
    start_workers()
    page = pages(staff_user)
    # When a job is enqueued and a worker runs it
    job = services.job_enqueue(task="diagnostics.noop")
    assert wait_status(job, timeout=60).status == JobStatus.SUCCESSFUL
    # Then the admin, served by the live server from the same database, shows it finished
    page.goto(f"/admin/workers/job/{job.pk}/change/")
    expect(page.locator("body")).to_contain_text("SUCCESSFUL", ignore_case=True)
