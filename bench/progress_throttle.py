#!/usr/bin/env python
"""Benchmark: what `current_job().progress()` costs in a tight loop, and how many rows it writes.

    .venv/bin/python bench/progress_throttle.py [--calls 1000000] [--seconds 5] [--intervals 0.5,0.1]

Self-contained: a temporary SQLite database and var/ directory, migrated here, removed afterwards.
No broker is needed (progress() only touches the ledger); the broker URL points at a socket in the
temporary directory that nothing listens on, so the machine's own Redis is never touched.

For each interval it creates a RUNNING `Job` row, builds the `JobContext` a worker would build for
it (as `workers.execution.run_job` does), then runs two loops: `calls` calls of `progress(i, total)`
as fast as it can, and as many calls as fit in `seconds` (so that several intervals pass). For each
it prints the calls, the elapsed time, ns per call, the UPDATE statements sent (counted with a
connection execute wrapper) and the bound `elapsed / interval + 1` that the count must stay under.
A last pass with interval 0 (every call writes) shows what one unthrottled write costs. Prints
figures only: no assertion on timing.

`--database-url postgres://...` runs against a database of your own instead (it is migrated and the
rows written here are deleted afterwards).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent


def configure(tmp: Path, database_url: str | None) -> None:
    """Environment for a private run; must happen before django.setup()."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["GREENROOM_VAR_DIR"] = str(tmp / "var")
    # Never the machine's Redis: a socket nothing listens on (this benchmark sends no message).
    os.environ["GREENROOM_BROKER_URL"] = f"unix://{tmp / 'no-redis.sock'}"
    os.environ.setdefault("GREENROOM_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(BASE_DIR))


class UpdateCounter:
    """A connection execute wrapper that counts UPDATE statements."""

    def __init__(self) -> None:
        self.updates = 0
        self.queries = 0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        self.queries += 1
        if sql.lstrip().upper().startswith("UPDATE"):
            self.updates += 1
        return execute(sql, params, many, context)


CHUNK = 10_000  # calls between two clock reads in the timed loop


def measure(*, interval: float, calls: int = 0, seconds: float = 0.0) -> dict[str, Any]:
    """Call progress() on a fresh RUNNING row with `interval`: `calls` times, or for `seconds`."""
    from django.db import connection
    from django.utils import timezone

    from workers.context import JobContext
    from workers.models import Job, JobStatus

    now = timezone.now()
    job = Job.objects.create(
        task="diagnostics.sleep", queue="default", params={"seconds": 0}, status=JobStatus.RUNNING,
        attempts=1, started_at=now, heartbeat_at=now, worker="bench:0",
    )
    # As workers.execution.run_job builds it (no message, no hard deadline: nothing watches it here).
    ctx = JobContext(
        job_id=job.pk, task=job.task, attempt=job.attempts, progress_interval=interval,
        hard_deadline=float("inf"),
    )
    counter = UpdateCounter()
    progress = ctx.progress
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        if seconds:
            total, deadline = 10**12, started + seconds
            while time.perf_counter() < deadline:
                for i in range(calls, calls + CHUNK):
                    progress(i, total, "working")
                calls += CHUNK
        else:
            for i in range(calls):
                progress(i, calls, "working")
        elapsed = time.perf_counter() - started
    job.refresh_from_db()
    return {
        "interval": interval,
        "calls": calls,
        "elapsed": elapsed,
        "ns_per_call": elapsed / calls * 1e9,
        "updates": counter.updates,
        "queries": counter.queries,
        "bound": (elapsed / interval + 1) if interval > 0 else float(calls),
        "row_done": job.progress_done,
    }


def loop_baseline(calls: int) -> float:
    """ns per iteration of the same loop calling a method that does nothing (the floor)."""

    class Nothing:
        def progress(self, done: int, total: int | None = None, message: str = "") -> None:
            return None

    progress = Nothing().progress
    started = time.perf_counter()
    for i in range(calls):
        progress(i, calls, "working")
    return (time.perf_counter() - started) / calls * 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000, help="progress() calls per interval (default 1e6)")
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="length of the timed loop per interval (default 5; 0 skips it)")
    parser.add_argument("--intervals", default="0.5,0.1", help="GREENROOM_PROGRESS_INTERVAL values, comma-separated")
    parser.add_argument("--unthrottled-calls", type=int, default=5_000,
                        help="calls for the interval-0 pass, where every call writes (default 5000; 0 skips it)")
    parser.add_argument("--database-url", default=None, help="use this database instead of a temporary SQLite")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="greenroom-bench-progress-"))
    try:
        configure(tmp, args.database_url)
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from workers.models import Job

        call_command("migrate", interactive=False, verbosity=0)
        vendor = connection.vendor
        print(f"progress() throttle benchmark — {time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, "
              f"{os.cpu_count()} CPUs, database: {vendor}")
        print(f"loop floor (a method that does nothing): {loop_baseline(args.calls):.0f} ns per call")
        print()
        header = f"{'interval':>8} {'calls':>9} {'elapsed':>9} {'ns/call':>8} {'UPDATEs':>8} {'bound':>8} {'ok':>3}"
        print(header)
        print("-" * len(header))
        intervals = [float(x) for x in args.intervals.split(",") if x.strip()]
        runs: list[dict[str, Any]] = []
        for interval in intervals:
            runs.append({"interval": interval, "calls": args.calls})
            if args.seconds:
                runs.append({"interval": interval, "seconds": args.seconds})
        if args.unthrottled_calls:
            runs.append({"interval": 0.0, "calls": args.unthrottled_calls})
        for run in runs:
            interval = run["interval"]
            r = measure(**run)
            within = r["updates"] <= r["bound"]
            print(f"{r['interval']:>7.2f}s {r['calls']:>9,} {r['elapsed']:>8.3f}s {r['ns_per_call']:>8.0f} "
                  f"{r['updates']:>8,} {r['bound']:>8.1f} {'yes' if within else 'NO':>3}")
            if interval == 0 and r["updates"]:
                print(f"         unthrottled: {r['elapsed'] / r['updates'] * 1e6:.0f} µs per progress write "
                      f"(one UPDATE + commit on {vendor})")
        print()
        print("bound = elapsed / interval + 1 (the first call writes at once, then at most one write per interval).")
        print("Between writes the row lags the in-memory numbers; the worker writes the final numbers when the")
        print("job ends.")
        if args.database_url:
            Job.objects.filter(worker="bench:0").delete()
        connection.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
