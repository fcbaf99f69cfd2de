"""The Workers and Schedules pages in a browser: live processes with their jobs, and a schedule's switch."""

from __future__ import annotations

from playwright.sync_api import expect

from schedules.models import CodeScheduleSwitch
from schedules.periodic import periodic_jobs
from tests.support.runtime import wait_running, wait_status
from tests.support.workers import wait_for
from workers import services
from workers.models import FleetProcess, JobStatus


def test_workers_page_lists_a_live_process_with_the_job_it_runs(pages, staff_user, start_workers):
    # Given a worker process running a long job, and its beat recording that job
    start_workers()
    job = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 120})
    wait_running(job, timeout=60)
    process = wait_for(
        lambda: next((p for p in FleetProcess.objects.filter(kind="worker")
                      if any(item.get("id") == str(job.pk) for item in p.running)), None),
        timeout=60, what="the worker's beat to list the running job",
    )
    # When an operator opens the Workers page
    page = pages(staff_user)
    page.goto("/dashboard/workers/")
    # Then the process is there, with its pid and a link to the job it runs
    row = page.locator(f'tr[data-process-id="{process.pk}"]')
    expect(row).to_contain_text(str(process.pid))
    expect(row).to_contain_text(process.host)
    row.locator(f'a[href*="{job.pk}"]').click()
    expect(page.locator("[data-testid=job-status]")).to_have_text("RUNNING")
    services.job_cancel(job=job)  # let the worker stop quickly
    assert wait_status(job, timeout=60).status == JobStatus.CANCELLED


def test_code_schedule_is_switched_off_and_on_from_the_schedules_page(pages, staff_user):
    # Given a periodic job declared in code, switched on (no switch row yet)
    name = periodic_jobs()[0].name
    assert not CodeScheduleSwitch.objects.filter(name=name).exists()
    page = pages(staff_user)
    page.goto("/dashboard/schedules/")
    row = page.locator(f'tr[data-schedule="code:{name}"]')
    expect(row).to_be_visible()
    toggle = row.locator("button[data-testid=toggle-schedule]")
    label_when_on = toggle.inner_text().strip()
    # When an operator presses its toggle
    toggle.click()
    # Then the switch is off in the database, and its button (reloaded after the POST) changed
    wait_for(lambda: CodeScheduleSwitch.objects.filter(name=name, enabled=False).exists(),
             timeout=30, what=f"{name} to be switched off")
    expect(toggle).not_to_have_text(label_when_on)
    # When they press it again, it is back on
    toggle.click()
    wait_for(lambda: CodeScheduleSwitch.objects.filter(name=name, enabled=True).exists(),
             timeout=30, what=f"{name} to be switched on again")
    expect(toggle).to_have_text(label_when_on)
