"""Group commit of finish writes (GREENROOM_LEDGER_GROUP_COMMIT): one writer thread per process."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError, connection
from django.utils import timezone

from tests.support.runtime import lines, row, wait_running
from tests.support.workers import wait_for, worker_program
from workers import ledger_sql, services
from workers.ledger_writer import LedgerWriter
from workers.models import Job, JobStatus

PROGRESS = {"progress_done": 1, "progress_total": 1, "progress_message": "done"}


def _running(*, attempts: int = 1) -> Job:
    now = timezone.now()
    return Job.objects.create(task="diagnostics.noop", queue="interactive", status=JobStatus.RUNNING,
                              attempts=attempts, worker="here:1", created_at=now, enqueued_at=now, started_at=now,
                              heartbeat_at=now)


def _succeed_in_threads(writer: LedgerWriter, runs: list[tuple[Job, int]]) -> dict[uuid.UUID, Any]:
    """Each run's `writer.succeed` from its own thread (as worker threads call it): outcome or error."""
    outcomes: dict[uuid.UUID, Any] = {}

    def finish(job: Job, attempt: int) -> None:
        try:
            outcomes[job.pk] = writer.succeed(job.pk, attempt=attempt, result={"n": str(job.pk)}, progress=PROGRESS)
        except Exception as exc:  # the test looks at it
            outcomes[job.pk] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=finish, args=run) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


@pytest.fixture
def writer(transactional_db: None) -> Any:
    writer = LedgerWriter()
    yield writer
    writer.stop()


def test_finish_writes_queued_while_the_writer_is_busy_go_out_in_one_batch(writer, monkeypatch):
    # Given a writer busy with a first write (held until the test lets it go)
    release, real = threading.Event(), ledger_sql.succeed_runs

    def held(runs: list[ledger_sql.FinishedRun]) -> set[str]:
        release.wait(30)
        return real(runs)

    monkeypatch.setattr(ledger_sql, "succeed_runs", held)
    first, later = _running(), [_running() for _ in range(20)]
    done: dict[uuid.UUID, Any] = {}
    thread = threading.Thread(target=lambda: done.update(_succeed_in_threads(writer, [(first, 1)])))
    thread.start()
    wait_for(lambda: writer._thread is not None and not writer._pending, timeout=10, what="the first write taken")
    # When 20 more worker threads finish meanwhile
    others = threading.Thread(target=lambda: done.update(_succeed_in_threads(writer, [(j, 1) for j in later])))
    others.start()
    wait_for(lambda: len(writer._pending) == 20, timeout=10, what="20 writes queued")
    release.set()
    thread.join(30)
    others.join(30)
    # Then all 21 rows are SUCCESSFUL with their results, written in two statements
    assert done == {job.pk: True for job in [first, *later]}
    assert (writer.batches, writer.rows) == (2, 21)
    for job in [first, *later]:
        current = row(job)
        assert current.status == JobStatus.SUCCESSFUL
        assert current.result == {"n": str(job.pk)}
        assert (current.progress_done, current.progress_total, current.progress_message) == (1, 1, "done")
        assert current.finished_at is not None


def test_a_run_whose_row_moved_on_is_refused_without_failing_its_batch(writer):
    # Given a row this worker still owns and one another run took over (attempt 2)
    ours, taken = _running(attempts=1), _running(attempts=2)
    # When both attempt-1 runs finish through the writer
    outcomes = _succeed_in_threads(writer, [(ours, 1), (taken, 1)])
    # Then ours is SUCCESSFUL and the taken-over row is left to its new run
    assert outcomes == {ours.pk: True, taken.pk: False}
    assert row(ours).status == JobStatus.SUCCESSFUL
    assert row(taken).status == JobStatus.RUNNING
    assert row(taken).result is None


def test_a_failed_batch_is_written_row_by_row_and_a_bad_row_fails_alone(writer, monkeypatch):
    # Given batch statements that fail, and one row whose own write fails too
    jobs = [_running() for _ in range(5)]
    bad = jobs[2]
    real_one = ledger_sql.succeed_run

    def batch_fails(runs: list[ledger_sql.FinishedRun]) -> set[str]:
        raise DatabaseError("batch refused, on purpose")

    def one(job_id: Any, **kwargs: Any) -> bool:
        if str(job_id) == str(bad.pk):
            raise DatabaseError("this row refused, on purpose")
        return real_one(job_id, **kwargs)

    monkeypatch.setattr(ledger_sql, "succeed_runs", batch_fails)
    monkeypatch.setattr(ledger_sql, "succeed_run", one)
    # When the runs finish
    outcomes = _succeed_in_threads(writer, [(job, 1) for job in jobs])
    # Then every other row is SUCCESSFUL; only the bad row's thread gets its error (as without group commit)
    assert isinstance(outcomes.pop(bad.pk), DatabaseError)
    assert outcomes == {job.pk: True for job in jobs if job is not bad}
    assert [row(job).status for job in jobs] == [JobStatus.SUCCESSFUL] * 2 + [JobStatus.RUNNING] + [
        JobStatus.SUCCESSFUL] * 2


def test_worker_threads_write_their_rows_themselves_when_the_writer_thread_is_dead(writer, monkeypatch):
    # Given a writer whose thread dies as soon as it starts
    monkeypatch.setattr(writer, "_loop", lambda: None)
    jobs = [_running() for _ in range(3)]
    # When runs finish
    outcomes = _succeed_in_threads(writer, [(job, 1) for job in jobs])
    # Then they do not hang: each thread wrote its own row
    assert outcomes == {job.pk: True for job in jobs}
    assert {row(job).status for job in jobs} == {JobStatus.SUCCESSFUL}
    assert writer.batches == 0


def test_succeed_runs_writes_many_rows_in_one_statement(transactional_db):
    # Given running rows, one of them taken over by another attempt
    jobs = [_running() for _ in range(3)]
    moved_on = _running(attempts=3)
    now = timezone.now()
    runs = [ledger_sql.FinishedRun(job.pk, 1, [i, None, "x"], PROGRESS, now) for i, job in enumerate(jobs)]
    runs.append(ledger_sql.FinishedRun(moved_on.pk, 2, None, PROGRESS, now))
    # When they are written as one batch
    done = ledger_sql.succeed_runs(runs)
    # Then exactly the runs that still own their rows are SUCCESSFUL, with their own results
    assert done == {str(job.pk) for job in jobs}
    for i, job in enumerate(jobs):
        assert row(job).result == [i, None, "x"]
        assert row(job).finished_at == now
    assert row(moved_on).status == JobStatus.RUNNING


def test_many_jobs_end_successful_exactly_once_on_workers_with_group_commit(start_workers, broker, tmp_path: Path):
    # Given two worker processes of 8 threads with group commit on
    start_workers(*(worker_program(f"grouped-{n}", queues=["default"], threads=8,
                                   GREENROOM_LEDGER_GROUP_COMMIT="true") for n in (1, 2)))
    # When 300 jobs are enqueued at once
    params = [{"path": str(tmp_path / f"{n}.txt")} for n in range(300)]
    jobs = services.job_enqueue_many(task="testing.record", params_list=params).jobs
    # Then every one ends SUCCESSFUL after exactly one run, with its result, and every message is acked
    wait_for(lambda: Job.objects.filter(status=JobStatus.SUCCESSFUL).count() == len(jobs), timeout=120,
             what="300 jobs to succeed")
    wait_for(lambda: broker.client.hlen("dramatiq:default.msgs") == 0, timeout=30, what="every message acked")
    for job, job_params in zip(jobs, params, strict=True):
        current = row(job)
        assert (current.status, current.attempts, current.result) == (JobStatus.SUCCESSFUL, 1, {"runs": 1})
        assert lines(Path(job_params["path"])) == ["start 1", "done"]


def test_a_run_taken_over_meanwhile_does_not_overwrite_the_new_run_with_group_commit(start_workers, broker,
                                                                                     tmp_path: Path):
    # Given a job running on a worker with group commit, stalled in a long call
    start_workers(worker_program("grouped-stalled", queues=["default"], threads=2,
                                 GREENROOM_LEDGER_GROUP_COMMIT="true"))
    path = tmp_path / "stalled.txt"
    job = services.job_enqueue(task="testing.stall", params={"path": str(path), "seconds": 3})
    wait_running(job, timeout=20)
    # When another worker presumes it dead and takes it over (its second attempt)
    assert Job.claim(job.pk, worker="other-host:2", stale_before=timezone.now() + timedelta(seconds=1))
    # Then, when the stalled run ends, its success does not touch the row: it is the new run's now
    wait_for(lambda: lines(path) == ["start 1", "end"], timeout=20, what="the stalled run to end")
    wait_for(lambda: broker.client.hlen("dramatiq:default.msgs") == 0, timeout=20, what="its message to be acked")
    current = row(job)
    assert (current.status, current.attempts, current.worker) == (JobStatus.RUNNING, 2, "other-host:2")
    assert current.result is None
    assert current.finished_at is None
