"""High availability on real Redis: the lease, two schedulers at once, and failover after SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from project.broker import redis_client
from schedules.lease import LEASE_KEY, Lease
from schedules.models import Fire, Schedule
from schedules.periodic import declared
from schedules.scheduler import Scheduler
from tests.schedules.conftest import at
from tests.support.workers import wait_for, worker_env
from workers.models import FleetProcess, Job

LEASE_TTL = 3.0
TICK = 0.5


@pytest.fixture
def redis(broker):
    client = redis_client(settings.GREENROOM_BROKER_URL)
    yield client
    client.close()


def test_only_one_lease_holder_and_release_hands_over_at_once(redis):
    first, second = Lease(redis, ttl=5), Lease(redis, ttl=5)
    assert first.hold()
    assert not second.hold()
    assert first.hold()  # renews
    assert first.release()
    assert second.hold()
    assert not first.renew()  # an expired holder can never extend its successor's lease
    assert not first.release()
    assert second.holder() == second.token


def test_an_unrenewed_lease_expires_after_its_ttl(redis):
    first, second = Lease(redis, ttl=0.3), Lease(redis, ttl=0.3)
    assert first.acquire()
    assert not second.acquire()
    time.sleep(0.4)
    assert second.acquire()


def test_two_schedulers_ticking_together_make_one_job_per_slot(transactional_db, broker, settings):
    # Both act at once (as if the lease were lost mid-tick): the Fire table still lets one win.
    settings.GREENROOM_PERIODIC = {entry.name: "off" for entry in declared()}
    Schedule.objects.create(name="every minute", task="diagnostics.noop", cron="* * * * *")
    start = at(2030, 6, 1, 12, 0, 30)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            scheduler = Scheduler()
            scheduler.activate(start)
            for minute in range(1, 6):
                barrier.wait(10)
                scheduler.tick(at(2030, 6, 1, 12, minute, 1))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert Fire.objects.count() == 5
    assert Job.objects.count() == 5
    assert Fire.objects.filter(job__isnull=True).count() == 0


def _start(tmp_path: Path, name: str) -> subprocess.Popen:
    env = worker_env(GREENROOM_SCHEDULER_LEASE_TTL=LEASE_TTL, PYTHONUNBUFFERED=1,
                     GREENROOM_PERIODIC=json.dumps({entry.name: "off" for entry in declared()}))
    log = (tmp_path / f"{name}.log").open("wb")
    try:
        return subprocess.Popen([sys.executable, "manage.py", "runscheduler", "--tick", str(TICK)],
                                cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


@pytest.mark.chaos
def test_killing_the_active_scheduler_hands_over_within_the_bound(transactional_db, redis, tmp_path):
    Schedule.objects.create(name="every minute", task="diagnostics.noop", cron="* * * * *")
    processes = {p.pid: p for p in (_start(tmp_path, "a"), _start(tmp_path, "b"))}
    try:
        def holder_pid() -> int | None:
            token = redis.get(LEASE_KEY)
            return int(token.decode().split(":")[1]) if token else None

        active = wait_for(holder_pid, timeout=30, what="a scheduler to take the lease")
        standby = next(pid for pid in processes if pid != active)
        time.sleep(LEASE_TTL)  # it keeps the lease by renewing it
        assert holder_pid() == active
        # Both beat their registry rows (the dashboard's Workers page); only the holder says active
        rows = wait_for(lambda: (r := list(FleetProcess.objects.filter(kind="scheduler"))) and len(r) == 2 and r,
                        timeout=10, what="two scheduler rows")
        assert {row.pid: row.active for row in rows} == {active: True, standby: False}

        # When the active one is SIGKILLed, the standby takes over within ttl + retry + tick
        processes[active].send_signal(signal.SIGKILL)
        processes[active].wait(10)
        killed_at = time.monotonic()
        wait_for(lambda: holder_pid() == standby, timeout=LEASE_TTL + 10, interval=0.05, what="the takeover")
        failover = time.monotonic() - killed_at
        print(f"\nscheduler failover after SIGKILL: {failover:.2f} s (lease ttl {LEASE_TTL} s)")
        assert failover <= LEASE_TTL + 1.0 + TICK + 1.0

        # When the new active one is stopped with SIGTERM, it releases the lease at once
        processes[standby].send_signal(signal.SIGTERM)
        assert processes[standby].wait(15) == 0
        assert FleetProcess.objects.get(pid=standby).stopped_at is not None
        assert redis.get(LEASE_KEY) is None
        assert b"became active" in (tmp_path / "b.log").read_bytes() + (tmp_path / "a.log").read_bytes()
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)


@pytest.mark.chaos
def test_two_runscheduler_processes_fire_the_next_slot_once_and_a_worker_runs_it(start_workers, redis, tmp_path):
    # Given a DB schedule every minute, two scheduler processes and a worker
    schedule = Schedule.objects.create(name="each minute", task="diagnostics.noop", cron="* * * * *")
    start_workers()
    processes = [_start(tmp_path, "a"), _start(tmp_path, "b")]
    try:
        # When the next minute comes, the active scheduler fires its slot
        fire = wait_for(lambda: Fire.objects.filter(schedule_key=schedule.key).first(), timeout=75, interval=0.5,
                        what="the next minute's fire")
        # Then its job runs to SUCCESSFUL on the worker
        job = wait_for(lambda: Job.objects.filter(pk=fire.job_id, status="SUCCESSFUL").first(), timeout=30,
                       what="the fired job to succeed")
        assert job.task == "diagnostics.noop"
        # And that slot has one fire and one job, though two schedulers were up
        time.sleep(2 * TICK)
        assert Fire.objects.filter(schedule_key=schedule.key, slot=fire.slot).count() == 1
        fires = Fire.objects.filter(schedule_key=schedule.key).count()
        assert Job.objects.filter(task="diagnostics.noop").count() == fires
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(15)
