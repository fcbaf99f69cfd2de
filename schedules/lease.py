"""The scheduler lease: at most one `runscheduler` is active; a standby takes over when it lapses.

It lives in the broker's Redis (`Lease`) when the broker is Redis, and in the database
(`DatabaseLease`, the `SchedulerLease` table) otherwise — RabbitMQ has no place for it. Both behave
the same; `scheduler_lease()` picks one. The Redis lease:

Acquire is `SET key token NX PX ttl`; renew and release compare the token first (Lua), so a
process whose lease expired can never extend or delete its successor's. A holder that dies stops
renewing and the key expires after at most `ttl`: a standby polling every `retry` seconds becomes
active within ttl + retry (+ one tick before it fires). If both ever act (a lease lost in the middle
of a tick), the Fire table's unique slot still yields one job per slot.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta

import dramatiq
import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, ExpressionWrapper, Q, Value
from django.db.models.functions import Now
from dramatiq.brokers.redis import RedisBroker

from schedules.models import SchedulerLease

# The Redis key of the scheduler lease (of the default namespace: see lease_key()).
LEASE_KEY = "greenroom:scheduler:lease"


def lease_key(namespace: str = "dramatiq") -> str:
    """The lease key of a namespace (GREENROOM_NAMESPACE): one active scheduler per site."""
    return LEASE_KEY if namespace == "dramatiq" else f"greenroom:{namespace}:scheduler:lease"

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def make_token() -> str:
    """host:pid:random — readable in `redis-cli get`, unique per process start."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    """The scheduler lease, held by `token` for `ttl` seconds at a time."""

    def __init__(self, client: redis.Redis, *, ttl: float, key: str = LEASE_KEY, token: str | None = None) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = max(1, int(ttl * 1000))
        self.token = token or make_token()
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def acquire(self) -> bool:
        """Take the lease if nobody holds it."""
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        """Extend the lease if we still hold it; False means it was lost."""
        return bool(self._renew(keys=[self.key], args=[self.token, self.ttl_ms]))

    def hold(self) -> bool:
        """Renew if held, else try to acquire; True when we hold it afterwards."""
        return self.renew() or self.acquire()

    def release(self) -> bool:
        """Give the lease up now (a clean stop hands over without waiting for the TTL)."""
        return bool(self._release(keys=[self.key], args=[self.token]))

    def holder(self) -> str | None:
        value = self.client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    def close(self) -> None:
        self.client.close()


class DatabaseLease:
    """The same lease in the database: one `SchedulerLease` row, changed by conditional UPDATEs.

    Expiry is by the database's clock (`NOW()`), so schedulers on hosts whose clocks differ agree on
    it. Acquire takes a row that is free or expired (or creates it: the primary key lets one creator
    win); renew and release match the token and an unexpired row, as the Redis scripts do.
    """

    def __init__(self, *, ttl: float, key: str = LEASE_KEY, token: str | None = None) -> None:
        self.key = key
        self.ttl = timedelta(seconds=max(0.001, ttl))
        self.token = token or make_token()

    def _expiry(self) -> ExpressionWrapper:
        return ExpressionWrapper(Now() + Value(self.ttl), output_field=DateTimeField())

    def _held(self) -> Q:
        return Q(name=self.key, holder=self.token, expires_at__gt=Now())

    def acquire(self) -> bool:
        """Take the lease if nobody holds it."""
        free = Q(holder="") | Q(expires_at__lte=Now())
        if SchedulerLease.objects.filter(free, name=self.key).update(holder=self.token, expires_at=self._expiry()):
            return True
        try:
            with transaction.atomic():
                SchedulerLease.objects.create(name=self.key, holder=self.token, expires_at=self._expiry())
        except IntegrityError:  # the row exists (held), or another scheduler created it just now
            return False
        return True

    def renew(self) -> bool:
        """Extend the lease if we still hold it; False means it was lost."""
        return bool(SchedulerLease.objects.filter(self._held()).update(expires_at=self._expiry()))

    def hold(self) -> bool:
        """Renew if held, else try to acquire; True when we hold it afterwards."""
        return self.renew() or self.acquire()

    def release(self) -> bool:
        """Give the lease up now (a clean stop hands over without waiting for the TTL)."""
        return bool(SchedulerLease.objects.filter(self._held()).update(holder="", expires_at=Now()))

    def holder(self) -> str | None:
        row = SchedulerLease.objects.filter(name=self.key, expires_at__gt=Now()).exclude(holder="").first()
        return row.holder if row else None

    def close(self) -> None:
        pass


def scheduler_lease(*, ttl: float) -> Lease | DatabaseLease:
    """The lease `runscheduler` uses: in the broker's Redis if the broker is Redis, else in the database."""
    key = lease_key(settings.GREENROOM_NAMESPACE)
    if isinstance(dramatiq.get_broker(), RedisBroker):
        from project.broker import redis_client

        return Lease(redis_client(settings.GREENROOM_BROKER_URL), ttl=ttl, key=key)
    return DatabaseLease(ttl=ttl, key=key)
