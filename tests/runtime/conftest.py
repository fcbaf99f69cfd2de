"""Fixtures of the runtime tests (real Redis, real worker processes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.redis import _scripts

from project.broker import redis_client
from tests.support import session_redis
from tests.support.redis_server import RedisServer


@pytest.fixture
def broker_redis(start_workers: Callable[..., Any], broker: dramatiq.Broker,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisServer]:
    """The redis-server behind the broker, for a test to stop and restart on the same port.

    Normally the suite's own server. When the suite runs against a Redis of someone else's
    (GREENROOM_TEST_REDIS_URL), a private server is swapped in for this test instead, for this
    process and for the workers started after it. Redis is running again after the test, before the
    test's workers stop (this fixture depends on `start_workers`, so it is torn down first).
    """
    server = session_redis.server()
    swapped = None
    if server is None:
        server = RedisServer().start()
        swapped = broker.client, broker.scripts
        broker.client = redis_client(server.url)
        broker.scripts = {name: broker.client.register_script(script) for name, script in _scripts.items()}
        monkeypatch.setenv("GREENROOM_BROKER_URL", server.url)
    try:
        yield server
    finally:
        if server.process is None:
            server.start()
        if swapped is not None:
            broker.client, broker.scripts = swapped
            server.remove()
