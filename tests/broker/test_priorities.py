"""Priorities on Redis: urgent messages wait ahead of ordinary ones, in a documented order."""

from __future__ import annotations

import dramatiq

from tests.broker.helpers import broker_worker, record_message
from tests.support.workers import wait_for
from workers import services
from workers.models import Job, JobStatus


def _message(tag: str, priority: int | None = None) -> dramatiq.Message[None]:
    message = record_message(tag)
    return message if priority is None else message.copy(options={"priority": priority})


def _waiting_tags(broker) -> list[str]:
    """The tags of the messages waiting in `default`, head first."""
    ids = broker.client.lrange("dramatiq:default", 0, -1)
    data = broker.client.hmget("dramatiq:default.msgs", ids)
    return [dramatiq.Message.decode(raw).args[0] for raw in data]


def test_urgent_messages_wait_ahead_most_urgent_first_and_in_order_among_equals(broker):
    # Given ordinary and urgent messages enqueued one at a time, interleaved
    for tag, priority in [("a", None), ("u5", 5), ("b", None), ("u0", 0), ("v5", 5), ("c", None), ("u-3", -3)]:
        broker.enqueue(_message(tag, priority))
    # Then urgent ones lead (lower number first, FIFO among equals), ordinary ones follow in FIFO order
    assert _waiting_tags(broker) == ["u-3", "u0", "u5", "v5", "a", "b", "c"]


def test_enqueue_many_places_by_priority_like_enqueue(broker):
    # Given a backlog, then a bulk enqueue mixing priorities, over several batches
    broker.enqueue_many([_message(f"o{i}") for i in range(5)], batch=2)
    bulk = [_message("x", 2), _message("y", 1), _message("p"), _message("z", 2), _message("w", 1)]
    broker.enqueue_many(bulk, batch=2)
    # Then the order is the one one-at-a-time enqueues give
    assert _waiting_tags(broker) == ["y", "w", "x", "z", "o0", "o1", "o2", "o3", "o4", "p"]


def test_requeued_urgent_message_goes_back_to_its_place(broker):
    # Given an urgent message fetched by a consumer (not yet processed) and a backlog behind it
    broker.declare_queue("default")
    broker.enqueue(_message("urgent", 0))
    consumer = broker.consume("default", prefetch=1, timeout=100)
    fetched = next(consumer)
    assert fetched is not None and fetched.args == ("urgent",)
    broker.enqueue_many([_message(f"o{i}") for i in range(3)])
    # When the consumer hands it back (as a worker does on shutdown)
    consumer.requeue([fetched])
    consumer.close()
    # Then it waits at the head again, not behind the backlog (Dramatiq's requeue appends)
    assert _waiting_tags(broker) == ["urgent", "o0", "o1", "o2"]


def test_high_priority_job_runs_before_a_backlog_of_waiting_jobs(start_workers, broker, tmp_path):
    # Given a backlog of ordinary jobs waiting in `default` with no worker running
    backlog = [
        services.job_enqueue(task="testing.record", params={"path": str(tmp_path / f"job-{i}")}) for i in range(200)
    ]
    # And a job of the same class enqueued after them with a priority more urgent than the class's
    urgent = services.job_enqueue(task="testing.record", params={"path": str(tmp_path / "urgent")}, priority=0)
    # When one single-threaded worker starts on them
    start_workers(broker_worker(threads=1))
    ids = [job.pk for job in backlog] + [urgent.pk]
    wait_for(lambda: Job.objects.filter(pk__in=ids, status=JobStatus.SUCCESSFUL).count() == len(ids),
             timeout=120, what="every job to succeed")
    # Then the urgent job started before every job of the backlog
    started = dict(Job.objects.filter(pk__in=ids).values_list("pk", "started_at"))
    assert started[urgent.pk] < min(started[job.pk] for job in backlog)


def test_job_at_its_class_priority_keeps_its_place_in_line(start_workers, broker, tmp_path):
    # Given a backlog, then a job enqueued with its class's own priority (not more urgent)
    first = services.job_enqueue(task="testing.record", params={"path": str(tmp_path / "first")})
    later = services.job_enqueue(task="testing.record", params={"path": str(tmp_path / "later")}, priority=10)
    # Then it waits behind the backlog as an ordinary job
    assert broker.client.lrange("dramatiq:default", 0, -1)[-1].decode().count("|") == 0
    start_workers(broker_worker(threads=1))
    wait_for(lambda: Job.objects.filter(pk__in=[first.pk, later.pk], status=JobStatus.SUCCESSFUL).count() == 2,
             timeout=60, what="both jobs to succeed")
    assert Job.objects.get(pk=first.pk).started_at < Job.objects.get(pk=later.pk).started_at
