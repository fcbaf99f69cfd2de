"""Pytest plugin of a RabbitMQ run (`make test-rabbitmq`): the run's own vhost, deleted at the end.

Loaded with `-p tests.rabbitmq.session`. When GREENROOM_BROKER_URL is an amqp:// URL (the
session_redis plugin then starts no Redis), it creates the vhost `greenroom-test-<pid>` before
Django builds its broker and points GREENROOM_BROKER_URL (and so the workers the tests start) at it;
at the end it deletes the vhost with everything in it. Without rabbitmqctl it stays on the URL's
vhost and deletes the queues the run declared instead. With a Redis URL it does nothing.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.rabbitmq import vhosts

_state: dict[str, str] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: Any, parser: Any, args: Any) -> None:
    url = os.environ.get("GREENROOM_BROKER_URL", "")
    if not vhosts.is_amqp(url):
        return
    vhost = f"greenroom-test-{os.getpid()}"
    if vhosts.add_vhost(url, vhost):
        _state["vhost"] = vhost
        url = vhosts.with_vhost(url, vhost)
        os.environ["GREENROOM_BROKER_URL"] = url
    _state["url"] = url


def pytest_unconfigure(config: Any) -> None:
    if "vhost" in _state:
        vhosts.delete_vhost(_state.pop("vhost"))
    elif "url" in _state:
        import dramatiq

        vhosts.delete_queues(_state["url"], sorted(dramatiq.get_broker().get_declared_queues()))
