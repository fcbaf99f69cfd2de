"""Bulk enqueue through real worker processes: every job runs once, and the ledger's fast paths hold."""

from __future__ import annotations

from pathlib import Path

from tests.support.runtime import lines
from tests.support.workers import wait_for, worker_program
from workers import services
from workers.models import Job, JobStatus


def test_jobs_enqueued_in_bulk_each_run_exactly_once(start_workers, tmp_path: Path):
    # Given two worker processes
    start_workers(
        worker_program("one", queues=["default"], threads=4),
        worker_program("two", queues=["default"], threads=4),
    )

    # When 200 jobs are enqueued in one call, each recording its runs in its own file
    paths = [tmp_path / f"{n}.txt" for n in range(200)]
    outcome = services.job_enqueue_many(task="testing.record", params_list=[{"path": str(p)} for p in paths])
    ids = [job.pk for job in outcome.jobs]

    # Then every job ends SUCCESSFUL after one run, with its result written by the worker
    def all_done() -> bool:
        return Job.objects.filter(pk__in=ids, status=JobStatus.SUCCESSFUL).count() == len(ids)

    wait_for(all_done, timeout=120, interval=0.5, what="200 bulk-enqueued jobs to succeed")
    rows = list(Job.objects.filter(pk__in=ids))
    assert {row.attempts for row in rows} == {1}
    assert all(row.result == {"runs": 1} and row.finished_at is not None for row in rows)
    assert all(row.enqueued_at is not None and row.started_at is not None for row in rows)
    # And no job ran twice
    assert all(lines(path) == ["start 1", "done"] for path in paths)
