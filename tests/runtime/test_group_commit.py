"""Group commit of claims and finish writes (GREENROOM_LEDGER_GROUP_COMMIT): one writer thread per process."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError, connection
from django.utils import timezone

from tests.support.runtime import hold_finish_writes, lines, row, wait_running
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


def _ready() -> Job:
    return Job.objects.create(task="diagnostics.noop", queue="interactive", params={"n": 1},
                              enqueued_at=timezone.now())


def _claim_in_threads(writer: LedgerWriter, job_ids: list[Any]) -> list[Any]:
    """Each `writer.claim` from its own thread, as worker threads call it: the claimed Job, None or an error."""
    outcomes: list[Any] = [None] * len(job_ids)

    def claim(index: int, job_id: Any) -> None:
        try:
            outcomes[index] = writer.claim(job_id)
        except Exception as exc:  # the test looks at it
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(n, job_id)) for n, job_id in enumerate(job_ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


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
    release = hold_finish_writes(monkeypatch)
    first, later = _running(), [_running() for _ in range(20)]
    done: dict[uuid.UUID, Any] = {}
    thread = threading.Thread(target=lambda: done.update(_succeed_in_threads(writer, [(first, 1)])))
    thread.start()
    wait_for(lambda: writer._thread is not None and not writer.waiting(), timeout=10, what="the first write taken")
    # When 20 more worker threads finish meanwhile
    others = threading.Thread(target=lambda: done.update(_succeed_in_threads(writer, [(j, 1) for j in later])))
    others.start()
    wait_for(lambda: writer.waiting() == 20, timeout=10, what="20 writes queued")
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


def test_claim_runs_claims_ready_and_stale_rows_only(transactional_db):
    # Given a READY row, a RUNNING row with a fresh heartbeat, a stale RUNNING row, a cancelled and a finished one
    ready, fresh, stale = _ready(), _running(), _running()
    Job.objects.filter(pk=stale.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    cancelled = _ready()
    Job.objects.filter(pk=cancelled.pk).update(cancel_requested_at=timezone.now())
    finished = _ready()
    Job.objects.filter(pk=finished.pk).update(status=JobStatus.SUCCESSFUL)
    # When one statement claims all five (plus an id with no row)
    claimed = ledger_sql.claim_runs([ready.pk, fresh.pk, stale.pk, cancelled.pk, finished.pk, uuid.uuid4()],
                                    worker="here:9", stale_before=timezone.now() - timedelta(minutes=1))
    # Then only the READY and the stale row are claimed, each as the run needs it
    assert set(claimed) == {str(ready.pk), str(stale.pk)}
    assert claimed[str(ready.pk)].params == {"n": 1}
    assert (claimed[str(ready.pk)].attempts, claimed[str(stale.pk)].attempts) == (1, 2)
    for job in (ready, stale):
        current = row(job)
        assert (current.status, current.worker) == (JobStatus.RUNNING, "here:9")
        assert current.started_at is not None
    assert row(fresh).worker == "here:1"
    assert row(cancelled).status == JobStatus.READY
    assert row(finished).status == JobStatus.SUCCESSFUL


def test_claims_queued_while_the_writer_is_busy_go_out_in_one_statement(writer, monkeypatch):
    # Given a writer busy with a first claim (held until the test lets it go)
    release, real = threading.Event(), ledger_sql.claim_runs

    def held(job_ids: list[Any], **kwargs: Any) -> dict[str, Job]:
        release.wait(30)
        return real(job_ids, **kwargs)

    monkeypatch.setattr(ledger_sql, "claim_runs", held)
    first, later = _ready(), [_ready() for _ in range(12)]
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.extend(_claim_in_threads(writer, [first.pk])))
    thread.start()
    wait_for(lambda: writer._thread is not None and not writer.waiting(), timeout=10, what="the first claim taken")
    # When 12 more worker threads claim meanwhile, one job twice (its message delivered twice at once)
    ids = [job.pk for job in later] + [later[0].pk]
    others = threading.Thread(target=lambda: results.extend(_claim_in_threads(writer, ids)))
    others.start()
    wait_for(lambda: writer.waiting() == 13, timeout=10, what="13 claims queued")
    release.set()
    thread.join(30)
    others.join(30)
    # Then every job is claimed once, in two statements; the second claim of the doubled job gets None
    claimed = [job for job in results if job is not None]
    assert sorted(str(job.pk) for job in claimed) == sorted(str(job.pk) for job in [first, *later])
    assert results.count(None) == 1
    assert (writer.batches, writer.rows) == (2, 14)
    assert {row(job).status for job in [first, *later]} == {JobStatus.RUNNING}
    assert {row(job).attempts for job in [first, *later]} == {1}


def test_a_finish_and_a_claim_of_one_job_in_one_round_end_the_job_once(writer, monkeypatch):
    # Given a writer held busy, and a job that one run is finishing while its redelivered message claims it
    release, real = threading.Event(), ledger_sql.claim_runs
    blocker, job = _ready(), _running()
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))  # looks stale

    def held(job_ids: list[Any], **kwargs: Any) -> dict[str, Job]:
        if str(blocker.pk) in {str(job_id) for job_id in job_ids}:
            release.wait(30)
        return real(job_ids, **kwargs)

    monkeypatch.setattr(ledger_sql, "claim_runs", held)
    outcomes: dict[str, Any] = {}
    busy = threading.Thread(target=lambda: outcomes.update(blocker=_claim_in_threads(writer, [blocker.pk])[0]))
    busy.start()
    wait_for(lambda: writer._thread is not None and not writer.waiting(), timeout=10, what="the blocker taken")
    claim = threading.Thread(target=lambda: outcomes.update(claim=_claim_in_threads(writer, [job.pk])[0]))
    finish = threading.Thread(target=lambda: outcomes.update(finish=_succeed_in_threads(writer, [(job, 1)])[job.pk]))
    claim.start()
    finish.start()
    wait_for(lambda: writer.waiting() == 2, timeout=10, what="the claim and the finish queued")
    # When the writer takes both in one round
    release.set()
    for thread in (busy, claim, finish):
        thread.join(30)
    # Then the finish went first: the job is SUCCESSFUL after one run and the redelivery claims nothing
    assert outcomes["finish"] is True
    assert outcomes["claim"] is None
    assert (row(job).status, row(job).attempts) == (JobStatus.SUCCESSFUL, 1)


def test_a_round_answers_its_claims_before_it_writes_its_finishes(writer, monkeypatch):
    # Given a writer held busy by a claim, and finish writes that are held up as well
    release_claim, real = threading.Event(), ledger_sql.claim_runs
    blocker, running, ready = _ready(), _running(), _ready()

    def held(job_ids: list[Any], **kwargs: Any) -> dict[str, Job]:
        if str(blocker.pk) in {str(job_id) for job_id in job_ids}:
            release_claim.wait(30)
        return real(job_ids, **kwargs)

    monkeypatch.setattr(ledger_sql, "claim_runs", held)
    release_finish = hold_finish_writes(monkeypatch)
    outcomes: dict[str, Any] = {}
    busy = threading.Thread(target=lambda: outcomes.update(blocker=_claim_in_threads(writer, [blocker.pk])[0]))
    busy.start()
    wait_for(lambda: writer._thread is not None and not writer.waiting(), timeout=10, what="the blocker taken")
    # When a finish of one job and a claim of another are queued for the same round
    finish = threading.Thread(
        target=lambda: outcomes.update(finish=_succeed_in_threads(writer, [(running, 1)])[running.pk]))
    finish.start()
    wait_for(lambda: writer.waiting() == 1, timeout=10, what="the finish queued")
    claim = threading.Thread(target=lambda: outcomes.update(claim=_claim_in_threads(writer, [ready.pk])[0]))
    claim.start()
    wait_for(lambda: writer.waiting() == 2, timeout=10, what="the claim queued")
    release_claim.set()
    # Then the claim is answered while the finish is still being written
    claim.join(30)
    assert outcomes["claim"] is not None and outcomes["claim"].pk == ready.pk
    assert "finish" not in outcomes
    assert row(running).status == JobStatus.RUNNING
    release_finish.set()
    for thread in (busy, finish):
        thread.join(30)
    assert outcomes["finish"] is True
    assert row(running).status == JobStatus.SUCCESSFUL


def test_a_failed_claim_batch_is_claimed_row_by_row(writer, monkeypatch):
    # Given claim batches that fail
    jobs = [_ready() for _ in range(4)]

    def batch_fails(job_ids: list[Any], **kwargs: Any) -> dict[str, Job]:
        if len(job_ids) > 1:
            raise DatabaseError("batch refused, on purpose")
        return real(job_ids, **kwargs)

    real = ledger_sql.claim_runs
    monkeypatch.setattr(ledger_sql, "claim_runs", batch_fails)
    # When worker threads claim
    outcomes = _claim_in_threads(writer, [job.pk for job in jobs])
    # Then each is claimed all the same, by its own statement if its batch failed
    assert sorted(str(job.pk) for job in outcomes) == sorted(str(job.pk) for job in jobs)
    assert {row(job).status for job in jobs} == {JobStatus.RUNNING}


def test_shutdown_writes_what_is_queued_closes_the_connection_and_the_next_writer_is_new(transactional_db):
    from workers import ledger_writer

    # Given this process's writer, which has written a finish
    first = ledger_writer.writer()
    job = _running()
    assert _succeed_in_threads(first, [(job, 1)]) == {job.pk: True}
    thread = first._thread
    assert thread is not None and thread.is_alive()
    # When the process's worker shuts down
    ledger_writer.shutdown()
    # Then the writer thread has ended, and a later claim gets a fresh writer that works
    assert not thread.is_alive()
    second = ledger_writer.writer()
    assert second is not first
    ready = _ready()
    assert [str(claimed.pk) for claimed in _claim_in_threads(second, [ready.pk])] == [str(ready.pk)]
    ledger_writer.shutdown()
