"""A job whose message Redis lost (restart without persistence) is published again, once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.runtime import redis_only, starts, wait_status
from tests.support.workers import worker_program
from workers import publishing, services
from workers.models import Job, JobStatus


@redis_only
@pytest.mark.chaos
def test_a_ready_job_whose_message_was_lost_is_published_again_and_runs_once(start_workers, broker, tmp_path: Path):
    # Given a job published while no worker runs
    record = tmp_path / "runs.txt"
    job = services.job_enqueue(task="testing.record", params={"path": str(record)})
    assert Job.objects.get(pk=job.pk).enqueued_at is not None
    # And Redis then loses every message (as a restart without persistence would)
    broker.client.flushdb()

    # When workers start, whose housekeeping presumes messages lost after one second
    start_workers(worker_program("w", queues=["default"], threads=2,
                                 GREENROOM_REPUBLISH_AFTER=1, GREENROOM_RELAY_INTERVAL=0.5))

    # Then the job is published again and runs, once
    done = wait_status(job, JobStatus.SUCCESSFUL, timeout=30)
    assert done.attempts == 1
    assert starts(record) == 1


@redis_only
def test_a_ready_job_still_waiting_in_its_queue_is_not_published_again(transactional_db, broker):
    # Given two published jobs, older than the threshold, still waiting in the default queue
    first = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 0})
    second = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 0})
    Job.objects.filter(pk__in=[first.pk, second.pk]).update(enqueued_at=first.created_at.replace(year=2020))

    # When the lost-message check runs
    count = publishing.republish_lost(older_than=60)

    # Then nothing is republished: the queue is not empty, their messages are in it
    assert count == 0
    assert not Job.objects.filter(pk__in=[first.pk, second.pk], enqueued_at__isnull=True).exists()

    # And once the queue is emptied behind their back, both are unpublished for the relay
    broker.client.flushdb()
    assert publishing.republish_lost(older_than=60) == 2
    assert Job.objects.filter(pk__in=[first.pk, second.pk], enqueued_at__isnull=True).count() == 2
