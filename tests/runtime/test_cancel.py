"""Cancel: a READY job never starts; a RUNNING one stops at its next progress check and is not retried."""

from __future__ import annotations

from pathlib import Path

from tests.support.runtime import Stopwatch, dead_letters, delayed, redis_only, row, say, wait_running, wait_status
from tests.support.workers import wait_for
from workers import services
from workers.models import JobStatus


@redis_only
def test_cancelled_ready_job_is_never_started(start_workers, broker, tmp_path: Path):
    # Given a job published while no worker runs
    record = tmp_path / "cancelled.txt"
    job = services.job_enqueue(task="testing.record", params={"path": str(record)})
    assert row(job).enqueued_at is not None
    # When it is cancelled before any worker takes it
    services.job_cancel(job=row(job))
    assert row(job).status == JobStatus.CANCELLED
    # And workers start and work through the queue (a job enqueued after it has run)
    start_workers()
    later = services.job_enqueue(task="testing.record", params={"path": str(tmp_path / "later.txt")})
    assert wait_status(later, timeout=20).status == JobStatus.SUCCESSFUL
    wait_for(lambda: broker.client.hlen("dramatiq:default.msgs") == 0, timeout=10, what="the queue to drain")
    # Then the cancelled job never started
    final = row(job)
    assert final.status == JobStatus.CANCELLED
    assert final.attempts == 0
    assert final.started_at is None
    assert not record.exists()


@redis_only
def test_cancelled_running_job_stops_soon_and_is_not_retried(start_workers, broker):
    # Given a 30 s job that reports progress every second, running on a worker
    start_workers()
    job = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 30})
    wait_running(job, timeout=20)
    wait_for(lambda: row(job).progress_done >= 1, timeout=10, what="the job to make progress")
    # When it is cancelled
    clock = Stopwatch()
    services.job_cancel(job=row(job))
    assert row(job).status == JobStatus.RUNNING  # asked to stop, not yet stopped
    # Then it ends CANCELLED within a few seconds, not SUCCESSFUL
    done = wait_status(job, timeout=10)
    took = clock.elapsed
    say(f"cancel of a running job → CANCELLED in {took:.2f} s")
    assert done.status == JobStatus.CANCELLED
    assert took < 15.0  # well before the 30 s sleep would end (margin for a loaded machine)
    assert done.finished_at is not None and done.cancel_requested_at is not None
    # And its message was acked, not retried nor dead-lettered
    wait_for(lambda: broker.client.hlen("dramatiq:default.msgs") == 0, timeout=10, what="the message to be acked")
    assert str(job.pk) not in delayed(broker.client)
    assert str(job.pk) not in dead_letters(broker.client)
    final = row(job)
    assert final.attempts == 1
    assert final.status == JobStatus.CANCELLED
    assert final.progress_done < 30
