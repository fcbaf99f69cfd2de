#!/usr/bin/env python
"""Benchmark: enqueue throughput with the ledger, one at a time vs `job_enqueue_many`.

    .venv/bin/python bench/enqueue.py [--count 10000] [--single 2000] [--repeat 3] [--database-url URL]

Self-contained: a private redis-server on a free port (never the machine's Redis) and, unless
`--database-url` names a PostgreSQL database of your own, a temporary SQLite database (WAL, as the
project configures it). Each figure counts the whole enqueue: validation, the ledger rows, the
publish mark and the messages in Redis. Modes:

- `single`: `services.job_enqueue` in a loop, each in its own transaction (INSERT, then after
  commit the mark UPDATE and one `broker.enqueue`);
- `bulk`: one `services.job_enqueue_many` call (bulk INSERTs, then per 1,000 jobs one mark UPDATE …
  RETURNING and one pipelined `broker.enqueue_many`, or an `enqueue` loop if the broker lacks it);
- `bulk, send loop`: the same with the broker's `enqueue_many` hidden (the fallback).

Prints the median and range of `--repeat` runs, jobs/s; asserts nothing about speed. Rows and
messages are deleted between runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from private_stack import private_stack

BASE_DIR = Path(__file__).resolve().parent.parent
TASK = "diagnostics.noop"


def run_single(count: int) -> None:
    from workers import services

    for _ in range(count):
        services.job_enqueue(task=TASK, params={})


def run_bulk(count: int) -> None:
    from workers import services

    outcome = services.job_enqueue_many(task=TASK, params_list=[{}] * count)
    assert len(outcome.jobs) == count


def run_bulk_send_loop(count: int) -> None:
    import dramatiq

    broker = dramatiq.get_broker()
    hidden = broker.__dict__.pop("enqueue_many", None)
    original = type(broker).__dict__.get("enqueue_many")
    try:
        if original is not None:
            broker.enqueue_many = None  # type: ignore[attr-defined]  # publish_many then loops
        run_bulk(count)
    finally:
        broker.__dict__.pop("enqueue_many", None)
        if hidden is not None:
            broker.enqueue_many = hidden  # type: ignore[attr-defined]


def measure(fn: Callable[[int], None], count: int, repeat: int) -> list[float]:
    import dramatiq

    from workers.models import Job

    broker = dramatiq.get_broker()
    rates = []
    for _ in range(repeat):
        Job.objects.all().delete()
        broker.client.flushdb()
        started = time.perf_counter()
        fn(count)
        elapsed = time.perf_counter() - started
        queued = broker.client.llen(f"{broker.namespace}:interactive")
        published = Job.objects.filter(enqueued_at__isnull=False).count()
        if queued != count or published != count:
            raise SystemExit(f"expected {count} messages and rows, got {queued} and {published}")
        rates.append(count / elapsed)
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="jobs per bulk run (default 10000)")
    parser.add_argument("--single", type=int, default=2_000, help="jobs per one-at-a-time run (default 2000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode (default 3)")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL database of your own instead of SQLite")
    args = parser.parse_args()

    with private_stack("greenroom-bench-enqueue-", args.database_url):
        import dramatiq
        from django.db import connection

        broker = dramatiq.get_broker()
        vendor = connection.vendor
        has_many = callable(getattr(broker, "enqueue_many", None))
        print(f"# enqueue throughput, {vendor}, {platform.node()} ({os.cpu_count()} CPUs), Python "
              f"{platform.python_version()}; broker enqueue_many: {'yes' if has_many else 'no (send loop)'}")
        print(f"{'mode':<18} {'jobs':>7} {'median jobs/s':>14} {'range':>20}")
        modes: list[tuple[str, Callable[[int], None], int]] = [
            ("single", run_single, args.single),
            ("bulk", run_bulk, args.count),
        ]
        if has_many:
            modes.append(("bulk, send loop", run_bulk_send_loop, args.count))
        for name, fn, count in modes:
            rates = measure(fn, count, args.repeat)
            print(f"{name:<18} {count:>7} {statistics.median(rates):>14,.0f} "
                  f"{min(rates):>9,.0f} - {max(rates):>8,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
