"""Pytest fixtures for projects that test their own Greenroom jobs (a pytest plugin).

Enable with `-p workers.testing` in your pytest options (Greenroom's own suite does), then:

- `greenroom_eager` — jobs run inline, through the ledger, as soon as they are enqueued (after the
  transaction commits), like Celery's eager mode. Works with pytest-django's `db` fixture when the
  enqueue happens outside `atomic()`; inside, use `django_capture_on_commit_callbacks(execute=True)`.
- `greenroom_stub_broker` — swaps in Dramatiq's in-memory StubBroker, with Greenroom's ledger
  middleware and every catalogue job declared on it; the real broker comes back afterwards.
- `greenroom_worker` — a Dramatiq worker running in threads on that stub broker.
- `run_jobs` — `run_jobs()` waits until every queue (retries included) is empty and returns the
  jobs that ended in that time. Use with `transactional_db`: the worker's threads have their own
  database connections and see only committed rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

# Middleware that acts on the worker *process* (the memory cap signals its parent, the hard-limit
# watchdog exits it): in a test run that process is pytest, so the stub broker leaves them out and
# takes the rest of the project's own DRAMATIQ_BROKER middleware (ledger retries, DB connections…).
PROCESS_MIDDLEWARE = frozenset({"workers.middleware.WorkerHousekeeping", "workers.middleware.MemoryCap"})
# Used when the project's settings name no DRAMATIQ_BROKER middleware.
DEFAULT_STUB_MIDDLEWARE = (
    "dramatiq.middleware.AgeLimit",
    "dramatiq.middleware.TimeLimit",
    "dramatiq.middleware.ShutdownNotifications",
    "dramatiq.middleware.CurrentMessage",
    # Closes each worker thread's database connection when the worker stops (else PostgreSQL
    # refuses to drop the test database that they are still connected to).
    "django_dramatiq.middleware.DbConnectionsMiddleware",
    "workers.middleware.LedgerRetries",
)


def stub_middleware() -> list[str]:
    """The project's broker middleware minus the process-level ones."""
    from django.conf import settings

    configured = getattr(settings, "DRAMATIQ_BROKER", {}).get("MIDDLEWARE") or DEFAULT_STUB_MIDDLEWARE
    return [path for path in configured if path not in PROCESS_MIDDLEWARE]


@pytest.fixture
def greenroom_eager(settings: Any) -> None:
    """Run jobs inline through the ledger instead of publishing them."""
    settings.GREENROOM_EAGER = True


@pytest.fixture
def greenroom_stub_broker() -> Iterator[Any]:
    """An in-memory broker with every catalogue job declared on it."""
    import dramatiq
    from django.utils.module_loading import import_string
    from dramatiq.brokers.stub import StubBroker

    from workers import catalogue

    previous = dramatiq.get_broker()
    broker = StubBroker(middleware=[import_string(path)() for path in stub_middleware()])
    broker.emit_after("process_boot")
    moved = []
    for spec in catalogue.all_jobs():
        assert spec.actor is not None
        moved.append((spec.actor, spec.actor.broker))
        spec.actor.broker = broker
        broker.declare_actor(spec.actor)
    for queue in catalogue.QUEUES:
        broker.declare_queue(queue)
    dramatiq.set_broker(broker)
    try:
        yield broker
    finally:
        dramatiq.set_broker(previous)
        for actor, original in moved:
            actor.broker = original
        broker.close()


@pytest.fixture
def greenroom_worker(greenroom_stub_broker: Any) -> Iterator[Any]:
    """A worker on the stub broker (threads in this process)."""
    from dramatiq import Worker

    worker = Worker(greenroom_stub_broker, worker_timeout=50, worker_threads=2)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        from workers import ledger_writer

        ledger_writer.shutdown()  # its worker threads are done: close the writer's connection too


@pytest.fixture
def run_jobs(greenroom_stub_broker: Any, greenroom_worker: Any) -> Callable[..., list[Any]]:
    """`run_jobs(timeout=30)`: process until all queues are empty; return the jobs that finished
    since the worker started (first call) or since the previous call — the worker runs all along,
    so a quick job may already be done before `run_jobs()` is called."""
    from django.utils import timezone

    from workers.models import FINISHED_STATUSES, Job

    since = [timezone.now()]

    def run(timeout: float = 30.0) -> list[Job]:
        for queue in sorted(greenroom_stub_broker.queues):
            if not queue.endswith(".DQ"):
                greenroom_stub_broker.join(queue, timeout=int(timeout * 1000), fail_fast=False)
        greenroom_worker.join()
        until = timezone.now()
        finished = Job.objects.filter(status__in=FINISHED_STATUSES, finished_at__gte=since[0], finished_at__lte=until)
        since[0] = until
        return list(finished.order_by("finished_at"))

    return run
