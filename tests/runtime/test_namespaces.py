"""Two sites on one Redis (GREENROOM_NAMESPACE): neither sees nor runs the other's jobs.

Here both sites share the test database too, which makes a crossing visible: a job published in one
namespace must be run by that namespace's worker only (the row records who ran it).
"""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest

from project.broker import GreenroomRedisBroker
from schedules.lease import LEASE_KEY, lease_key
from tests.support.runtime import redis_only, wait_for, wait_status
from tests.support.workers import worker_program
from workers import broker_ops, registry, services
from workers.models import JobStatus, ProcessKind


@pytest.fixture
def site_b_broker(broker: dramatiq.Broker) -> Iterator[dramatiq.Broker]:
    """The test process publishing as site B: same Redis, namespace 'siteb', the project's middleware."""
    other = GreenroomRedisBroker(url=broker.url, namespace="siteb")  # type: ignore[attr-defined]
    for middleware in broker.middleware:
        if not any(type(m) is type(middleware) for m in other.middleware):
            other.add_middleware(middleware)
    for actor_name in broker.get_declared_actors():
        other.declare_actor(broker.get_actor(actor_name))
    yield other
    dramatiq.set_broker(broker)
    other.client.delete(*other.client.keys("siteb:*") or ["siteb:none"])


@redis_only
def test_two_namespaces_on_one_redis_keep_their_queues_and_workers_apart(start_workers, broker, site_b_broker,
                                                                         settings):
    settings.GREENROOM_HEARTBEAT_INTERVAL = 0.5
    start_workers(
        worker_program("site-a", queues=["interactive", "default"]),
        worker_program("site-b", queues=["interactive", "default"], GREENROOM_NAMESPACE="siteb"),
    )
    wait_for(lambda: registry.alive(ProcessKind.WORKER).count() == 2, timeout=30, what="both sites' workers")

    # Site A's jobs (the default namespace) are run by site A's worker only
    a_jobs = [services.job_enqueue(task="diagnostics.noop") for _ in range(10)]
    # Site B's jobs, published in its namespace, by site B's worker only
    dramatiq.set_broker(site_b_broker)
    b_jobs = [services.job_enqueue(task="diagnostics.noop") for _ in range(10)]
    dramatiq.set_broker(broker)

    a_runners = {wait_status(job, JobStatus.SUCCESSFUL, timeout=30).worker for job in a_jobs}
    b_runners = {wait_status(job, JobStatus.SUCCESSFUL, timeout=30).worker for job in b_jobs}
    assert len(a_runners) == len(b_runners) == 1
    assert a_runners.isdisjoint(b_runners)

    # Each site's broker inspection sees only its own keys (in a queue no worker here consumes)
    site_b_broker.client.rpush("siteb:batch", "waiting-in-b")
    assert [s.waiting for s in broker_ops.queue_stats(["batch"])] == [0]
    assert broker.client.exists("siteb:batch") == 1 and broker.client.exists("dramatiq:batch") == 0
    # And each site has its own scheduler lease
    assert lease_key("dramatiq") == LEASE_KEY != lease_key("siteb")
