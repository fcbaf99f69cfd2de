"""Progress: throttled writes however often a job calls progress(), and visible while the job runs."""

from __future__ import annotations

import time

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.support.runtime import row, say, wait_running, wait_status
from workers import conf, context, services
from workers.models import Job, JobStatus


def test_progress_in_a_tight_loop_writes_at_most_once_per_interval(transactional_db):
    # Given a RUNNING job's context, as a worker makes it
    job = Job.objects.create(task="diagnostics.sleep", queue="default", params={"seconds": 1},
                             status=JobStatus.RUNNING, attempts=1, started_at=timezone.now(),
                             heartbeat_at=timezone.now())
    interval = conf.get().progress_interval
    ctx = context.JobContext(job_id=job.pk, task=job.task, attempt=1, progress_interval=interval,
                             hard_deadline=time.monotonic() + 60)
    # When the job calls progress() as fast as it can for ~1.5 s (well over 100 000 calls)
    calls = 0
    with CaptureQueriesContext(connection) as queries:
        started = time.monotonic()
        while calls < 100_000 or time.monotonic() - started < 1.5:
            ctx.progress(calls, 10_000_000, "looping")
            calls += 1
        elapsed = time.monotonic() - started
    # Then it wrote at most once per interval (plus the first call)
    updates = [q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    bound = elapsed / interval + 1
    say(f"progress(): {calls} calls in {elapsed:.2f} s → {len(updates)} UPDATEs (bound {bound:.1f}); "
        f"{elapsed / calls * 1e6:.2f} µs per call including the writes")
    assert calls >= 100_000
    assert 1 <= len(updates) <= bound
    assert len(updates) >= max(1, int(elapsed / interval) - 1)  # and it did keep writing, once per interval
    assert len(queries.captured_queries) == len(updates)  # no reads on the hot path
    # And what it wrote is recent: at most one interval behind
    written = row(job)
    assert written.progress_total == 10_000_000
    assert written.progress_message == "looping"
    assert calls - written.progress_done < calls * (interval + 0.2) / elapsed


def test_progress_is_visible_in_the_row_while_the_job_runs(start_workers):
    # Given a worker running a 4 s job that reports progress each second
    start_workers()
    job = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 4})
    wait_running(job, timeout=20)
    # When the test polls the row while it runs
    seen: list[tuple[int, int | None, str]] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        current = row(job)
        if current.status != JobStatus.RUNNING:
            break
        value = (current.progress_done, current.progress_total, current.progress_message)
        if not seen or seen[-1] != value:
            seen.append(value)
        time.sleep(0.05)
    say(f"progress seen while running: {seen}")
    # Then it saw the numbers and messages go up while the job was RUNNING
    intermediate = [v for v in seen if v[1] == 4 and 0 < v[0] < 4]
    assert len(intermediate) >= 2, seen
    assert [v[0] for v in seen] == sorted(v[0] for v in seen)
    assert intermediate[0][2] == f"slept {intermediate[0][0]} of 4 s"
    # And the finished job shows it complete
    done = wait_status(job, timeout=15)
    assert done.status == JobStatus.SUCCESSFUL
    assert (done.progress_done, done.progress_total) == (4, 4)
    assert done.percent == 100.0
