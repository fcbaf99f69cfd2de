"""Schedules through the admin (validation, effect within one tick, run history, Run now) and the system check."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.utils import timezone

from schedules.models import Fire, Schedule
from schedules.scheduler import Scheduler
from workers.models import Job

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/schedules/schedule/add/"


def _form(**fields) -> dict:
    return {"name": "noop", "task": "diagnostics.noop", "cron": "* * * * *", "timezone": "UTC", "params": "{}",
            "enabled": "on", "misfire_policy": "skip", "misfire_cap": "10", **fields}


def _errors(response) -> dict:
    assert response.status_code == 200, "the form should have been shown again with errors"
    return response.context["adminform"].form.errors


def test_the_add_form_explains_a_bad_cron_an_unknown_job_and_invalid_params(admin_client, code_table):
    assert "five fields" in str(_errors(admin_client.post(ADD_URL, _form(cron="* * *")))["cron"])
    assert "task" in _errors(admin_client.post(ADD_URL, _form(task="nope.nothing")))
    assert "unknown time zone" in str(_errors(admin_client.post(ADD_URL, _form(timezone="Mars/Base")))["timezone"])
    errors = _errors(admin_client.post(ADD_URL, _form(task="diagnostics.sleep", params='{"seconds": "x"}')))
    assert "invalid params" in str(errors["params"])
    assert not Schedule.objects.exists()


def test_admin_created_edited_and_disabled_schedules_apply_at_the_next_tick(admin_client, code_table):
    now = timezone.now().replace(second=30, microsecond=0)
    scheduler = Scheduler()
    scheduler.activate(now - timedelta(minutes=1))

    # Created: fires at the next tick after its next slot
    response = admin_client.post(ADD_URL, _form())
    assert response.status_code == 302
    schedule = Schedule.objects.get()
    assert schedule.next_fire_at is not None
    minute = now.replace(second=0) + timedelta(minutes=1)
    assert [f.slot for f in scheduler.tick(minute + timedelta(seconds=1))] == [minute]

    # Edited to once a day, twelve hours from now: the next tick uses the new cron (no fire at the
    # next minute; an hourly cron would fire there when the test runs at hh:58)
    change_url = f"/admin/schedules/schedule/{schedule.pk}/change/"
    daily = f"0 {(now + timedelta(hours=12)).hour} * * *"
    assert admin_client.post(change_url, _form(cron=daily)).status_code == 302
    assert scheduler.tick(minute + timedelta(minutes=1, seconds=1)) == []

    # Back to every minute, then disabled: nothing more
    assert admin_client.post(change_url, _form()).status_code == 302
    later = minute + timedelta(minutes=5)
    assert len(scheduler.tick(later + timedelta(seconds=1))) == 1
    form = _form()
    del form["enabled"]
    assert admin_client.post(change_url, form).status_code == 302
    assert scheduler.tick(later + timedelta(minutes=1, seconds=1)) == []
    assert Fire.objects.count() == 2

    # The change page shows the run history
    page = admin_client.get(change_url).content.decode()
    assert "run history" in page.lower()
    assert page.count("READY") >= 2


def test_run_now_enqueues_one_job(admin_client, code_table):
    schedule = Schedule.objects.create(name="noop", task="diagnostics.noop", cron="0 0 1 1 *")
    response = admin_client.post("/admin/schedules/schedule/",
                                 {"action": "run_now", "_selected_action": [schedule.pk]}, follow=True)
    assert response.status_code == 200
    fire = Fire.objects.get()
    assert fire.schedule_key == f"manual:db:{schedule.pk}"
    assert Job.objects.get() == fire.job


def test_the_changelist_shows_the_code_table(admin_client, code_table):
    code_table(reconcile="*/2 * * * *")
    page = admin_client.get("/admin/schedules/schedule/").content.decode()
    assert "maintenance.reconcile" in page
    assert "*/2 * * * *" in page


def _check_ids() -> set[str]:
    return {message.id for message in run_checks() if message.id and message.id.startswith("schedules.")}


def test_the_system_check_fails_for_a_schedule_naming_an_unknown_job(code_table):
    assert _check_ids() == set()
    Schedule.objects.create(name="ghost", task="gone.away", cron="* * * * *")
    assert "schedules.E001" in _check_ids()


def test_the_system_check_fails_for_a_code_entry_naming_an_unknown_job_or_a_bad_cron(code_table, monkeypatch):
    from schedules import periodic

    code_table()  # the real entries off; "ghost" is not among them, so it stays on
    monkeypatch.setattr(periodic, "declared", lambda: (periodic.PeriodicJob("ghost", "* * *", "gone.away"),))
    assert {"schedules.E001", "schedules.E002"} <= _check_ids()
