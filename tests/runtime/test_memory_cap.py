"""Memory cap: a worker process over its cap is replaced after its job; its sibling and the jobs are unaffected."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import psutil
import pytest
from django.utils import timezone

from tests.support.runtime import lines, rss_mb, say, wait_status, worker_of, worker_pid
from tests.support.workers import wait_for, worker_program
from workers import services
from workers.models import Job, JobStatus

# Headroom above a fresh worker's resident memory for the capped worker, and what one allocating
# job adds: one allocation takes the worker over its cap, ordinary jobs never do.
CAP_HEADROOM_MB = 60
ALLOCATE_MB = 90
CAPPED_THREADS = 2


def _record(tmp_path: Path, name: str) -> Job:
    return services.job_enqueue(task="testing.record", params={"path": str(tmp_path / f"{name}.txt"), "seconds": 0.05})


def _allocate(tmp_path: Path, name: str) -> Job:
    return services.job_enqueue(task="testing.allocate", params={"path": str(tmp_path / f"{name}.txt"),
                                                                  "mb": ALLOCATE_MB})


@pytest.mark.chaos
def test_worker_over_its_memory_cap_is_recycled_without_losing_or_repeating_jobs(start_workers, tmp_path: Path):
    # Given a sibling worker without a cap, whose resident memory once warm tells what a fresh one uses
    pool = start_workers(worker_program("sibling", queues=["default"], threads=2, GREENROOM_WORKER_MEMORY_CAP_MB=0))
    assert wait_status(_record(tmp_path, "warmup"), timeout=20).status == JobStatus.SUCCESSFUL
    sibling_pid = worker_pid(pool, "sibling")
    fresh = rss_mb(sibling_pid)
    cap = max(120, round(fresh + CAP_HEADROOM_MB))
    say(f"fresh worker RSS {fresh:.0f} MiB → cap {cap} MiB, allocating jobs add {ALLOCATE_MB} MiB")
    # And a capped worker that alone takes the allocating jobs (queue batch) and shares queue default
    capped = start_workers(worker_program("capped", queues=["default", "batch"], threads=CAPPED_THREADS,
                                          GREENROOM_WORKER_MEMORY_CAP_MB=cap))
    first_pid = worker_pid(capped, "capped")
    program = capped.program("capped")

    # When one job takes the capped worker over its cap
    hog = wait_status(_allocate(tmp_path, "hog-0"), timeout=20)
    assert hog.status == JobStatus.SUCCESSFUL
    assert worker_of(hog) == first_pid
    # Then that worker process is replaced (clean exit 0, restarted at once) with a fresh one
    wait_for(lambda: program.restarts >= 1, timeout=20, what="the capped worker to be recycled")
    second_pid = worker_pid(capped, "capped")
    recycled_in = (timezone.now() - hog.finished_at).total_seconds()
    say(f"memory cap: job finished → fresh worker process in {recycled_in:.1f} s")
    assert second_pid != first_pid
    assert program.exit_codes[0] == 0
    assert rss_mb(second_pid) < cap

    # When a batch of ordinary jobs runs mixed with more allocating ones (each recycling the worker)
    jobs: dict[str, Job] = {}
    for n in range(48):
        name = f"hog-{n // 12 + 1}" if n % 12 == 11 else f"job-{n}"
        jobs[name] = _allocate(tmp_path, name) if name.startswith("hog") else _record(tmp_path, name)
    # Then every job ran exactly once and succeeded: none lost, none repeated
    for name, job in jobs.items():
        done = wait_status(job, timeout=60)
        assert done.status == JobStatus.SUCCESSFUL, (name, done.status, done.error_message)
        assert done.attempts == 1, name
        assert lines(tmp_path / f"{name}.txt") == ["start 1", "done"], name
    # And every worker process that went over its cap was replaced, always by a clean exit (a process
    # may take a second allocating job in the moment before it stops)
    hog_pids = {worker_of(Job.objects.get(pk=job.pk)) for name, job in jobs.items() if name.startswith("hog")}
    wait_for(lambda: not any(psutil.pid_exists(pid) for pid in hog_pids), timeout=20,
             what="the processes over their cap to exit")
    assert worker_pid(capped, "capped") not in hog_pids | {first_pid}
    # And a process over its cap took no new job: at most one allocating job per worker thread (the
    # ones already running beside the job that took it over)
    hog_rows = [Job.objects.get(pk=job.pk) for name, job in jobs.items() if name.startswith("hog")]
    hogs_per_pid = Counter(worker_of(hog_row) for hog_row in hog_rows)
    assert max(hogs_per_pid.values()) <= CAPPED_THREADS, hogs_per_pid
    assert program.restarts >= 2
    assert set(program.exit_codes) == {0}
    say(f"capped worker: {program.restarts} recycles, exit codes {program.exit_codes}")
    # And the sibling kept working throughout in the same process, never restarted
    assert worker_pid(pool, "sibling") == sibling_pid
    assert pool.program("sibling").restarts == 0
    ran_on_sibling = [name for name, job in jobs.items() if worker_of(Job.objects.get(pk=job.pk)) == sibling_pid]
    say(f"sibling ran {len(ran_on_sibling)} of {len(jobs)} batch jobs")
    assert ran_on_sibling
    assert all(not name.startswith("hog") for name in ran_on_sibling)
