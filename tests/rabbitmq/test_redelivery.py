"""SIGKILL of a worker on RabbitMQ: the job comes back through the ledger's reconciler.

RabbitMQ gives a dead connection's unacked messages back at once, long before the killed job's
heartbeat is stale: the claim refuses that early copy (the row is RUNNING with a fresh heartbeat)
and drops it. The reconciler then puts the row back to READY once its heartbeat is stale, and the
relay publishes it again (tests/runtime/test_redelivery.py checks the Redis broker's own path).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rabbitmq.conftest import rabbitmq_only
from tests.support.runtime import Stopwatch, lines, say, wait_running, wait_status, worker_of, worker_pid
from tests.support.workers import wait_for, worker_program
from workers import services
from workers.models import Job, JobStatus

pytestmark = rabbitmq_only


@pytest.mark.chaos
def test_a_job_killed_with_its_worker_runs_again_and_no_other_job_is_lost(start_workers, rabbitmq, tmp_path: Path):
    # Given a job running on a one-thread worker, a sibling worker, and other jobs queued beside it
    victims = start_workers(worker_program("victim", queues=["default"], threads=1))
    record = tmp_path / "victim.txt"
    job = services.job_enqueue(task="testing.record", params={"path": str(record), "seconds": 8})
    old_pid = worker_of(wait_running(job, timeout=20))
    assert old_pid == worker_pid(victims, "victim")
    start_workers(worker_program("sibling", queues=["default"], threads=2))
    others = [services.job_enqueue(task="testing.record", params={"path": str(tmp_path / f"o{n}.txt"), "seconds": 0.3})
              for n in range(6)]
    # When the victim's process group is SIGKILLed mid-job
    victims.kill("victim")
    clock = Stopwatch()
    # Then the job runs again (its second attempt) and succeeds, having started exactly twice
    wait_for(lambda: Job.objects.filter(pk=job.pk, attempts__gte=2).exists(), timeout=60, interval=0.2,
             what="the killed job to run again")
    say(f"RabbitMQ: SIGKILL → job running again after {clock.elapsed:.1f} s")
    done = wait_status(job, timeout=30)
    assert (done.status, done.attempts) == (JobStatus.SUCCESSFUL, 2)
    assert lines(record) == ["start 1", "start 2", "done"]
    # And every other job ran once
    for n, other in enumerate(others):
        finished = wait_status(other, timeout=40)
        assert (finished.status, finished.attempts) == (JobStatus.SUCCESSFUL, 1)
        assert lines(tmp_path / f"o{n}.txt") == ["start 1", "done"]
