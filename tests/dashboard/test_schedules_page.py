"""The Schedules page: code and database schedules with next and last runs, and their switches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from schedules import periodic
from schedules.cron import Cron
from schedules.models import CodeScheduleSwitch, Fire, Schedule
from tests.dashboard.conftest import messages_in, page

PRUNE = "maintenance.prune_jobs"


@pytest.fixture
def nightly(db) -> Schedule:
    return Schedule.objects.create(name="nightly <b>noop</b>", task="diagnostics.noop", cron="0 4 * * *",
                                   timezone="Europe/Lisbon")


def test_every_schedule_has_a_row_with_its_next_and_last_run(staff_client, nightly, make_job, settings):
    settings.GREENROOM_SCHEDULER_TIMEZONE = "UTC"
    job = make_job(task=PRUNE, queue="batch", status="SUCCESSFUL")
    Fire.objects.create(schedule_key=f"code:{PRUNE}", slot=datetime(2026, 11, 20, 3, 30, tzinfo=UTC), job=job)
    Fire.objects.create(schedule_key=f"code:{PRUNE}", slot=datetime(2026, 11, 19, 3, 30, tzinfo=UTC))
    before = timezone.now()
    response = staff_client.get("/dashboard/schedules/")
    doc = page(response)

    keys = {row.get("data-schedule") for row in doc.find_all("tr", data_schedule=True)}
    assert keys == {entry.key for entry in periodic.periodic_jobs()} | {f"db:{nightly.pk}"}
    prune = doc.find("tr", data_schedule=f"code:{PRUNE}")
    entry = next(e for e in periodic.periodic_jobs() if e.name == PRUNE)
    expected = Cron(entry.cron, "UTC").next_after(before)
    assert prune.find(data_field="next_run").find("time").get("datetime") == expected.isoformat()
    last = prune.find(data_field="last_run")
    assert "2026-11-20 03:30 UTC" in last.text
    assert last.find("a").get("href") == f"/dashboard/jobs/{job.pk}/"
    db_row = doc.find("tr", data_schedule=f"db:{nightly.pk}")
    assert db_row.find(data_field="timezone").text == "Europe/Lisbon"
    assert db_row.find(data_field="last_run").text.strip() == "never"
    assert db_row.find(data_field="next_run").find("time").get("datetime") == nightly.next_fire_at.isoformat()
    assert "<b>noop</b>" not in response.content.decode()


def test_switching_a_code_schedule_off_and_on_writes_its_switch(staff_client, db):
    key = f"code:{PRUNE}"
    response = staff_client.post("/dashboard/schedules/toggle/", {"schedule": key, "enabled": "0"}, follow=True)
    assert messages_in(response) == [f"Switched off {PRUNE}."]
    assert CodeScheduleSwitch.objects.get(name=PRUNE).enabled is False
    row = page(response).find("tr", data_schedule=key)
    assert (row.get("data-enabled"), row.find(data_field="next_run").text.strip()) == ("0", "—")
    # the same form sent twice does not flip it back
    staff_client.post("/dashboard/schedules/toggle/", {"schedule": key, "enabled": "0"})
    assert CodeScheduleSwitch.objects.get(name=PRUNE).enabled is False
    staff_client.post("/dashboard/schedules/toggle/", {"schedule": key, "enabled": "1"})
    assert CodeScheduleSwitch.objects.get(name=PRUNE).enabled is True


def test_switching_a_database_schedule_saves_it(staff_client, nightly):
    assert nightly.next_fire_at is not None
    staff_client.post("/dashboard/schedules/toggle/", {"schedule": nightly.key, "enabled": "0"})
    nightly.refresh_from_db()
    assert nightly.enabled is False and nightly.next_fire_at is None
    staff_client.post("/dashboard/schedules/toggle/", {"schedule": nightly.key, "enabled": "1"})
    nightly.refresh_from_db()
    assert nightly.enabled is True
    assert nightly.next_fire_at is not None and nightly.next_fire_at > timezone.now() - timedelta(seconds=1)


def test_an_unknown_schedule_is_refused(staff_client, db):
    response = staff_client.post("/dashboard/schedules/toggle/", {"schedule": "code:nope", "enabled": "0"},
                                 follow=True)
    assert messages_in(response) == ["No such schedule."]
    assert not CodeScheduleSwitch.objects.exists()
