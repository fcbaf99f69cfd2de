"""Two sites on one RabbitMQ: the namespace is the vhost; neither sees nor runs the other's jobs.

Both sites share the test database here, which makes a crossing visible: a job published in one
vhost must be run by that vhost's worker only (the row records who ran it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import dramatiq
import pytest

from project.rabbitmq import GreenroomRabbitmqBroker, broker_url
from tests.rabbitmq import vhosts
from tests.rabbitmq.conftest import rabbitmq_only
from tests.support.runtime import wait_status
from tests.support.workers import wait_for, worker_program
from workers import broker_ops, publishing, registry, services
from workers.models import JobStatus, ProcessKind


def test_the_namespace_names_the_vhost_unless_left_at_its_default():
    assert "/siteb?" in broker_url("amqp://u:p@mq:5672", "siteb")
    assert "/siteb?" in broker_url("amqp://u:p@mq:5672/", "siteb")
    assert "/siteb?" in broker_url("amqp://u:p@mq:5672/siteb", "siteb")
    assert "/%2F?" in broker_url("amqp://u:p@mq:5672/%2F")  # the default namespace: the URL's vhost
    with pytest.raises(ValueError, match="disagree"):
        broker_url("amqp://u:p@mq:5672/sitea", "siteb")
    # Connection timeouts are added unless the URL sets them
    assert "socket_timeout=7" in broker_url("amqp://mq/?socket_timeout=7")
    assert "socket_timeout=2" in broker_url("amqp://mq/")


@pytest.fixture
def site_b_broker(rabbitmq: GreenroomRabbitmqBroker, other_vhost: str) -> Iterator[GreenroomRabbitmqBroker]:
    """The test process publishing as site B: same RabbitMQ, vhost B, the project's middleware."""
    other = GreenroomRabbitmqBroker(url=vhosts.with_vhost(os.environ["GREENROOM_BROKER_URL"], other_vhost))
    for middleware in rabbitmq.middleware:
        if not any(type(m) is type(middleware) for m in other.middleware):
            other.add_middleware(middleware)
    for actor_name in rabbitmq.get_declared_actors():
        other.declare_actor(rabbitmq.get_actor(actor_name))
    yield other
    dramatiq.set_broker(rabbitmq)
    other.close()


@rabbitmq_only
def test_two_vhosts_on_one_rabbitmq_keep_their_queues_and_workers_apart(start_workers, rabbitmq, site_b_broker,
                                                                        other_vhost, settings):
    settings.GREENROOM_HEARTBEAT_INTERVAL = 0.5
    # Site B's worker names its vhost by GREENROOM_NAMESPACE, on a URL that names none
    base = os.environ["GREENROOM_BROKER_URL"].rsplit("/", 1)[0]
    start_workers(
        worker_program("site-a", queues=["interactive", "default"]),
        worker_program("site-b", queues=["interactive", "default"], GREENROOM_BROKER_URL=base,
                       GREENROOM_NAMESPACE=other_vhost),
    )
    wait_for(lambda: registry.alive(ProcessKind.WORKER).count() == 2, timeout=30, what="both sites' workers")

    # Site A's jobs are run by site A's worker only, site B's (published in vhost B) by site B's only
    a_jobs = [services.job_enqueue(task="diagnostics.noop") for _ in range(10)]
    dramatiq.set_broker(site_b_broker)
    b_jobs = [services.job_enqueue(task="diagnostics.noop") for _ in range(10)]
    dramatiq.set_broker(rabbitmq)
    a_runners = {wait_status(job, JobStatus.SUCCESSFUL, timeout=30).worker for job in a_jobs}
    b_runners = {wait_status(job, JobStatus.SUCCESSFUL, timeout=30).worker for job in b_jobs}
    assert len(a_runners) == len(b_runners) == 1
    assert a_runners.isdisjoint(b_runners)

    # Each site's queue numbers count only its own vhost's messages
    site_b_broker.put("default.XQ", publishing.message_for(a_jobs[0]).encode(), {})  # a dead letter in B
    assert [s.dead for s in broker_ops.queue_stats(["default"])] == [0]
    dramatiq.set_broker(site_b_broker)
    try:
        assert [s.dead for s in broker_ops.queue_stats(["default"])] == [1]
    finally:
        dramatiq.set_broker(rabbitmq)
