"""Helpers for the runtime tests: read the ledger, the record files, the DLQ and worker processes."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import dramatiq
import psutil
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from tests.support.workers import WorkerPool, wait_for
from workers import ledger_sql
from workers.models import FINISHED_STATUSES, Job, JobStatus

# A test that reads Dramatiq's Redis keys itself: skipped on a RabbitMQ run (make test-rabbitmq),
# where tests/rabbitmq/ checks the same behaviour over AMQP.
redis_only = pytest.mark.skipif(not isinstance(dramatiq.get_broker(), RedisBroker),
                                reason="reads Dramatiq's Redis keys; tests/rabbitmq/ covers RabbitMQ")


def say(line: str) -> None:
    """A measured figure, on stderr (shown with `pytest -s` or in the report of a failing test)."""
    print(f"[measure] {line}", file=sys.stderr, flush=True)


def row(job: Job | Any) -> Job:
    """The job's row as it is now."""
    return Job.objects.get(pk=getattr(job, "pk", job))


def wait_status(job: Job | Any, *statuses: str, timeout: float) -> Job:
    """Wait until the job's row is in one of `statuses` (any finished status if none given)."""
    wanted = statuses or FINISHED_STATUSES
    pk = getattr(job, "pk", job)
    return wait_for(
        lambda: Job.objects.filter(pk=pk, status__in=wanted).first(),
        timeout=timeout,
        what=f"job {pk} to become {'/'.join(wanted)} (now {Job.objects.get(pk=pk).status})",
    )


def wait_running(job: Job | Any, *, timeout: float, attempt: int = 1) -> Job:
    """Wait until the job runs its `attempt`-th attempt."""
    pk = getattr(job, "pk", job)
    return wait_for(
        lambda: Job.objects.filter(pk=pk, status=JobStatus.RUNNING, attempts=attempt).first(),
        timeout=timeout,
        what=f"job {pk} to run attempt {attempt}",
    )


def lines(path: Path) -> list[str]:
    """The lines a `testing.*` job appended to `path` ([] if it never ran)."""
    return path.read_text().splitlines() if path.exists() else []


def starts(path: Path) -> int:
    """How many times a `testing.record` job started."""
    return sum(1 for line in lines(path) if line.startswith("start"))


def dead_letters(client: redis.Redis, queue: str = "default") -> dict[str, dict[str, Any]]:
    """The dead-letter queue of `queue`: Dramatiq message id (= job id) → the message as stored."""
    found = {}
    for raw in client.hvals(f"dramatiq:{queue}.XQ.msgs"):
        message = json.loads(raw)
        found[message["message_id"]] = message
    return found


def wait_dead_letter(client: redis.Redis, job: Job | Any, *, queue: str = "default", timeout: float = 10) -> Any:
    """Wait until the job's message is in the dead-letter queue; return it."""
    pk = str(getattr(job, "pk", job))
    return wait_for(lambda: dead_letters(client, queue).get(pk), timeout=timeout, what=f"job {pk} in the DLQ")


def delayed(client: redis.Redis, queue: str = "default") -> set[str]:
    """Job ids with a message waiting in the delay (retry) queue of `queue`."""
    return {json.loads(raw)["message_id"] for raw in client.hvals(f"dramatiq:{queue}.DQ.msgs")}


def worker_pid(pool: WorkerPool, name: str, *, timeout: float = 20.0) -> int:
    """The pid of the Dramatiq worker process (the child of the program's main process)."""

    def child() -> int | None:
        process = pool.program(name).process
        if process is None or process.poll() is not None:
            return None
        try:
            children = psutil.Process(process.pid).children()
        except psutil.NoSuchProcess:
            return None
        live = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        return live[0].pid if live else None

    return wait_for(child, timeout=timeout, what=f"the worker process of {name}")


def worker_of(job: Job) -> int:
    """The pid in a row's `worker` (host:pid)."""
    return int(job.worker.rsplit(":", 1)[1])


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / (1024 * 1024)


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def hold_finish_writes(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Make the ledger writer's batched finish writes wait until the returned Event is set."""
    release, real = threading.Event(), ledger_sql.succeed_runs

    def held(runs: list[ledger_sql.FinishedRun]) -> set[str]:
        release.wait(30)
        return real(runs)

    monkeypatch.setattr(ledger_sql, "succeed_runs", held)
    return release
