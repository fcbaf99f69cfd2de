"""A lease in Redis: at most one `runscheduler` is active; a standby takes over when it lapses.

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

import redis

# The Redis key of the scheduler lease.
LEASE_KEY = "greenroom:scheduler:lease"

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
