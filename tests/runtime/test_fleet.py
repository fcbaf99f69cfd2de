"""The fleet registry and the operators' handling of failures, with real worker processes.

A worker process beats its FleetProcess row (queues, threads, running jobs, memory) and marks it
stopped on a clean shutdown; retrying or discarding a dead-lettered failure takes its message out
of the dead-letter queue and the job off the failures list.
"""

from __future__ import annotations

import time
from typing import Any

from tests.support.runtime import dead_letters, redis_only, wait_dead_letter, wait_running, wait_status
from workers import broker_ops, registry, services
from workers.models import FleetProcess, JobStatus, ProcessKind


def _wait_for(predicate: Any, *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_worker_process_beats_its_row_with_its_running_jobs_and_marks_it_stopped(start_workers, settings):
    settings.GREENROOM_HEARTBEAT_INTERVAL = 0.5
    pool = start_workers()
    row = _wait_for(lambda: registry.alive(ProcessKind.WORKER).first(), timeout=30, what="a worker row")
    assert row.queues == ["batch", "default", "interactive"]
    assert row.threads == 4
    assert row.rss_bytes > 10 * 1024 * 1024
    job = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 4})
    wait_running(job, timeout=20)
    _wait_for(lambda: FleetProcess.objects.get(pk=row.pk).running == [{"id": str(job.pk), "task": job.task}],
              timeout=10, what="the running job in the worker's row")
    wait_status(job, JobStatus.SUCCESSFUL, timeout=20)
    _wait_for(lambda: FleetProcess.objects.get(pk=row.pk).running == [], timeout=10, what="an idle row")
    pool.stop()
    stopped = FleetProcess.objects.get(pk=row.pk)
    assert stopped.stopped_at is not None
    assert not registry.alive(ProcessKind.WORKER).filter(pk=row.pk).exists()


@redis_only
def test_retrying_a_dead_lettered_failure_removes_it_from_the_dlq_and_the_failures(start_workers, broker):
    start_workers()
    first = services.job_enqueue(task="diagnostics.fail", params={"kind": "permanent", "message": "no"})
    second = services.job_enqueue(task="diagnostics.fail", params={"kind": "permanent", "message": "no"})
    first, second = (wait_status(job, JobStatus.FAILED, timeout=30) for job in (first, second))
    for job in (first, second):
        wait_dead_letter(broker.client, job)
    assert [s.dead for s in broker_ops.queue_stats(["default"])] == [2]

    retry = services.job_retry(job=first)
    services.job_discard(job=second)

    assert {str(first.pk), str(second.pk)}.isdisjoint(dead_letters(broker.client))
    first.refresh_from_db()
    assert first.dismissed_at is not None and second.dismissed_at is not None
    assert retry.retry_of_id == first.pk
    wait_status(retry, JobStatus.FAILED, timeout=30)  # the rerun fails too: it is listed, as a new failure
    retry.refresh_from_db()
    assert retry.dismissed_at is None
