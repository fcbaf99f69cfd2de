"""The tick with a fixed clock: code crons on time, start-up trap, Sunday, misfire policies, DST."""

from __future__ import annotations

import pytest

from schedules.models import CodeScheduleSwitch, Fire, MisfirePolicy, Schedule
from schedules.scheduler import Scheduler
from tests.schedules.conftest import at
from workers.models import Job

pytestmark = pytest.mark.django_db


def _slots(key: str) -> list:
    return sorted(Fire.objects.filter(schedule_key=key).values_list("slot", flat=True))


def _db_schedule(**fields) -> Schedule:
    fields = {"name": "s", "task": "diagnostics.noop", "cron": "0 * * * *", "timezone": "UTC", **fields}
    return Schedule.objects.create(**fields)


def test_code_cron_fires_on_time_and_once_per_slot(code_table):
    code_table(reconcile="* * * * *")
    scheduler = Scheduler()
    scheduler.activate(at(2027, 6, 1, 11, 59, 10))
    assert scheduler.tick(at(2027, 6, 1, 11, 59, 30)) == []
    fires = scheduler.tick(at(2027, 6, 1, 12, 0, 0))
    assert [f.slot for f in fires] == [at(2027, 6, 1, 12)]
    assert fires[0].job is not None and fires[0].job.task == "maintenance.reconcile"
    assert scheduler.tick(at(2027, 6, 1, 12, 0, 20)) == []
    # A fresh scheduler (a restart) does not fire the slot again either.
    again = Scheduler()
    again.activate(at(2027, 6, 1, 12, 0, 25))
    assert again.tick(at(2027, 6, 1, 12, 0, 30)) == []
    assert _slots("code:maintenance.reconcile") == [at(2027, 6, 1, 12)]
    assert Job.objects.count() == 1


def test_the_setting_overrides_or_turns_off_a_code_cron(code_table):
    code_table(prune_jobs="*/5 * * * *")
    scheduler = Scheduler()
    scheduler.activate(at(2027, 6, 1, 12, 0, 30))
    scheduler.tick(at(2027, 6, 1, 12, 5))
    assert _slots("code:maintenance.prune_jobs") == [at(2027, 6, 1, 12, 5)]
    code_table()  # everything off
    scheduler.tick(at(2027, 6, 1, 12, 10))
    assert _slots("code:maintenance.prune_jobs") == [at(2027, 6, 1, 12, 5)]


def test_a_job_without_its_own_key_gets_the_schedule_slot_key(code_table):
    schedule = _db_schedule(cron="* * * * *")
    scheduler = Scheduler()
    scheduler.activate(at(2027, 6, 1, 12, 0, 30))
    [fire] = scheduler.tick(at(2027, 6, 1, 12, 1))
    assert fire.job.unique_key == f"schedule:db:{schedule.pk}:2027-06-01T12:01:00+00:00"


def test_start_up_does_not_fire_slots_before_it(code_table):
    # periodiq fires a matching job immediately at start-up; Greenroom waits for the next slot.
    code_table(reconcile="* * * * *")
    scheduler = Scheduler()
    scheduler.activate(at(2027, 6, 1, 12, 0, 30))
    assert scheduler.tick(at(2027, 6, 1, 12, 0, 30)) == []
    assert scheduler.tick(at(2027, 6, 1, 12, 0, 59)) == []
    assert [f.slot for f in scheduler.tick(at(2027, 6, 1, 12, 1, 0))] == [at(2027, 6, 1, 12, 1)]


@pytest.mark.parametrize("weekday", ["0", "7", "sun"])
def test_sunday_schedules_fire_on_sunday_not_monday(code_table, weekday):
    _db_schedule(cron=f"0 9 * * {weekday}")
    scheduler = Scheduler()
    scheduler.activate(at(2027, 3, 27, 12))  # a Saturday
    assert scheduler.tick(at(2027, 3, 28, 8, 59)) == []
    assert [f.slot for f in scheduler.tick(at(2027, 3, 28, 9, 0, 1))] == [at(2027, 3, 28, 9)]  # Sunday
    assert scheduler.tick(at(2027, 3, 29, 9, 0, 1)) == []  # Monday


def _back_after_downtime(policy: str, cap: int = 10) -> list:
    # Hourly, last fired 08:00, no scheduler until 12:10.
    schedule = _db_schedule(misfire_policy=policy, misfire_cap=cap)
    Schedule.objects.filter(pk=schedule.pk).update(
        active_since=at(2027, 6, 1, 7), handled_until=at(2027, 6, 1, 8), last_fired_slot=at(2027, 6, 1, 8))
    scheduler = Scheduler()
    scheduler.activate(at(2027, 6, 1, 12, 10))
    fired = [f.slot for f in scheduler.tick(at(2027, 6, 1, 12, 10))]
    fired += [f.slot for f in scheduler.tick(at(2027, 6, 1, 12, 30))]
    fired += [f.slot for f in scheduler.tick(at(2027, 6, 1, 13, 0, 5))]
    schedule.refresh_from_db()
    assert schedule.next_fire_at == at(2027, 6, 1, 14)
    return fired


def test_misfire_skip_fires_none_of_the_missed_slots(code_table):
    assert _back_after_downtime(MisfirePolicy.SKIP) == [at(2027, 6, 1, 13)]


def test_misfire_once_fires_the_latest_missed_slot(code_table):
    assert _back_after_downtime(MisfirePolicy.ONCE) == [at(2027, 6, 1, 12), at(2027, 6, 1, 13)]


def test_misfire_all_fires_the_most_recent_missed_slots_up_to_the_cap_oldest_first(code_table):
    assert _back_after_downtime(MisfirePolicy.ALL, cap=2) == [at(2027, 6, 1, 11), at(2027, 6, 1, 12),
                                                              at(2027, 6, 1, 13)]


def test_a_lisbon_schedule_fires_at_local_time_on_both_sides_of_the_spring_transition(code_table):
    _db_schedule(cron="0 9 * * *", timezone="Europe/Lisbon")
    scheduler = Scheduler()
    scheduler.activate(at(2027, 3, 27, 0))
    fired = []
    for hour in range(0, 72):  # one tick an hour and a minute past, for three days
        fired += [f.slot for f in scheduler.tick(at(2027, 3, 27, 0, 1).replace(day=27 + hour // 24, hour=hour % 24))]
    assert fired == [at(2027, 3, 27, 9), at(2027, 3, 28, 8), at(2027, 3, 29, 8)]


def test_a_nonexistent_local_time_fires_once_after_the_gap(code_table):
    _db_schedule(cron="30 1 * * *", timezone="Europe/Lisbon")
    scheduler = Scheduler()
    scheduler.activate(at(2027, 3, 27, 12))
    assert scheduler.tick(at(2027, 3, 28, 0, 45)) == []  # 01:45 WET: before the jump, not yet
    assert [f.slot for f in scheduler.tick(at(2027, 3, 28, 1, 30, 2))] == [at(2027, 3, 28, 1, 30)]  # 02:30 WEST
    assert scheduler.tick(at(2027, 3, 28, 23)) == []


def test_a_schedule_naming_a_vanished_job_records_the_error(code_table):
    schedule = _db_schedule(cron="* * * * *")
    Schedule.objects.filter(pk=schedule.pk).update(task="gone.away")
    scheduler = Scheduler()
    scheduler.activate(at(2027, 6, 1, 12, 0, 30))
    assert scheduler.tick(at(2027, 6, 1, 12, 1)) == []
    schedule.refresh_from_db()
    assert "UnknownTask" in schedule.last_error
    assert not Fire.objects.exists()


def test_an_operator_switch_pauses_a_code_cron_and_it_resumes_without_catching_up(code_table):
    code_table(reconcile="* * * * *")
    scheduler = Scheduler()
    scheduler.activate(at(2027, 6, 1, 12, 0, 30))
    scheduler.tick(at(2027, 6, 1, 12, 1))
    switch = CodeScheduleSwitch.objects.create(name="maintenance.reconcile", enabled=False)
    scheduler.tick(at(2027, 6, 1, 12, 2))
    scheduler.tick(at(2027, 6, 1, 12, 3))
    assert _slots("code:maintenance.reconcile") == [at(2027, 6, 1, 12, 1)]
    switch.enabled = True
    switch.save()
    scheduler.tick(at(2027, 6, 1, 12, 10, 30))
    # The slots missed while off are passed over (skip policy); the on-time one fires.
    assert _slots("code:maintenance.reconcile") == [at(2027, 6, 1, 12, 1), at(2027, 6, 1, 12, 10)]
