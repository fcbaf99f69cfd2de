"""The scheduler lease in the database (used when the broker is not Redis): the Redis lease's rules,
and two `runscheduler` processes on RabbitMQ, one active, the standby taking over after a SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from schedules.lease import LEASE_KEY, DatabaseLease, scheduler_lease
from schedules.models import Fire, Schedule, SchedulerLease
from schedules.periodic import declared
from schedules.scheduler import Scheduler
from tests.rabbitmq.conftest import rabbitmq_only
from tests.schedules.conftest import at
from tests.support.runtime import wait_status
from tests.support.workers import wait_for, worker_env
from workers.models import JobStatus

LEASE_TTL = 3.0
TICK = 0.5


def test_only_one_database_lease_holder_and_release_hands_over_at_once(db):
    first, second = DatabaseLease(ttl=5), DatabaseLease(ttl=5)
    assert first.hold()
    assert not second.hold()
    assert first.hold()  # renews
    assert first.release()
    assert second.hold()
    assert not first.renew()  # a former holder can never extend its successor's lease
    assert not first.release()
    assert second.holder() == second.token


def test_an_unrenewed_database_lease_expires_after_its_ttl(db):
    first, second = DatabaseLease(ttl=0.3), DatabaseLease(ttl=0.3)
    assert first.acquire()
    assert not second.acquire()
    time.sleep(0.5)
    assert first.holder() is None
    assert second.acquire()
    assert not first.renew()


def test_leases_of_two_namespaces_are_apart(db):
    assert DatabaseLease(ttl=5, key="greenroom:a:scheduler:lease").hold()
    assert DatabaseLease(ttl=5, key="greenroom:b:scheduler:lease").hold()


@rabbitmq_only
def test_on_rabbitmq_the_scheduler_lease_is_in_the_database(db):
    assert isinstance(scheduler_lease(ttl=5), DatabaseLease)


def _start(tmp_path: Path, name: str) -> subprocess.Popen:
    env = worker_env(GREENROOM_SCHEDULER_LEASE_TTL=LEASE_TTL, PYTHONUNBUFFERED=1,
                     GREENROOM_PERIODIC=json.dumps({entry.name: "off" for entry in declared()}))
    log = (tmp_path / f"{name}.log").open("wb")
    try:
        return subprocess.Popen([sys.executable, "manage.py", "runscheduler", "--tick", str(TICK)],
                                cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


@rabbitmq_only
@pytest.mark.chaos
def test_two_schedulers_on_rabbitmq_one_active_and_the_standby_takes_over_after_a_kill(transactional_db,
                                                                                       tmp_path):
    processes = {p.pid: p for p in (_start(tmp_path, "a"), _start(tmp_path, "b"))}
    probe = DatabaseLease(ttl=1, key=LEASE_KEY)
    try:
        def holder_pid() -> int | None:
            token = probe.holder()
            return int(token.split(":")[1]) if token else None

        active = wait_for(holder_pid, timeout=30, what="a scheduler to take the lease")
        standby = next(pid for pid in processes if pid != active)
        time.sleep(LEASE_TTL)  # it keeps the lease by renewing it
        assert holder_pid() == active
        # When the active one is SIGKILLed, the standby takes over within ttl + retry + tick
        processes[active].send_signal(signal.SIGKILL)
        processes[active].wait(10)
        killed_at = time.monotonic()
        wait_for(lambda: holder_pid() == standby, timeout=LEASE_TTL + 10, interval=0.05, what="the takeover")
        print(f"\nscheduler failover after SIGKILL (database lease): {time.monotonic() - killed_at:.2f} s")
        # When it is stopped with SIGTERM, it releases the lease at once
        processes[standby].send_signal(signal.SIGTERM)
        assert processes[standby].wait(15) == 0
        assert probe.holder() is None
        assert SchedulerLease.objects.filter(name=LEASE_KEY).count() == 1
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)


@rabbitmq_only
def test_a_scheduled_slot_fires_one_job_that_a_worker_runs_on_rabbitmq(start_workers, settings):
    # Given a schedule every minute, the code table off, and a worker
    settings.GREENROOM_PERIODIC = {entry.name: "off" for entry in declared()}
    schedule = Schedule.objects.create(name="every minute", task="diagnostics.noop", cron="* * * * *")
    start_workers()
    # When the scheduler ticks past a slot
    scheduler = Scheduler()
    scheduler.activate(at(2030, 6, 1, 12, 0, 30))
    scheduler.tick(at(2030, 6, 1, 12, 1, 1))
    # Then that slot's job is published to RabbitMQ and runs
    fire = Fire.objects.get(schedule_key=schedule.key)
    assert wait_status(fire.job_id, JobStatus.SUCCESSFUL, timeout=30).task == "diagnostics.noop"
