"""The broker eviction check: a broker Redis that may evict keys refuses to start."""

from __future__ import annotations

import dramatiq
import pytest
import redis

from tests.support.redis_server import RedisServer
from workers.checks import check_broker_eviction


@pytest.fixture
def own_redis(monkeypatch):
    server = RedisServer().start()
    monkeypatch.setattr(dramatiq.get_broker(), "url", server.url, raising=False)
    client = redis.Redis.from_url(server.url)
    yield client
    client.close()
    server.stop()


def test_an_evicting_broker_redis_is_an_error_and_noeviction_passes(own_redis):
    assert check_broker_eviction() == []  # redis-server's default is noeviction
    own_redis.config_set("maxmemory-policy", "allkeys-lru")
    [error] = check_broker_eviction()
    assert error.id == "workers.E001" and "allkeys-lru" in error.msg
    own_redis.config_set("maxmemory-policy", "volatile-ttl")
    assert [e.id for e in check_broker_eviction()] == ["workers.E001"]


def test_an_unreachable_broker_is_not_judged(own_redis, monkeypatch):
    monkeypatch.setattr(dramatiq.get_broker(), "url", "redis://127.0.0.1:1/0", raising=False)
    assert check_broker_eviction() == []
