"""Broker set-up: Dramatiq's Redis broker with Greenroom's timeouts, doorbells and priorities.

django_dramatiq builds the broker from `settings.DRAMATIQ_BROKER` when the app registry loads; this
module only supplies the broker class it names there.

On top of Dramatiq's `RedisBroker` (pinned: dramatiq==2.2.1; this reuses its private `_RedisConsumer`,
`_max_unpack_size` and key layout) it adds, as described in docs/architecture.md ("Wake-up and
priorities"):

- a doorbell per queue, rung by every enqueue and requeue: an idle consumer waits for it (or for the
  next due delayed message, to the millisecond) instead of polling with backoff up to 1 s;
- urgent messages (option `priority`, lower = more urgent) placed ahead of ordinary ones in Redis;
- `enqueue_many`, pipelined in batches;
- held acks (project/held_acks.py) that settle together sent in one call (`ack_many`).

Delivery, ack, nack, dead-lettering, heartbeats and maintenance are Dramatiq's own scripts, unchanged
(`ack_many` is Dramatiq's ack for many messages at once).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Any
from uuid import uuid4

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis, dq_name
from dramatiq.errors import ConnectionClosed
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from project import held_acks, redis_scripts

logger = logging.getLogger(__name__)

# Seconds to wait for a TCP/unix connection: an unreachable broker must not hold a web request.
CONNECT_TIMEOUT = 2.0
# Seconds to wait for a reply. The broker only runs short Lua scripts; redis-py 8's default is 5 s.
SOCKET_TIMEOUT = 10.0
# Retries of one command after a connection error, with backoff: rides out a Redis restart blip
# without making an enqueue against a dead broker take long.
COMMAND_RETRIES = 2
# Messages per pipeline in `enqueue_many`: one round trip each, small enough for Redis to stay
# responsive to other clients while it runs a batch.
ENQUEUE_BATCH = 1000
# Seconds a doorbell connection waits for a reply beyond its BLPOP timeout (the poll timeout).
DOORBELL_SOCKET_SLACK = 5.0
# Seconds between two looks of a waiting consumer at whether its thread is stopping.
STOP_CHECK_INTERVAL = 1.0
# Message option of an urgent message's priority (lower = more urgent, as Dramatiq's actor priority).
PRIORITY_OPTION = "priority"


def redis_client(url: str) -> redis.Redis:
    """A redis client for `url` with Greenroom's explicit timeouts and retries."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), COMMAND_RETRIES),
        health_check_interval=30,
    )


def redis_message_id(message: dramatiq.Message[Any]) -> str:
    """A fresh Redis id for `message`: `<priority>|<uuid>` when it is urgent, else a plain UUID."""
    priority = message.options.get(PRIORITY_OPTION)
    return str(uuid4()) if priority is None else f"{int(priority)}|{uuid4()}"


class GreenroomRedisBroker(RedisBroker):
    """RedisBroker with explicit client timeouts, doorbells, Redis-side priorities and bulk enqueue."""

    greenroom_holds_acks = True  # its consumer acks a message held by project/held_acks.py once settled

    def __init__(self, *, url: str, **options: Any) -> None:
        super().__init__(client=redis_client(url), **options)
        self.url = url
        # Called with `client=` each time, so that swapping `self.client` (as tests do) takes effect.
        self.greenroom_scripts = {name: self.client.register_script(src) for name, src in redis_scripts.SCRIPTS.items()}

    @property
    def consumer_class(self) -> type[DoorbellConsumer]:
        return DoorbellConsumer

    def key(self, name: str) -> str:
        """The Redis key of queue (or queue part) `name` in this broker's namespace."""
        return f"{self.namespace}:{name}"

    def bell_key(self, queue_name: str) -> str:
        """The doorbell of queue `queue_name` (delay queues have their own)."""
        return self.key(f"{queue_name}.bell")

    def enqueue(self, message: dramatiq.Message[Any], *, delay: int | None = None) -> dramatiq.Message[Any]:
        """Dramatiq's enqueue, placing the message by priority and ringing its queue's doorbell."""
        message = self._prepare(message, delay)
        self.logger.debug("Enqueueing message %r on queue %r.", message.message_id, message.queue_name)
        self.emit_before("enqueue", message, delay)
        self._enqueue_script(self.client, message.queue_name, [message])
        self.emit_after("enqueue", message, delay)
        return message

    def enqueue_many(self, messages: list[dramatiq.Message[Any]], *, batch: int = ENQUEUE_BATCH) -> None:
        """Enqueue `messages` (none delayed) in pipelines of `batch`: one round trip and one script
        call per queue per batch, one ring of each queue's doorbell per batch.

        Middleware sees `before_enqueue` for each message of a batch before it is sent and
        `after_enqueue` after; a failure raises with earlier batches sent and later ones not.
        """
        for start in range(0, len(messages), batch):
            prepared = [self._prepare(message, None) for message in messages[start : start + batch]]
            for message in prepared:
                self.emit_before("enqueue", message, None)
            by_queue: dict[str, list[dramatiq.Message[Any]]] = defaultdict(list)
            for message in prepared:
                by_queue[message.queue_name].append(message)
            with self.client.pipeline(transaction=False) as pipe:
                for queue_name, queued in by_queue.items():
                    self._enqueue_script(pipe, queue_name, queued)
                pipe.execute()
            for message in prepared:
                self.emit_after("enqueue", message, None)

    def ack_many(self, queue_name: str, redis_ids: list[str]) -> None:
        """Dramatiq's ack (with its heartbeat) for many messages of this broker on `queue_name`."""
        keys = [
            self.key("__heartbeats__"),
            self.key(f"__acks__.{self.broker_id}.{queue_name}"),
            self.key(f"{queue_name}.msgs"),
        ]
        self.greenroom_scripts["ack_many"](keys=keys, args=[current_millis(), self.broker_id, *redis_ids],
                                           client=self.client)

    def ring_if_waiting(self, queue_name: str) -> None:
        """Ring `queue_name`'s doorbell if messages wait in it (a fetch may have left some behind)."""
        self.greenroom_scripts["ring_if_waiting"](
            keys=[self.key(queue_name), self.bell_key(queue_name)], client=self.client
        )

    def ring(self, queue_name: str) -> None:
        """Ring `queue_name`'s doorbell."""
        self.greenroom_scripts["ring"](keys=[self.bell_key(queue_name)], client=self.client)

    def requeue_prefetched(self, queue_name: str, redis_ids: list[str]) -> None:
        """Put this broker's unacked messages back in their queue by priority, and ring."""
        keys = [
            self.key(queue_name),
            self.key(f"{queue_name}.msgs"),
            self.key(f"__acks__.{self.broker_id}.{queue_name}"),
            self.bell_key(queue_name),
        ]
        self.greenroom_scripts["requeue"](keys=keys, args=redis_ids, client=self.client)

    def doorbell_client(self, *, wait: float) -> redis.Redis:
        """A client on a connection of its own (never the shared pool, which acks need) for BLPOPs
        of up to `wait` seconds."""
        pool = self.client.connection_pool
        kwargs = {**pool.connection_kwargs, "socket_timeout": wait + DOORBELL_SOCKET_SLACK}
        return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))

    def _prepare(self, message: dramatiq.Message[Any], delay: int | None) -> dramatiq.Message[Any]:
        # As RedisBroker.enqueue: a fresh Redis id per enqueue (retries reuse the message id), and
        # a delayed message goes to the delay queue with its eta.
        message = message.copy(options={"redis_message_id": redis_message_id(message)})
        if delay is not None:
            message = message.copy(queue_name=dq_name(message.queue_name), options={"eta": current_millis() + delay})
        return message

    def _enqueue_script(self, client: Any, queue_name: str, messages: list[dramatiq.Message[Any]]) -> None:
        args: list[str | bytes] = []
        for message in messages:
            args += [message.options["redis_message_id"], message.encode()]
        keys = [self.key(queue_name), self.key(f"{queue_name}.msgs"), self.bell_key(queue_name)]
        self.greenroom_scripts["enqueue"](keys=keys, args=args, client=client)


class DoorbellConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer that, when idle, waits for its queue's doorbell instead of polling.

    After an empty fetch it waits — for at most the poll timeout (`dramatiq_worker_timeout`), as
    before, so heartbeats and maintenance keep their pace — until one of: the doorbell rings (a
    listener thread BLPOPs it on its own connection and sets an Event); the next delayed message in
    its ConsumerThread's `delay_queue` is due (an exact Event timeout: Redis rounds BLPOP timeouts to
    100 ms). When it has no spare capacity it does not take the doorbell's token; it waits for an
    ack or nack of its own instead.
    """

    def __init__(self, broker: GreenroomRedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)
        self._wake = threading.Event()
        self._full = False  # waiting for an ack/nack to free capacity
        self._listener: _DoorbellListener | None = None
        self._settled: list[Any] = []  # held acks whose writes settled, not yet sent
        self._settled_lock = threading.Lock()
        # The last fetch brought fewer messages than asked for: the queue was empty then, and any
        # message sent since rang the doorbell (its token waits). The next fetch waits for a ring.
        self._drained = False

    def ack(self, message: Any) -> None:
        pending = held_acks.take(message)
        if pending is not None:  # its job's finish write is not durable yet: ack once it is
            pending.then(lambda: self._ack_settled(message))
            return
        self._ack_now(message)

    def _ack_settled(self, message: Any) -> None:
        with self._settled_lock:
            self._settled.append(message)
        held_acks.defer(id(self), self._send_settled)

    def _send_settled(self) -> None:
        """Ack every settled message in one call (Dramatiq's ack, for many ids at once)."""
        with self._settled_lock:
            messages, self._settled = self._settled, []
        if not messages:
            return
        try:
            self.broker.ack_many(self.queue_name, [message.options["redis_message_id"] for message in messages])
        finally:
            for message in messages:
                self.queued_message_ids.discard(message.message_id)
            self._capacity_freed()

    def _ack_now(self, message: Any) -> None:
        try:
            super().ack(message)
        finally:
            self._capacity_freed()

    def nack(self, message: Any) -> None:
        held_acks.take(message)
        try:
            super().nack(message)
        finally:
            self._capacity_freed()

    def requeue(self, messages: Any) -> None:
        redis_ids = [message.options["redis_message_id"] for message in messages]
        if redis_ids:
            self.logger.debug("Re-enqueueing %r on queue %r.", redis_ids, self.queue_name)
            self.broker.requeue_prefetched(self.queue_name, redis_ids)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None

    def __next__(self) -> Any:
        while True:
            if self.message_cache:
                # Dramatiq's fast path: hand out what the last fetch brought.
                proxy = self._from_cache()
                if proxy is not None:
                    return proxy
                continue
            try:
                if self._drained:
                    # Dramatiq fetches again at once, which would come back empty: one wasted round
                    # trip per lone message. Listen for the doorbell instead (its `_wake` was cleared
                    # before that fetch, so a ring since then ends the wait at once).
                    self._drained = False
                    self._listening(True)
                    self._wait(self._idle_timeout())
                    return None
                self._wake.clear()  # before the fetch: a ring from now on ends the wait below
                self._full = True  # (first: an ack from now on ends the wait below)
                wanted = self.prefetch - self.outstanding_message_count
                self._full = wanted <= 0
                if wanted > 0:
                    self.message_cache = self.broker.do_fetch(self.queue_name, wanted)
                    if self.message_cache:
                        self._listening(False)
                        if len(self.message_cache) >= min(wanted, self.broker._max_unpack_size()):
                            self.broker.ring_if_waiting(self.queue_name)  # more may wait: next consumer
                        else:
                            self._drained = True
                        continue
                    self._listening(True)
                self._wait(self._idle_timeout())
                return None
            except redis.ConnectionError as exc:
                raise ConnectionClosed(exc) from None

    def _from_cache(self) -> Any:
        """The next fetched message as a MessageProxy (None for a lost one, skipped)."""
        data = self.message_cache.pop(0)
        if data is None:  # as Dramatiq: a message id whose data is gone (dramatiq#266)
            self.logger.warning("Found 'None' message in message cache for queue %r.", self.queue_name)
            return None
        message = dramatiq.Message.decode(data)
        self.queued_message_ids.add(message.message_id)
        return dramatiq.MessageProxy(message)

    def _wait(self, timeout: float) -> None:
        """Wait for a wake-up up to `timeout` s, returning early once the ConsumerThread is stopping
        (it checks only between messages: with a long poll timeout, shutdown would wait for it)."""
        thread = threading.current_thread()
        deadline = time.monotonic() + timeout
        while getattr(thread, "running", True):
            left = deadline - time.monotonic()
            if left <= 0 or self._wake.wait(min(left, STOP_CHECK_INTERVAL)):
                return

    def _idle_timeout(self) -> float:
        """Seconds to wait: the poll timeout, or less if a delayed message falls due sooner."""
        timeout = self.timeout / 1000
        # This runs on the ConsumerThread, whose delay_queue holds prefetched delayed messages in a
        # heap keyed by eta (ms): [0] is the next due.
        delay_queue = getattr(threading.current_thread(), "delay_queue", None)
        if delay_queue is not None and delay_queue.queue:
            due_in = (delay_queue.queue[0].priority - current_millis() + 1) / 1000
            timeout = max(0.0, min(timeout, due_in))
        return timeout

    def _listening(self, on: bool) -> None:
        if on:
            if self._listener is None:
                self._listener = _DoorbellListener(self.broker, self.queue_name, self._wake, self.timeout / 1000)
                self._listener.start()
            self._listener.armed.set()
        elif self._listener is not None:
            self._listener.armed.clear()

    def _capacity_freed(self) -> None:
        if self._full:
            self._wake.set()


class _DoorbellListener(threading.Thread):
    """Takes a queue's doorbell token (BLPOP, own connection) while its consumer is armed for it."""

    def __init__(self, broker: GreenroomRedisBroker, queue_name: str, wake: threading.Event, wait: float) -> None:
        super().__init__(daemon=True, name=f"doorbell({queue_name})")
        self.broker = broker
        self.queue_name = queue_name
        self.wake = wake
        self.wait = wait
        self.armed = threading.Event()
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True
        self.armed.set()  # let the loop see `stopped`; a BLPOP under way ends within `wait`

    def run(self) -> None:
        client = self.broker.doorbell_client(wait=self.wait)
        bell = self.broker.bell_key(self.queue_name)
        try:
            while not self.stopped:
                self.armed.wait()
                if self.stopped:
                    break
                try:
                    token = client.blpop([bell], timeout=self.wait)
                except redis.RedisError as exc:
                    # The consumer still fetches every poll timeout; try again after one.
                    logger.warning("doorbell of %s unavailable (%s); polling", self.queue_name, exc)
                    time.sleep(self.wait)
                    continue
                if token is None:
                    continue
                if self.armed.is_set() and not self.stopped:
                    self.armed.clear()
                    self.wake.set()
                else:  # the consumer found work meanwhile: the token is for another consumer
                    self.broker.ring(self.queue_name)
        finally:
            client.close()
