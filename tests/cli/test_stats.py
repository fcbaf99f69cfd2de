"""`manage.py jobs stats`: the broker's queues, the ledger, the last hour, the fleet."""

from __future__ import annotations

import json
from typing import Any

import dramatiq
from django.utils import timezone

from project.broker import GreenroomRedisBroker
from tests.cli.helpers import failed_job, put_dead_letter, run
from tests.support.redis_server import free_port
from tests.support.runtime import wait_running
from tests.support.workers import wait_for
from workers import registry, services
from workers.models import Job, JobStatus


def _stats() -> dict[str, Any]:
    return json.loads(run("stats", "--json")[0])


def test_stats_counts_the_queues_the_ledger_and_the_last_hour(db, broker):
    # Given two waiting jobs, a dead letter, a success and a failure within the hour, an old success
    for _ in range(2):
        services.job_enqueue(task="diagnostics.sleep", params={"seconds": 1})
    failure = failed_job()
    put_dead_letter(broker.client, message_id=str(failure.pk), actor="diagnostics.fail")
    Job.objects.create(task="diagnostics.noop", queue="interactive", status=JobStatus.SUCCESSFUL,
                       finished_at=timezone.now())
    Job.objects.create(task="diagnostics.noop", queue="interactive", status=JobStatus.SUCCESSFUL,
                       finished_at=timezone.now() - timezone.timedelta(hours=2))
    # When the operator asks for the stats
    data = _stats()
    text, _ = run("stats")
    # Then the broker's queues, the ledger's counts and the last hour add up
    default = next(q for q in data["queues"] if q["queue"] == "default")
    assert (default["waiting"], default["in_flight"], default["delayed"], default["dead"]) == (2, 0, 0, 1)
    assert default["oldest_age"] is not None
    assert data["ledger"] == {"READY": 2, "RUNNING": 0, "SUCCESSFUL": 2, "FAILED": 1, "CANCELLED": 0}
    assert data["last_hour"]["default"] == {"finished": 1, "failed": 1}
    assert data["last_hour"]["interactive"] == {"finished": 1, "failed": 0}
    assert data["broker"] == {"reachable": True, "error": None}
    assert data["workers"] == [] and data["scheduler"] is None
    assert any(line.split()[:5] == ["default", "2", "0", "0", "1"] for line in text.splitlines())
    assert "READY 2  RUNNING 0  SUCCESSFUL 2  FAILED 1  CANCELLED 0" in text
    assert "Workers alive: 0" in text and "Scheduler: never seen" in text


def test_stats_shows_live_workers_their_running_jobs_and_the_scheduler_beat(start_workers, broker):
    # Given a worker running a job, and a scheduler that beat
    start_workers()
    job = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 30})
    wait_running(job, timeout=60)
    registry.process_beat(kind="scheduler", active=True)
    # When the operator asks for the stats, until the worker's beat shows the job
    def showing_the_job() -> dict[str, Any] | None:
        data = _stats()
        return data if data["workers"] and data["workers"][0]["running"] else None

    data = wait_for(showing_the_job, timeout=30, what="a worker beat that shows the running job")
    text, _ = run("stats")
    # Then the worker is listed with its pid, queues, running job and memory
    [worker] = data["workers"]
    assert worker["pid"] == int(Job.objects.get(pk=job.pk).worker.rsplit(":", 1)[1])
    assert worker["queues"] == ["batch", "default", "interactive"]
    assert worker["running"] == [{"id": str(job.pk), "task": "diagnostics.sleep"}]
    assert worker["rss_bytes"] > 0
    assert data["ledger"]["RUNNING"] == 1
    assert "Workers alive: 1" in text and str(job.pk) in text
    # And the scheduler's last beat
    assert data["scheduler"]["alive"] is True and data["scheduler"]["active"] is True
    assert "Scheduler: last beat" in text and "holds the lease" in text
    services.job_cancel(job=Job.objects.get(pk=job.pk))


def test_stats_with_the_broker_unreachable_still_shows_the_ledger(db, broker):
    failed_job()
    previous = dramatiq.get_broker()
    dead = GreenroomRedisBroker(url=f"redis://127.0.0.1:{free_port()}/0", middleware=[])
    dramatiq.set_broker(dead)
    try:
        data = _stats()
        text, _ = run("stats")
    finally:
        dramatiq.set_broker(previous)
        dead.close()

    assert data["broker"]["reachable"] is False and "ConnectionError" in data["broker"]["error"]
    assert data["queues"] == []
    assert data["ledger"]["FAILED"] == 1
    assert "the broker is unreachable" in text
    assert "FAILED 1" in text
