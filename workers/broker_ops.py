"""What the broker holds, read and changed for operators: queue depths, dead letters, purge.

The dashboard, `manage.py jobs` and /metrics read queues through here and never touch broker keys
themselves. Dramatiq's Redis broker keeps, under its namespace (`dramatiq` by default):

    <ns>:<q>            list of waiting message ids (Redis ids, not job ids)
    <ns>:<q>.msgs       hash id → message, for waiting and in-flight (prefetched, running) messages
    <ns>:<q>.DQ(.msgs)  the same for delayed messages (retries with backoff, `delay=`)
    <ns>:<q>.XQ         sorted set of dead-lettered ids, scored by the time they died
    <ns>:<q>.XQ.msgs    hash id → message of the dead letters

On RabbitMQ (project/rabbitmq.py) the same functions work over AMQP alone, on the queues `<q>`,
`<q>.DQ` and `<q>.XQ` of the broker's vhost. AMQP only tells how many messages are *ready* in a
queue, so there:

- `waiting` and `dead` are RabbitMQ's ready counts of `<q>` and `<q>.XQ` (exact);
- `in_flight` is the ledger's RUNNING jobs of the queue (messages a worker prefetched but has not
  started are not counted);
- `delayed` is the larger of `<q>.DQ`'s ready count and the ledger's retries still waiting: workers
  hold delayed messages unacked until they are due, so RabbitMQ does not count those as ready;
- `oldest_age` is None: reading a queue's head would take the message from the workers;
- a dead letter's `redis_id` is a digest of its body (AMQP messages have no id of their own), and
  reading dead letters consumes the whole `<q>.XQ` on a channel of its own and puts back what it
  does not remove.

A broker that is neither (the stub broker in tests) answers `BrokerNotInspectable`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import dq_name, q_name, xq_name

from project.rabbitmq import DIED_AT_HEADER, Delivery, GreenroomRabbitmqBroker
from workers import catalogue


class BrokerNotInspectable(Exception):
    """The configured broker cannot be inspected (not a Redis broker)."""


@dataclass(frozen=True)
class QueueStats:
    """One latency-class queue at one moment."""

    queue: str
    waiting: int  # in the queue, not yet taken by a worker
    in_flight: int  # taken by a worker (prefetched or running), not yet acked
    delayed: int  # waiting for their time (retries with backoff, delayed sends)
    dead: int  # in the dead-letter queue
    oldest_age: float | None  # seconds since the message at the head of the queue was first enqueued


@dataclass(frozen=True)
class DeadLetter:
    """A message in a dead-letter queue."""

    redis_id: str  # the broker's key for it (remove_dead_letters takes these)
    job_id: str  # Dramatiq's message id = the ledger's Job id for catalogue jobs
    queue: str
    actor: str
    died_at: datetime
    enqueued_at: datetime | None
    retries: int


def _redis() -> RedisBroker:
    broker = dramatiq.get_broker()
    if not isinstance(broker, RedisBroker):
        raise BrokerNotInspectable(f"{type(broker).__name__} cannot be inspected")
    return broker


def _rabbitmq() -> GreenroomRabbitmqBroker | None:
    """The broker if it is RabbitMQ (the functions below then take their AMQP branch)."""
    broker = dramatiq.get_broker()
    return broker if isinstance(broker, GreenroomRabbitmqBroker) else None


def _key(broker: RedisBroker, name: str) -> str:
    return f"{broker.namespace}:{name}"


def queue_names() -> list[str]:
    """The latency classes, then any other queue the broker declared (canonical names, no .DQ/.XQ)."""
    names = list(catalogue.QUEUES)
    for name in sorted({q_name(q) for q in dramatiq.get_broker().get_declared_queues()}):
        if name not in names:
            names.append(name)
    return names


def _decode(raw: bytes | str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def queue_stats(queues: list[str] | None = None) -> list[QueueStats]:
    """Depth, in-flight, delayed and dead counts and the head's age of each queue, in two round trips."""
    rabbitmq = _rabbitmq()
    if rabbitmq is not None:
        return _rabbitmq_queue_stats(rabbitmq, queues or queue_names())
    broker = _redis()
    names = queues or queue_names()
    pipe = broker.client.pipeline(transaction=False)
    for name in names:
        pipe.llen(_key(broker, name))
        pipe.hlen(_key(broker, f"{name}.msgs"))
        pipe.hlen(_key(broker, f"{dq_name(name)}.msgs"))
        pipe.zcard(_key(broker, xq_name(name)))
        pipe.lindex(_key(broker, name), 0)
    replies = pipe.execute()
    heads: list[tuple[int, Any]] = []
    pipe = broker.client.pipeline(transaction=False)
    for index, name in enumerate(names):
        head = replies[index * 5 + 4]
        if head is not None:
            heads.append((index, head))
            pipe.hget(_key(broker, f"{name}.msgs"), head)
    bodies = pipe.execute() if heads else []
    ages: dict[int, float] = {}
    now_ms = time.time() * 1000
    for (index, _), body in zip(heads, bodies, strict=True):
        message = _decode(body)
        if message and isinstance(message.get("message_timestamp"), int | float):
            ages[index] = max(0.0, (now_ms - message["message_timestamp"]) / 1000)
    stats = []
    for index, name in enumerate(names):
        waiting, held, delayed, dead, _ = replies[index * 5 : index * 5 + 5]
        stats.append(QueueStats(queue=name, waiting=waiting, in_flight=max(0, held - waiting), delayed=delayed,
                                dead=dead, oldest_age=ages.get(index)))
    return stats


def _rabbitmq_queue_stats(broker: GreenroomRabbitmqBroker, names: list[str]) -> list[QueueStats]:
    ready = broker.ready_counts([part for name in names for part in (name, dq_name(name), xq_name(name))])
    running, retrying = _ledger_held(names)
    return [
        QueueStats(queue=name, waiting=ready[name], in_flight=running.get(name, 0),
                   delayed=max(ready[dq_name(name)], retrying.get(name, 0)), dead=ready[xq_name(name)],
                   oldest_age=None)
        for name in names
    ]


def _ledger_held(names: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Per queue: the ledger's RUNNING jobs, and its READY jobs whose retry is not yet due."""
    from django.db.models import Count, Q
    from django.utils import timezone

    from workers.models import Job, JobStatus

    rows = (Job.objects.filter(queue__in=names, status__in=[JobStatus.RUNNING, JobStatus.READY]).order_by()
            .values("queue").annotate(
                running=Count("pk", filter=Q(status=JobStatus.RUNNING)),
                retrying=Count("pk", filter=Q(status=JobStatus.READY, next_attempt_at__gt=timezone.now())),
            ))
    return {row["queue"]: row["running"] for row in rows}, {row["queue"]: row["retrying"] for row in rows}


def _letter(queue: str, delivery: Delivery) -> DeadLetter:
    message = _decode(delivery.body) or {}
    options = message.get("options") or {}
    stamp = message.get("message_timestamp")
    died_ms = delivery.died_at_ms
    return DeadLetter(
        redis_id=delivery.key,
        job_id=str(message.get("message_id", "")),
        queue=queue,
        actor=str(message.get("actor_name", "")),
        died_at=datetime.fromtimestamp(died_ms / 1000, UTC) if died_ms is not None else datetime.now(UTC),
        enqueued_at=datetime.fromtimestamp(stamp / 1000, UTC) if isinstance(stamp, int | float) else None,
        retries=int(options.get("retries", 0) or 0),
    )


def dead_letters(queue: str, *, limit: int = 1000) -> list[DeadLetter]:
    """The newest `limit` dead letters of `queue` (newest first)."""
    rabbitmq = _rabbitmq()
    if rabbitmq is not None:
        letters = [_letter(queue, delivery) for delivery in rabbitmq.browse(xq_name(queue))]
        return sorted(letters, key=lambda letter: letter.died_at, reverse=True)[:limit]
    broker = _redis()
    entries = broker.client.zrevrange(_key(broker, xq_name(queue)), 0, limit - 1, withscores=True)
    if not entries:
        return []
    bodies = broker.client.hmget(_key(broker, f"{xq_name(queue)}.msgs"), [rid for rid, _ in entries])
    letters = []
    for (rid, score), body in zip(entries, bodies, strict=True):
        message = _decode(body) or {}
        options = message.get("options") or {}
        stamp = message.get("message_timestamp")
        letters.append(DeadLetter(
            redis_id=rid.decode() if isinstance(rid, bytes) else str(rid),
            job_id=str(message.get("message_id", "")),
            queue=queue,
            actor=str(message.get("actor_name", "")),
            died_at=datetime.fromtimestamp(score / 1000, UTC),
            enqueued_at=datetime.fromtimestamp(stamp / 1000, UTC) if isinstance(stamp, int | float) else None,
            retries=int(options.get("retries", 0) or 0),
        ))
    return letters


def remove_dead_letters(queue: str, redis_ids: list[str]) -> int:
    """Delete these dead letters of `queue`; returns how many were there."""
    if not redis_ids:
        return 0
    rabbitmq = _rabbitmq()
    if rabbitmq is not None:
        wanted = set(redis_ids)
        return sum(1 for d in rabbitmq.take(xq_name(queue), lambda d: d.key in wanted) if d.key in wanted)
    broker = _redis()
    pipe = broker.client.pipeline(transaction=True)
    pipe.zrem(_key(broker, xq_name(queue)), *redis_ids)
    pipe.hdel(_key(broker, f"{xq_name(queue)}.msgs"), *redis_ids)
    removed, _ = pipe.execute()
    return int(removed)


def remove_dead_letters_of_jobs(queue: str, job_ids: set[str]) -> int:
    """Delete the dead letters of these jobs (a retried or discarded failure leaves the DLQ too)."""
    if not job_ids:
        return 0
    rabbitmq = _rabbitmq()
    if rabbitmq is not None:  # one pass over the dead-letter queue, taking ours as it goes

        def ours_(delivery: Delivery) -> bool:
            return str((_decode(delivery.body) or {}).get("message_id", "")) in job_ids

        return sum(1 for delivery in rabbitmq.take(xq_name(queue), ours_) if ours_(delivery))
    ours = [letter.redis_id for letter in dead_letters(queue, limit=100_000) if letter.job_id in job_ids]
    return remove_dead_letters(queue, ours)


# --- operator changes: purge, take and restore dead letters (manage.py jobs) -----------------------

# Empties one list of waiting message ids and deletes those messages from its hash, atomically: a
# worker's fetch (also a Lua script) takes a message either before (it stays, in flight) or never.
# Messages in flight are in the hash but not in the list, so they stay. Batches keep unpack() small.
_PURGE_WAITING = """
local ids = redis.call("lrange", KEYS[1], 0, -1)
redis.call("del", KEYS[1])
for i = 1, #ids, 1000 do
    redis.call("hdel", KEYS[2], unpack(ids, i, math.min(i + 999, #ids)))
end
return #ids
"""


@dataclass(frozen=True)
class PurgedMessages:
    """What `purge_waiting` deleted from one queue, and what it left to the workers."""

    queue: str
    waiting: int  # deleted from the queue
    delayed: int  # deleted from the delay queue (not yet fetched by a worker)
    in_flight_left: int  # prefetched or running (delayed ones held by a worker included): left alone


def purge_waiting(queue: str) -> PurgedMessages:
    """Delete the waiting and delayed messages of `queue`; leave the ones workers hold."""
    rabbitmq = _rabbitmq()
    if rabbitmq is not None:  # the ready ones; held ones (estimated from the ledger) stay
        waiting, delayed = rabbitmq.purge(queue), rabbitmq.purge(dq_name(queue))
        running, retrying = _ledger_held([queue])
        return PurgedMessages(queue=queue, waiting=waiting, delayed=delayed,
                              in_flight_left=running.get(queue, 0) + retrying.get(queue, 0))
    broker = _redis()
    script = broker.client.register_script(_PURGE_WAITING)
    counts = []
    for name in (queue, dq_name(queue)):
        counts.append(int(script(keys=[_key(broker, name), _key(broker, f"{name}.msgs")])))
    pipe = broker.client.pipeline(transaction=False)
    pipe.hlen(_key(broker, f"{queue}.msgs"))
    pipe.hlen(_key(broker, f"{dq_name(queue)}.msgs"))
    held, held_delayed = pipe.execute()
    return PurgedMessages(queue=queue, waiting=counts[0], delayed=counts[1], in_flight_left=held + held_delayed)


@dataclass(frozen=True)
class TakenDeadLetter:
    """A dead letter taken out of its queue, with what is needed to put it back."""

    redis_id: str
    queue: str
    died_at_ms: float
    body: bytes  # the message as Dramatiq encoded it (JSON)

    def message(self) -> dict[str, Any] | None:
        return _decode(self.body)


def take_dead_letters(queue: str, redis_ids: list[str]) -> list[TakenDeadLetter]:
    """Remove these dead letters of `queue` and return them (those still there) in one transaction."""
    if not redis_ids:
        return []
    rabbitmq = _rabbitmq()
    if rabbitmq is not None:
        wanted = set(redis_ids)
        return [
            TakenDeadLetter(redis_id=d.key, queue=queue, died_at_ms=d.died_at_ms or time.time() * 1000, body=d.body)
            for d in rabbitmq.take(xq_name(queue), lambda d: d.key in wanted) if d.key in wanted
        ]
    broker = _redis()
    xq, msgs = _key(broker, xq_name(queue)), _key(broker, f"{xq_name(queue)}.msgs")
    pipe = broker.client.pipeline(transaction=True)
    for rid in redis_ids:
        pipe.zscore(xq, rid)
    pipe.hmget(msgs, redis_ids)
    pipe.zrem(xq, *redis_ids)
    pipe.hdel(msgs, *redis_ids)
    replies = pipe.execute()
    scores, bodies = replies[: len(redis_ids)], replies[len(redis_ids)]
    return [
        TakenDeadLetter(redis_id=rid, queue=queue, died_at_ms=float(score), body=body)
        for rid, score, body in zip(redis_ids, scores, bodies, strict=True)
        if score is not None and body is not None
    ]


def restore_dead_letters(letters: list[TakenDeadLetter]) -> None:
    """Put dead letters taken by `take_dead_letters` back, with their original time of death."""
    if not letters:
        return
    rabbitmq = _rabbitmq()
    if rabbitmq is not None:  # at the tail of the dead-letter queue, keeping their time of death
        for letter in letters:
            rabbitmq.put(xq_name(letter.queue), letter.body, {DIED_AT_HEADER: int(letter.died_at_ms)})
        return
    broker = _redis()
    pipe = broker.client.pipeline(transaction=True)
    for letter in letters:
        pipe.zadd(_key(broker, xq_name(letter.queue)), {letter.redis_id: letter.died_at_ms})
        pipe.hset(_key(broker, f"{xq_name(letter.queue)}.msgs"), letter.redis_id, letter.body)
    pipe.execute()
