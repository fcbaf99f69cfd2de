"""Duplicate delivery: a job's message delivered more than once runs the job once."""

from __future__ import annotations

from pathlib import Path

import dramatiq

from tests.support.runtime import redis_only, row, starts, wait_running, wait_status
from tests.support.workers import wait_for, worker_program
from workers import publishing, services
from workers.models import JobStatus


def _unacked(broker: dramatiq.Broker) -> int:
    """Messages of the default queue not yet acked (waiting, prefetched or being processed)."""
    return int(broker.client.hlen("dramatiq:default.msgs"))


@redis_only
def test_a_duplicate_message_runs_the_job_only_once(start_workers, broker, tmp_path: Path):
    # Given two workers, and a job running on one of them
    start_workers(
        worker_program("dup-a", queues=["default"], threads=2),
        worker_program("dup-b", queues=["default"], threads=2),
    )
    record = tmp_path / "dup.txt"
    job = services.job_enqueue(task="testing.record", params={"path": str(record), "seconds": 4})
    wait_running(job, timeout=20)

    # When its message is published again while it runs
    broker.enqueue(publishing.message_for(row(job)))
    # Then the copy is consumed and dropped (acked) while the job is still running
    wait_for(lambda: _unacked(broker) == 1, timeout=10, what="the duplicate to be dropped")
    assert row(job).status == JobStatus.RUNNING

    # When it has finished and its message is published once more
    done = wait_status(job, timeout=20)
    assert done.status == JobStatus.SUCCESSFUL
    broker.enqueue(publishing.message_for(done))
    wait_for(lambda: _unacked(broker) == 0, timeout=10, what="the late duplicate to be dropped")

    # Then the job function ran exactly once, and the row is untouched by the copies
    assert starts(record) == 1
    final = row(job)
    assert final.attempts == 1
    assert final.status == JobStatus.SUCCESSFUL
    assert final.result == {"runs": 1}
    assert final.finished_at == done.finished_at
