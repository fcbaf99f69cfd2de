#!/usr/bin/env python
"""Benchmark: the ledger's cost per job — SQL statements and commits, and drain throughput.

    .venv/bin/python bench/ledger_writes.py [--jobs 10000] [--repeat 3] [--processes 2] [--threads 8]
                                            [--database-url postgres://…/your_own_db] [--skip-drain]

Self-contained: a private redis-server on a free port (never the machine's Redis) and, unless
`--database-url` names a PostgreSQL database of your own, a temporary SQLite database (WAL).

1. **Statements and commits per job**, counted in this process with a connection execute wrapper
   (and `commit()` / `is_usable()` counted by wrapping them), for: one `job_enqueue` (INSERT, then
   after commit the publish mark), one `job_enqueue_many` of 1,000 jobs (per job), and a worker-like
   loop that does per message what a worker does: django_dramatiq's `DbConnectionsMiddleware`
   (`close_old_connections` before and after) around `execution.run_job` of a no-op job. The
   `is_usable` column is the connection health check (`CONN_HEALTH_CHECKS`): one `SELECT 1`
   round trip on PostgreSQL that the execute wrapper does not see (SQLite's is free).
2. **Drain throughput**: `--jobs` no-op jobs (`diagnostics.noop`) are enqueued in bulk with no
   worker running, then `dramatiq --processes P --threads T` starts and drains them. Jobs/s are
   counted from the first `started_at` to the last `finished_at` in the ledger (start-up excluded).
   Median and range of `--repeat` runs. Prints figures only: no assertion on timing.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from private_stack import private_stack

BASE_DIR = Path(__file__).resolve().parent.parent
TASK = "diagnostics.noop"


class Counts:
    """Statements (by first word), commits and health checks seen on the default connection."""

    def __init__(self) -> None:
        self.statements: dict[str, int] = {}
        self.commits = 0
        self.health_checks = 0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        from django.db import connection

        verb = sql.lstrip().split(None, 1)[0].upper()
        self.statements[verb] = self.statements.get(verb, 0) + 1
        if not connection.in_atomic_block and verb not in ("BEGIN", "COMMIT", "ROLLBACK"):
            self.commits += 1  # a statement outside a transaction commits on its own
        return execute(sql, params, many, context)

    def total(self) -> int:
        return sum(self.statements.values())


@contextmanager
def counting() -> Iterator[Counts]:
    from django.db import connection

    counts = Counts()
    commit, is_usable = connection.commit, connection.is_usable

    def counted_commit() -> None:
        counts.commits += 1
        commit()

    def counted_is_usable() -> bool:
        counts.health_checks += 1
        return is_usable()

    connection.commit = counted_commit  # type: ignore[method-assign]
    connection.is_usable = counted_is_usable  # type: ignore[method-assign]
    try:
        with connection.execute_wrapper(counts):
            yield counts
    finally:
        del connection.commit, connection.is_usable


def per_job(label: str, counts: Counts, jobs: int) -> None:
    verbs = ", ".join(f"{verb} {n / jobs:g}" for verb, n in sorted(counts.statements.items()))
    print(f"{label:<34} {counts.total() / jobs:>10.3g} {counts.commits / jobs:>8.3g} "
          f"{counts.health_checks / jobs:>10.3g}   {verbs}")


def count_statements(jobs: int) -> None:
    import dramatiq
    from django.db import close_old_connections

    from workers import catalogue, execution, services
    from workers.models import Job

    broker = dramatiq.get_broker()
    print(f"{'per job':<34} {'statements':>10} {'commits':>8} {'is_usable':>10}   by kind")
    with counting() as counts:
        for _ in range(jobs):
            services.job_enqueue(task=TASK, params={})
    per_job("enqueue: job_enqueue", counts, jobs)
    Job.objects.all().delete()
    broker.client.flushdb()
    with counting() as counts:
        outcome = services.job_enqueue_many(task=TASK, params_list=[{}] * 1000)
    per_job("enqueue: job_enqueue_many (1,000)", counts, 1000)
    spec = catalogue.get(TASK)
    assert spec is not None
    ids = [str(job.pk) for job in outcome.jobs[:jobs]]
    with counting() as counts:
        for job_id in ids:
            close_old_connections()  # DbConnectionsMiddleware.before_process_message
            execution.run_job(spec, job_id)
            close_old_connections()  # DbConnectionsMiddleware.after_process_message
    per_job("worker, group commit off", counts, len(ids))
    grouped_statements_per_job(spec, [str(job.pk) for job in services.job_enqueue_many(
        task=TASK, params_list=[{}] * jobs).jobs])
    Job.objects.all().delete()
    broker.client.flushdb()


def grouped_statements_per_job(spec: Any, ids: list[str], threads: int = 8) -> None:
    """The worker path with GREENROOM_LEDGER_GROUP_COMMIT: `threads` threads run the jobs as worker
    threads do (a current message set), and the process's ledger writer writes their claims and
    finishes. Its statements (each its own commit) are counted by the writer itself."""
    import threading

    import dramatiq
    from django.db import connection
    from dramatiq.middleware import CurrentMessage

    from workers import execution, ledger_writer

    writer = ledger_writer.writer()
    before = (writer.batches, writer.rows)
    todo = list(ids)
    lock = threading.Lock()

    def work() -> None:
        current = CurrentMessage()
        while True:
            with lock:
                if not todo:
                    break
                job_id = todo.pop()
            message = dramatiq.Message(queue_name="interactive", actor_name=spec.name, args=(), kwargs={},
                                       options={}, message_id=job_id)
            current.before_process_message(dramatiq.get_broker(), message)
            try:
                execution.run_job(spec, job_id)
            finally:
                current.after_process_message(dramatiq.get_broker(), message)
        connection.close()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    statements, rows = writer.batches - before[0], writer.rows - before[1]
    print(f"{f'worker, group commit ({threads} threads)':<34} {statements / len(ids):>10.3g} "
          f"{statements / len(ids):>8.3g} {0:>10}   UPDATE {statements / len(ids):.3g} "
          f"(claims and finishes, {rows / max(statements, 1):.1f} rows per statement; worker threads: none)")


def drain(jobs: int, processes: int, threads: int, tmp: Path) -> float:
    """Pre-queue `jobs` no-op jobs, start a worker, return jobs/s from first start to last finish."""
    import dramatiq
    from django.db import connection
    from django.db.models import Max, Min

    from workers import services
    from workers.models import Job, JobStatus

    broker = dramatiq.get_broker()
    Job.objects.all().delete()
    broker.client.flushdb()
    for first in range(0, jobs, 10_000):
        services.job_enqueue_many(task=TASK, params_list=[{}] * min(10_000, jobs - first))
    connection.close()
    env = {**os.environ, "PYTHONPATH": str(BASE_DIR)}
    argv = [sys.executable, "-m", "dramatiq", "--path", str(BASE_DIR), "--processes", str(processes),
            "--threads", str(threads), "--worker-shutdown-timeout", "5000", "django_dramatiq.setup", "workers.jobs",
            "--queues", "interactive"]
    log = (tmp / "worker.log").open("ab")
    worker = subprocess.Popen(argv, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while Job.objects.filter(status=JobStatus.SUCCESSFUL).count() < jobs:
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited with {worker.returncode}; see {tmp / 'worker.log'}")
            if time.monotonic() > deadline:
                raise SystemExit("drain did not finish within 600 s")
            time.sleep(0.5)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(60)
        log.close()
    span = Job.objects.aggregate(first=Min("started_at"), last=Max("finished_at"))
    return jobs / (span["last"] - span["first"]).total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs pre-queued per drain run (default 10000)")
    parser.add_argument("--repeat", type=int, default=3, help="drain runs (default 3)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--count-jobs", type=int, default=500, help="jobs in the statement count (default 500)")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL database of your own instead of SQLite")
    parser.add_argument("--skip-drain", action="store_true", help="only count statements")
    args = parser.parse_args()

    with private_stack("greenroom-bench-ledger-", args.database_url) as tmp:
        from django.conf import settings
        from django.db import connection

        db = settings.DATABASES["default"]
        print(f"# ledger cost, {connection.vendor}, CONN_MAX_AGE={db['CONN_MAX_AGE']}, "
              f"CONN_HEALTH_CHECKS={db['CONN_HEALTH_CHECKS']}; {platform.node()} ({os.cpu_count()} CPUs), "
              f"Python {platform.python_version()}")
        count_statements(args.count_jobs)
        if not args.skip_drain:
            rates = [drain(args.jobs, args.processes, args.threads, tmp) for _ in range(args.repeat)]
            print(f"drain, {args.processes} processes x {args.threads} threads, {args.jobs} no-op jobs: "
                  f"median {statistics.median(rates):,.0f} jobs/s (range {min(rates):,.0f} - {max(rates):,.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
