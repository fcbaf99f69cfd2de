"""Fixtures shared by the suite: real worker processes on the test database and a private Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import pytest

import tests.support.testjobs  # noqa: F401 - declares the testing.* jobs in this process too
from tests.support.workers import WorkerPool, worker_program
from workers.supervisor import Program


@pytest.fixture
def broker() -> dramatiq.Broker:
    """The suite's real Redis broker, emptied before the test."""
    broker = dramatiq.get_broker()
    if hasattr(broker, "client"):
        broker.client.flushdb()
    else:  # RabbitMQ (make test-rabbitmq): purge every declared queue, its delayed and dead letters too
        broker.flush_all()
    return broker


@pytest.fixture
def start_workers(transactional_db: None, broker: dramatiq.Broker) -> Iterator[Callable[..., WorkerPool]]:
    """Start supervised worker processes: `start_workers(worker_program(...), ...)` or defaults."""
    pools: list[WorkerPool] = []

    def start(*programs: Program, **env: Any) -> WorkerPool:
        if not programs:
            programs = (worker_program("worker", queues=["interactive", "default", "batch"], **env),)
        pool = WorkerPool(list(programs)).start()
        pools.append(pool)
        return pool

    yield start
    for pool in pools:
        pool.stop()
