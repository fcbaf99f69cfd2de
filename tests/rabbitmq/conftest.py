"""Fixtures of the RabbitMQ tests: they run in a RabbitMQ session (`make test-rabbitmq`) and skip otherwise."""

from __future__ import annotations

import os
from collections.abc import Iterator

import dramatiq
import pytest

from project.rabbitmq import GreenroomRabbitmqBroker
from tests.rabbitmq import vhosts

# A test that needs the suite's broker to be RabbitMQ.
rabbitmq_only = pytest.mark.skipif(not isinstance(dramatiq.get_broker(), GreenroomRabbitmqBroker),
                                   reason="needs a RabbitMQ run: make test-rabbitmq")


@pytest.fixture
def rabbitmq(broker: dramatiq.Broker) -> GreenroomRabbitmqBroker:
    """The suite's RabbitMQ broker, its queues purged before the test (by the `broker` fixture)."""
    assert isinstance(broker, GreenroomRabbitmqBroker)
    return broker


@pytest.fixture
def other_vhost(rabbitmq: GreenroomRabbitmqBroker) -> Iterator[str]:
    """A second vhost on the same RabbitMQ (a second site), deleted after the test."""
    name = f"greenroom-test-{os.getpid()}-b"
    url = os.environ["GREENROOM_BROKER_URL"]
    if not vhosts.add_vhost(url, name):
        pytest.skip("rabbitmqctl cannot create a vhost here")
    try:
        yield name
    finally:
        vhosts.delete_vhost(name)
