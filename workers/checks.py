"""System check: the broker's Redis must never evict a key (a job would vanish without a trace).

Runs with every management command that checks (runserver, migrate, `manage.py check --deploy`, the
worker and scheduler commands through Django's start-up). A Redis that cannot be reached, or that
forbids CONFIG (some managed services), is not judged: its operator must set `noeviction` there.
"""

from __future__ import annotations

from typing import Any

import dramatiq
import redis
from django.core import checks

# Policies under which Redis deletes keys when it runs out of memory.
SAFE_POLICIES = {"noeviction"}


@checks.register()
def check_broker_eviction(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    url = getattr(dramatiq.get_broker(), "url", None)  # GreenroomRedisBroker's; the stub broker has none
    if not url:
        return []
    # Its own client, quick to give up: a Redis that is down must not slow every manage.py command.
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=2, retry=None)
    try:
        policy = broker_eviction_policy(client)
    finally:
        client.close()
    if policy is None or policy in SAFE_POLICIES:
        return []
    return [checks.Error(
        f"the broker's Redis has maxmemory-policy {policy!r}: it may evict queued jobs",
        hint="Set 'maxmemory-policy noeviction' on the broker Redis (a cache Redis may evict; a broker must not).",
        id="workers.E001",
    )]


def broker_eviction_policy(client: redis.Redis) -> str | None:
    """The Redis's maxmemory-policy, or None when it cannot be read."""
    try:
        reply = client.config_get("maxmemory-policy")
    except redis.RedisError:
        return None
    value = reply.get("maxmemory-policy") if isinstance(reply, dict) else None
    if isinstance(value, bytes):
        value = value.decode()
    return value or None
