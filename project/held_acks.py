"""Acks held back until a job's finish write is durable, so that worker threads need not wait for it.

With group commit (workers/ledger_writer.py) a worker thread hands its job's finish write to its
process's ledger writer. Rather than wait for the commit, it may `hold` the message's ack on a
`Pending` and go on to its next message: when the broker's consumer is asked to ack that message
(Dramatiq asks at once), it `take`s the Pending and acks only once the write has `settle`d. The
message stays unacked in the broker until its row is durable, exactly as when the thread waited.

Acks that settle together — the ledger writer settles a whole batch of finish writes at once, inside
`together()` — reach Redis together: the consumer queues each one (`defer`) and sends them in one
call at the end of the block, instead of one round trip per message on the writer's thread.

Only a broker whose consumer honours held acks (`greenroom_holds_acks` on the broker: the Redis broker
of project/broker.py) gets them; elsewhere the worker thread waits for the write as before.
Messages are keyed by their MessageProxy object (a duplicate delivery of the same job is another
proxy), which the registry keeps alive until the ack or nack takes it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger(__name__)

# Broker attribute: True when its consumer's ack/nack `take` held acks.
HOLDS_ACKS = "greenroom_holds_acks"


class Pending:
    """A write not yet durable: callbacks given to `then` run once it has `settle`d."""

    __slots__ = ("_callbacks", "_lock", "_settled")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settled = False
        self._callbacks: list[Callable[[], None]] = []

    def settle(self) -> None:
        """The write is durable (or failed for good): run the callbacks, in the calling thread."""
        with self._lock:
            self._settled = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            _run(callback)

    def then(self, callback: Callable[[], None]) -> None:
        """Run `callback` once settled: at once (in this thread) if it already is."""
        with self._lock:
            if not self._settled:
                self._callbacks.append(callback)
                return
        _run(callback)


_held: dict[int, tuple[Any, Pending]] = {}
_lock = threading.Lock()


def holds_acks(broker: Any) -> bool:
    return bool(getattr(broker, HOLDS_ACKS, False))


def hold(message: Any, pending: Pending) -> None:
    """Hold `message`'s ack (the MessageProxy a worker thread is processing) until `pending` settles."""
    with _lock:
        _held[id(message)] = (message, pending)


def take(message: Any) -> Pending | None:
    """The Pending `message`'s ack waits for, if it has one (removed from the registry)."""
    with _lock:
        entry = _held.pop(id(message), None)
    if entry is None or entry[0] is not message:
        return None
    return entry[1]


class _Together(threading.local):
    flushes: dict[int, Callable[[], None]] | None = None


_together = _Together()


@contextmanager
def together() -> Iterator[None]:
    """Acks settled in this block (on this thread) are sent at its end, each consumer's in one call."""
    if _together.flushes is not None:  # nested: the outer block sends them
        yield
        return
    _together.flushes = {}
    try:
        yield
    finally:
        flushes, _together.flushes = _together.flushes, None
        for flush in flushes.values():
            _run(flush)


def defer(key: int, flush: Callable[[], None]) -> None:
    """Run `flush` (once per `key`, e.g. per consumer) at the end of the enclosing `together()`
    block, or at once outside one."""
    flushes = _together.flushes
    if flushes is None:
        _run(flush)
    else:
        flushes.setdefault(key, flush)


def _run(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # a failed ack must not break the writer thread that settles
        logger.warning("a held ack failed; the message stays unacked and is delivered again later",
                       exc_info=True)
