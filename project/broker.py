"""Broker set-up: Dramatiq's Redis broker with Greenroom's timeouts.

django_dramatiq builds the broker from `settings.DRAMATIQ_BROKER` when the app registry loads; this
module only supplies the broker class it names there.
"""

from __future__ import annotations

from typing import Any

import redis
from dramatiq.brokers.redis import RedisBroker
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

# Seconds to wait for a TCP/unix connection: an unreachable broker must not hold a web request.
CONNECT_TIMEOUT = 2.0
# Seconds to wait for a reply. The broker only runs short Lua scripts; redis-py 8's default is 5 s.
SOCKET_TIMEOUT = 10.0
# Retries of one command after a connection error, with backoff: rides out a Redis restart blip
# without making an enqueue against a dead broker take long.
COMMAND_RETRIES = 2


def redis_client(url: str) -> redis.Redis:
    """A redis client for `url` with Greenroom's explicit timeouts and retries."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), COMMAND_RETRIES),
        health_check_interval=30,
    )


class GreenroomRedisBroker(RedisBroker):
    """RedisBroker whose client has explicit timeouts (the stock `url=` path ignores them)."""

    def __init__(self, *, url: str, **options: Any) -> None:
        super().__init__(client=redis_client(url), **options)
        self.url = url
