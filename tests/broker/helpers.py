"""Helpers of the broker tests: worker processes that also run `tests.broker.actors`, its records."""

from __future__ import annotations

import sys
import time
from typing import Any

import dramatiq

from tests.broker.actors import ACTOR_NAME, RUNS_KEY
from tests.support.workers import BASE_DIR, JOB_MODULES, wait_for, worker_env
from workers.supervisor import Program


def broker_worker(name: str = "worker", *, threads: int = 4, poll_ms: int = 100, **env: Any) -> Program:
    """A worker process on the latency-class queues whose idle consumers poll every `poll_ms`."""
    argv = [
        sys.executable, "-m", "dramatiq", "--path", str(BASE_DIR), "--processes", "1", "--threads", str(threads),
        "--worker-shutdown-timeout", "15000", "django_dramatiq.setup", *JOB_MODULES, "tests.broker.actors",
        "--queues", "interactive", "default", "batch",
    ]
    return Program(name=name, argv=argv, env=worker_env(dramatiq_worker_timeout=poll_ms, **env))


def record_message(tag: str) -> dramatiq.Message[Any]:
    """A message for the recording actor (sent without importing it in the worker's sense)."""
    return dramatiq.Message(queue_name="default", actor_name=ACTOR_NAME, args=(tag,), kwargs={}, options={})


def runs(broker: Any) -> dict[str, list[float]]:
    """Tag → start times of every recorded delivery."""
    seen: dict[str, list[float]] = {}
    for raw in broker.client.lrange(RUNS_KEY, 0, -1):
        tag, started = raw.decode().split()
        seen.setdefault(tag, []).append(float(started))
    return seen


def wait_runs(broker: Any, count: int, *, timeout: float) -> dict[str, list[float]]:
    """Wait until `count` deliveries are recorded."""
    wait_for(lambda: broker.client.llen(RUNS_KEY) >= count, timeout=timeout, what=f"{count} recorded runs")
    return runs(broker)


def warm_up(broker: Any) -> None:
    """Run one message through the workers, so that they are up and idle afterwards."""
    broker.enqueue(record_message("warm-up"))
    wait_runs(broker, 1, timeout=60)
    time.sleep(0.2)
