from __future__ import annotations

from tests.support.workers import wait_for
from workers import services
from workers.models import Job, JobStatus


def test_enqueued_job_reaches_successful_on_a_real_worker(start_workers):
    # Given a worker process on the real Redis broker
    start_workers()
    # When a job is enqueued
    job = services.job_enqueue(task="diagnostics.noop")
    # Then it ends SUCCESSFUL with its result
    done = wait_for(lambda: Job.objects.filter(pk=job.pk, status=JobStatus.SUCCESSFUL).first(), timeout=30)
    assert done.result == {"ok": True}
    assert done.attempts == 1
