"""The reconciler: RUNNING rows whose worker is gone come back; jobs that keep killing workers stop."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from tests.support.runtime import delayed, lines, redis_only, row, wait_running
from tests.support.workers import wait_for, worker_program
from workers import catalogue, context, execution, services
from workers.middleware import beat
from workers.models import FINISHED_STATUSES, Job, JobStatus


def _orphan(path: Path, *, attempts: int, heartbeat_age: float) -> Job:
    """A RUNNING row as a worker that died mid-job leaves it: its message is gone with the worker."""
    now = timezone.now()
    return Job.objects.create(
        task="testing.record", queue="default", params={"path": str(path), "seconds": 0, "fail_times": 0},
        status=JobStatus.RUNNING, attempts=attempts, worker="gone-host:1",
        created_at=now - timedelta(seconds=120), enqueued_at=now - timedelta(seconds=120),
        started_at=now - timedelta(seconds=heartbeat_age), heartbeat_at=now - timedelta(seconds=heartbeat_age),
    )


def test_running_job_with_a_stale_heartbeat_and_no_worker_is_requeued_and_completes(start_workers, tmp_path: Path):
    # Given a RUNNING row whose heartbeat stopped a minute ago and whose worker is gone
    record = tmp_path / "orphan.txt"
    job = _orphan(record, attempts=1, heartbeat_age=60)
    # And a fresh row that is running fine (heartbeat just now) on another, live, worker
    busy = _orphan(tmp_path / "busy.txt", attempts=1, heartbeat_age=0)
    # When a worker starts (its reconciler presumes RUNNING rows dead after 5 s without a heartbeat)
    start_workers(worker_program("reconciler", queues=["default"], threads=2,
                                 GREENROOM_STALE_AFTER=5, GREENROOM_RELAY_INTERVAL=0.5))
    # Then the stale row is put back, published by the relay and run to SUCCESSFUL, as attempt 2
    def finished_while_busy_beats() -> Job | None:
        Job.objects.filter(pk=busy.pk).update(heartbeat_at=timezone.now())  # its live worker's heartbeat
        return Job.objects.filter(pk=job.pk, status__in=FINISHED_STATUSES).first()

    done = wait_for(finished_while_busy_beats, timeout=30, what="the orphaned job to finish")
    assert done.status == JobStatus.SUCCESSFUL
    assert done.attempts == 2
    assert done.enqueued_at is not None
    assert lines(record) == ["start 2", "done"]
    # And the row with a fresh heartbeat was left alone (it is someone else's, and alive)
    assert row(busy).status == JobStatus.RUNNING
    assert row(busy).attempts == 1
    assert not (tmp_path / "busy.txt").exists()


def test_job_whose_workers_keep_dying_fails_with_worker_lost(transactional_db, tmp_path: Path):
    # Given a job that has already been started as often as its retries and the loss limit allow,
    # each time losing its worker (its row is RUNNING with a stale heartbeat once more)
    spec = catalogue.get("testing.record")
    assert spec is not None
    limit = spec.max_retries + 1 + execution.WORKER_LOSS_LIMIT
    record = tmp_path / "doomed.txt"
    doomed = _orphan(record, attempts=limit, heartbeat_age=60)
    # When a worker takes it over once more
    execution.run_job(spec, str(doomed.pk))
    # Then it is FAILED with WorkerLost instead of being run (and killing that worker) again
    failed = row(doomed)
    assert failed.status == JobStatus.FAILED
    assert failed.error_class == "workers.errors.WorkerLost"
    assert f"started {limit + 1} times" in failed.error_message
    assert failed.attempts == limit + 1
    assert not record.exists()


def test_job_within_the_worker_loss_limit_is_still_run(transactional_db, tmp_path: Path):
    # Given a job one start short of the loss limit
    spec = catalogue.get("testing.record")
    assert spec is not None
    limit = spec.max_retries + 1 + execution.WORKER_LOSS_LIMIT
    record = tmp_path / "survivor.txt"
    survivor = _orphan(record, attempts=limit - 1, heartbeat_age=60)
    # When a worker takes it over
    execution.run_job(spec, str(survivor.pk))
    # Then it runs, and succeeds
    done = row(survivor)
    assert done.status == JobStatus.SUCCESSFUL
    assert done.attempts == limit
    assert lines(record) == [f"start {limit}", "done"]


@redis_only
def test_a_run_presumed_dead_and_taken_over_cannot_end_the_run_that_replaced_it(start_workers, broker,
                                                                                 tmp_path: Path):
    # Given two jobs running on a worker, stalled in a long call without progress, one of which
    # will succeed and the other fail
    start_workers(worker_program("stalled", queues=["default"], threads=2))
    jobs = {
        ending: services.job_enqueue(task="testing.stall", params={"path": str(tmp_path / f"{ending}.txt"),
                                                                   "seconds": 3, "fail": ending == "fails"})
        for ending in ("succeeds", "fails")
    }
    for job in jobs.values():
        wait_running(job, timeout=20)
    # When another worker presumes them dead and takes them over (their second attempt)
    for job in jobs.values():
        assert Job.claim(job.pk, worker="other-host:2", stale_before=timezone.now() + timedelta(seconds=1))
    # Then, when the stalled runs end, neither success nor failure touches the rows: they are the
    # new runs' now
    for ending in jobs:
        wait_for(lambda ending=ending: lines(tmp_path / f"{ending}.txt") == ["start 1", "end"], timeout=10,
                 what=f"the stalled run that {ending} to end")
    wait_for(lambda: broker.client.hlen("dramatiq:default.msgs") == 0, timeout=10, what="both messages to be done")
    for ending, job in jobs.items():
        current = row(job)
        assert current.status == JobStatus.RUNNING, ending
        assert current.attempts == 2, ending
        assert current.worker == "other-host:2", ending
        assert current.result is None, ending
        assert current.error_class == "", ending
        assert current.next_attempt_at is None, ending
    # And the stalled run's failure was not retried (its retry would be a third run)
    assert str(jobs["fails"].pk) not in delayed(broker.client)


def test_heartbeats_of_a_run_that_was_taken_over_do_not_keep_the_new_run_alive(transactional_db, tmp_path: Path):
    # Given two RUNNING rows whose heartbeat stopped: one still this worker's run (attempt 1), one
    # taken over by another worker since (now attempt 2)
    ours = _orphan(tmp_path / "ours.txt", attempts=1, heartbeat_age=30)
    taken = _orphan(tmp_path / "taken.txt", attempts=2, heartbeat_age=30)
    runs = [context.JobContext(job_id=job.pk, task=job.task, attempt=1, progress_interval=1, hard_deadline=0)
            for job in (ours, taken)]
    # When this worker's housekeeping beats for its runs (both attempt 1)
    beaten = beat(runs)
    # Then only its own run's row looks alive; the other stays stale for its real owner to refresh
    assert beaten == 1
    assert (timezone.now() - row(ours).heartbeat_at).total_seconds() < 5
    assert (timezone.now() - row(taken).heartbeat_at).total_seconds() >= 30
