"""Pytest plugin: start the suite's own Redis before Django reads its settings.

Loaded with `-p tests.support.session_redis` (see pyproject.toml). Django's broker is built while
the app registry loads, which pytest-django does before any conftest runs; this hook runs first and
sets GREENROOM_BROKER_URL. Set GREENROOM_TEST_REDIS_URL to use a Redis of your own instead.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.support.redis_server import RedisServer

_server: RedisServer | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: Any, parser: Any, args: Any) -> None:
    global _server
    if os.environ.get("GREENROOM_BROKER_URL", "").startswith(("amqp://", "amqps://")):
        return  # a RabbitMQ run (make test-rabbitmq, tests/rabbitmq/session.py): no Redis to start
    url = os.environ.get("GREENROOM_TEST_REDIS_URL")
    if not url:
        _server = RedisServer().start()
        url = _server.url
    os.environ["GREENROOM_BROKER_URL"] = url


def server() -> RedisServer | None:
    """The suite's own redis-server (None when GREENROOM_TEST_REDIS_URL points at another Redis)."""
    return _server


def pytest_unconfigure(config: Any) -> None:
    if _server is not None:
        _server.remove()
