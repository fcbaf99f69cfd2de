"""Several worker processes writing the ledger at once: no "database is locked", no lost job."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.workers import wait_for, worker_program
from workers import services
from workers.models import Job, JobStatus

JOBS = 300


@pytest.mark.chaos
def test_three_worker_processes_drain_hundreds_of_jobs_without_lock_errors(start_workers, tmp_path: Path) -> None:
    # Given three worker processes (12 threads) writing to the same database
    logs = [tmp_path / f"worker-{i}.log" for i in range(3)]
    programs = []
    for i, log in enumerate(logs):
        program = worker_program(f"w{i}", queues=["interactive", "default"], threads=4)
        program.argv += ["--log-file", str(log)]
        programs.append(program)
    start_workers(*programs)

    # When hundreds of jobs are enqueued while they run, each with progress writes and heartbeats
    ids = [services.job_enqueue(task="diagnostics.noop").pk for _ in range(JOBS // 2)]
    ids += [services.job_enqueue(task="diagnostics.sleep", params={"seconds": 0.05}).pk for _ in range(JOBS // 2)]

    # Then every one of them ends SUCCESSFUL, once, and no process logged a locking error
    wait_for(lambda: Job.objects.filter(pk__in=ids, status=JobStatus.SUCCESSFUL).count() == JOBS,
             timeout=120, interval=0.5, what=f"{JOBS} jobs to succeed")
    assert set(Job.objects.filter(pk__in=ids).values_list("attempts", flat=True)) == {1}
    text = "".join(log.read_text() for log in logs)
    assert "Worker process is ready for action" in text  # the logs were written
    assert "database is locked" not in text
    assert "Traceback" not in text, text[text.find("Traceback") - 300:][:4000]
