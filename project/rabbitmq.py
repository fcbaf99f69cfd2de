"""RabbitMQ, the other broker: Dramatiq's RabbitmqBroker with Greenroom's timeouts, vhost and priorities.

`GREENROOM_BROKER_URL=amqp://user:password@host:5672/vhost` selects it (project/settings.py). Dramatiq
declares three durable queues per queue name, in the broker's vhost:

    <q>      waiting messages (with `x-max-priority` when priorities are on)
    <q>.DQ   delayed messages (retries with backoff, `delay=`); a worker holds them, unacked, until due
    <q>.XQ   dead letters: `<q>` and `<q>.DQ` dead-letter a rejected message here (`x-message-ttl` 7 days)

On top of Dramatiq's broker (pinned: dramatiq==2.2.1; this reuses its `_RabbitmqConsumer` and its
thread-local `connection`/`channel`) it adds:

- **the namespace is the vhost** (docs/operations.md, "RabbitMQ"): GREENROOM_NAMESPACE, when set,
  names the vhost; left at its default it means "the URL's vhost";
- explicit connection timeouts and fewer enqueue attempts, so that a web request never waits long
  on a broker that is away (the outbox relay publishes later);
- publisher confirms: `enqueue` returns once RabbitMQ has the message (a missing queue is declared again);
- Greenroom's `priority` message option (lower = more urgent, set on urgent jobs only) mapped onto
  RabbitMQ's queue priorities (`broker_priority`, higher = more urgent);
- what `workers.broker_ops` needs to inspect queues over AMQP alone (no management plugin): ready
  counts by passive declare, and reading or taking dead letters on a channel of its own.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import dramatiq
import pika
import pika.exceptions
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.common import current_millis, dq_name, q_name
from dramatiq.errors import ConnectionClosed

logger = logging.getLogger(__name__)
# pika logs every connection and channel it opens at INFO: keep worker and web logs readable unless
# the logging settings chose a level for it.
if logging.getLogger("pika").level == logging.NOTSET:
    logging.getLogger("pika").setLevel(logging.WARNING)

# GREENROOM_NAMESPACE's default: on RabbitMQ it means "the vhost named in the URL" ("/" if none).
DEFAULT_NAMESPACE = "dramatiq"
# Queue priorities (`x-max-priority`) of every queue; 0 turns them off. RabbitMQ advises at most 10.
DEFAULT_MAX_PRIORITY = 10
# pika connection options added to the URL unless it sets them (seconds): an unreachable broker
# must not hold a web request; a broker that blocks publishers (memory alarm) fails the publish
# instead of hanging it, and the outbox relay publishes it later.
CONNECTION_DEFAULTS = {"socket_timeout": "2", "stack_timeout": "5", "blocked_connection_timeout": "10",
                       "connection_attempts": "1"}
# Attempts of one enqueue: the second one reconnects a per-thread connection the server closed
# while it sat idle (missed heartbeats). Dramatiq's own enqueue makes 6.
ENQUEUE_ATTEMPTS = 3
# Seconds a reader of a queue (dead letters) waits for the next message before it stops.
BROWSE_IDLE = 1.0
# Header of a dead letter put back by `restore`, carrying its first time of death (ms).
DIED_AT_HEADER = "x-greenroom-died-at"
# Message option of an urgent message's priority (lower = more urgent; project.broker.PRIORITY_OPTION).
PRIORITY_OPTION = "priority"
# Connection and channel errors of pika: the broker is away or refused the operation.
AMQP_ERRORS = (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError, ConnectionClosed)


class BrokerUnavailable(ConnectionError):
    """RabbitMQ did not answer an inspection (an OSError, as a Redis connection failure is)."""


def is_amqp_url(url: str) -> bool:
    """True for a RabbitMQ URL (amqp:// or amqps://)."""
    return url.split("://", 1)[0].lower() in ("amqp", "amqps")


def broker_url(url: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """`url` with its vhost set from `namespace` and Greenroom's connection defaults added.

    A namespace other than the default names the vhost; the URL may then name no vhost, or the same
    one (a different one is refused: two settings must not disagree about where the jobs go).
    """
    parts = urlsplit(url)
    named = unquote(parts.path[1:]) if len(parts.path) > 1 else None
    path = parts.path
    if namespace != DEFAULT_NAMESPACE:
        if named is not None and named != namespace:
            raise ValueError(f"GREENROOM_NAMESPACE={namespace!r} and the broker URL's vhost {named!r} disagree; "
                             "on RabbitMQ the namespace is the vhost: set one of them")
        path = "/" + quote(namespace, safe="")
    query = dict(parse_qsl(parts.query))
    for key, value in CONNECTION_DEFAULTS.items():
        query.setdefault(key, value)
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), parts.fragment))


def redacted(url: str) -> str:
    """`url` without its password (for logs and error messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class Delivery:
    """A message read from a queue without removing it: its body and AMQP headers."""

    body: bytes
    headers: dict[str, Any]

    @property
    def key(self) -> str:
        """A stable id of this message in its queue (AMQP has none): the digest of its body."""
        return hashlib.sha256(self.body).hexdigest()[:32]

    @property
    def died_at_ms(self) -> float | None:
        """When it was dead-lettered (ms): our header if it was put back, else RabbitMQ's `x-death`."""
        restored = self.headers.get(DIED_AT_HEADER)
        if isinstance(restored, int | float):
            return float(restored)
        deaths = self.headers.get("x-death")
        if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
            when = deaths[0].get("time")
            if isinstance(when, datetime):  # pika decodes AMQP timestamps as naive UTC datetimes
                return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000
            if isinstance(when, int | float):
                return float(when) * 1000
        return None


class GreenroomRabbitmqBroker(RabbitmqBroker):
    """RabbitmqBroker on one vhost, with explicit timeouts, confirms, priorities and inspection."""

    def __init__(self, *, url: str, namespace: str = DEFAULT_NAMESPACE, max_priority: int = DEFAULT_MAX_PRIORITY,
                 confirm_delivery: bool = True, **options: Any) -> None:
        full_url = broker_url(url, namespace)
        super().__init__(url=full_url, confirm_delivery=confirm_delivery, max_priority=max_priority or None,
                         **options)
        # Not `url`: workers/checks.py reads a broker's `url` as the Redis to check for eviction.
        self.amqp_url = full_url
        self.vhost = pika.URLParameters(full_url).virtual_host

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {redacted(self.amqp_url)}>"

    # --- publishing ----------------------------------------------------------------------------------

    def broker_priority(self, message: dramatiq.Message[Any]) -> int | None:
        """RabbitMQ's priority (higher = more urgent) of an urgent Greenroom message, else None.

        An urgent message's `priority` is below its latency class's priority (workers/catalogue.py);
        it maps to `class priority - priority`, capped at `max_priority`: the most urgent first, and
        any urgent message ahead of the class's ordinary ones (priority 0).
        """
        priority = message.options.get(PRIORITY_OPTION)
        if priority is None or not self.max_priority:
            return message.options.get("broker_priority")
        # Imported here: the broker is built while Django's app registry loads.
        from workers.catalogue import QUEUE_DEFAULTS

        defaults = QUEUE_DEFAULTS.get(q_name(message.queue_name))
        urgency = (defaults.priority if defaults else self.max_priority) - int(priority)
        return max(1, min(self.max_priority, urgency))

    def enqueue(self, message: dramatiq.Message[Any], *, delay: int | None = None) -> dramatiq.Message[Any]:
        """Dramatiq's enqueue (persistent, confirmed), with the message's priority and fewer attempts."""
        canonical = q_name(message.queue_name)
        if delay is not None:
            message = message.copy(queue_name=dq_name(canonical), options={"eta": current_millis() + delay})
        properties = pika.BasicProperties(delivery_mode=2, priority=self.broker_priority(message))
        for attempt in range(1, ENQUEUE_ATTEMPTS + 1):
            try:
                self.declare_queue(canonical, ensure=True)
                self.logger.debug("Enqueueing message %r on queue %r.", message.message_id, message.queue_name)
                self.emit_before("enqueue", message, delay)
                self.channel.basic_publish(exchange="", routing_key=message.queue_name, body=message.encode(),
                                           properties=properties, mandatory=self.confirm_delivery)
                self.emit_after("enqueue", message, delay)
                return message
            except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError) as exc:
                del self.connection  # the next attempt (or caller) opens fresh ones
                if isinstance(exc, pika.exceptions.UnroutableError):
                    self.queues_pending.add(canonical)  # the queue is gone: declare it again
                if attempt == ENQUEUE_ATTEMPTS:
                    raise ConnectionClosed(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    # --- health and inspection (workers.health, workers.broker_ops) ------------------------------------

    def ping(self) -> None:
        """One round trip to the broker (a passive declare of `amq.direct`, present in every vhost)."""
        for attempt in (1, 2):
            try:
                self.channel.exchange_declare(exchange="amq.direct", passive=True)
                return
            except AMQP_ERRORS:
                del self.connection  # maybe a stale per-thread connection: retry once on a fresh one
                if attempt == 2:
                    raise

    def ready_counts(self, names: list[str]) -> dict[str, int]:
        """Messages ready (not held by a consumer) in each queue; 0 for a queue not declared yet."""
        counts: dict[str, int] = {}
        with self._private_channel() as private:
            for name in names:
                try:
                    counts[name] = private.channel.queue_declare(queue=name, passive=True).method.message_count
                except pika.exceptions.ChannelClosedByBroker as exc:
                    if exc.reply_code != 404:
                        raise
                    counts[name] = 0
                    private.reopen()  # the broker closes a channel that declared a missing queue
        return counts

    def purge(self, name: str) -> int:
        """Delete the ready messages of queue `name` (held ones stay); returns how many."""
        with self._private_channel() as private:
            try:
                return int(private.channel.queue_purge(name).method.message_count)
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != 404:
                    raise
                return 0

    def browse(self, name: str) -> list[Delivery]:
        """Every message of queue `name`, left in place (read on a channel of our own, then released)."""
        return self.take(name, lambda delivery: False)

    def take(self, name: str, wanted: Callable[[Delivery], bool]) -> list[Delivery]:
        """Read every message of queue `name` and remove the `wanted` ones; returns all it read.

        The messages are consumed unacked on a channel of our own; the wanted ones are acked, and
        closing the channel puts the others back where they were. While this runs, another reader
        of the queue does not see them (only operators read dead-letter queues).
        """
        read: list[Delivery] = []
        with self._private_channel() as private:
            channel = private.channel
            try:
                count = channel.queue_declare(queue=name, passive=True).method.message_count
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != 404:
                    raise
                return []
            if not count:
                return []
            for method, properties, body in channel.consume(name, inactivity_timeout=BROWSE_IDLE):
                if method is None:
                    break
                delivery = Delivery(body=body, headers=dict(properties.headers or {}))
                read.append(delivery)
                if wanted(delivery):
                    channel.basic_ack(method.delivery_tag)
                if len(read) >= count:
                    break
            channel.cancel()
        return read

    def put(self, name: str, body: bytes, headers: dict[str, Any]) -> None:
        """Publish `body` to queue `name` as it is (dead letters put back by an operator action)."""
        with self._private_channel() as private:
            private.channel.confirm_delivery()
            private.channel.basic_publish(exchange="", routing_key=name, body=body,
                                  properties=pika.BasicProperties(delivery_mode=2, headers=headers))

    def _private_channel(self) -> _PrivateChannel:
        return _PrivateChannel(self)


class _PrivateChannel:
    """A channel of its own on this thread's connection, closed (releasing what it held) on exit."""

    def __init__(self, broker: GreenroomRabbitmqBroker) -> None:
        self.broker = broker
        self.channel: Any = None

    def __enter__(self) -> _PrivateChannel:
        try:
            self.channel = self.broker.connection.channel()
        except AMQP_ERRORS:
            del self.broker.connection  # a stale per-thread connection: one fresh try
            try:
                self.channel = self.broker.connection.channel()
            except AMQP_ERRORS as exc:
                raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return self

    def reopen(self) -> None:
        """A fresh channel after the broker closed this one (e.g. a passive declare of a missing queue)."""
        self.channel = self.broker.connection.channel()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if self.channel is not None and self.channel.is_open:
                self.channel.close()
        except AMQP_ERRORS:
            del self.broker.connection
        if isinstance(exc, AMQP_ERRORS):
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc


def nack_now(consumer: Any, message: Any, *, timeout: float) -> bool:
    """Dead-letter `message` on the consumer channel that delivered it, and wait until it is sent.

    For a process about to exit (the hard-limit watchdog): pika sends the nack from the consumer's own
    thread, on its next turn (within the worker's poll timeout). Returns False if it did not go out
    within `timeout` seconds — RabbitMQ then gives the message back when the process's connection
    closes, and the ledger (the job is FAILED) drops it.
    """
    done = threading.Event()
    consumer.nack(message)
    try:
        consumer.connection.add_callback_threadsafe(done.set)
    except Exception:  # noqa: BLE001 - the connection is gone: the message comes back, see above
        return False
    return done.wait(timeout)
