"""Held acks: with group commit, a worker thread does not wait for its job's finish write; the
message's ack waits for it instead (project/held_acks.py), on the real Redis broker."""

from __future__ import annotations

import threading
import time
from typing import Any

import dramatiq
import pytest
from dramatiq.middleware import CurrentMessage

from project import held_acks
from tests.broker.helpers import record_message
from tests.support.runtime import hold_finish_writes, row
from tests.support.workers import wait_for, worker_program
from workers import catalogue, ledger_writer, services
from workers.execution import run_job
from workers.models import Job, JobStatus


def _fetched(broker: Any) -> tuple[Any, dramatiq.MessageProxy]:
    broker.declare_queue("default")
    broker.enqueue(record_message("held"))
    consumer = broker.consume("default", prefetch=1, timeout=100)
    message = next(consumer)
    assert message is not None
    return consumer, message


def _stored(broker: Any) -> int:
    """Messages of `default` Redis still keeps (waiting or delivered and not yet acked)."""
    return broker.client.hlen("dramatiq:default.msgs")


def test_a_held_ack_reaches_redis_only_once_its_write_settles(broker):
    # Given a delivered message whose ack is held on a pending write
    consumer, message = _fetched(broker)
    pending = held_acks.Pending()
    held_acks.hold(message, pending)
    # When the worker acks it
    consumer.ack(message)
    # Then Redis still holds it (a crash now would deliver it again) until the write settles
    assert _stored(broker) == 1
    pending.settle()
    assert _stored(broker) == 0
    consumer.close()


def test_an_ack_after_the_write_settled_goes_through_at_once(broker):
    consumer, message = _fetched(broker)
    pending = held_acks.Pending()
    held_acks.hold(message, pending)
    pending.settle()
    consumer.ack(message)
    assert _stored(broker) == 0
    consumer.close()


def test_a_nack_drops_the_hold(broker):
    # Given a held message that then fails
    consumer, message = _fetched(broker)
    held_acks.hold(message, held_acks.Pending())
    consumer.nack(message)
    # Then it is dead-lettered as usual, and nothing stays registered for it
    assert broker.client.zcard("dramatiq:default.XQ") == 1
    assert held_acks.take(message) is None
    consumer.close()


def _script_calls(broker: Any) -> int:
    stats = broker.client.info("commandstats")
    return sum(int(stats.get(name, {}).get("calls", 0)) for name in ("cmdstat_evalsha", "cmdstat_eval"))


def test_acks_settled_together_reach_redis_in_one_call(broker):
    # Given three delivered messages whose acks are held on one pending write each
    broker.declare_queue("default")
    for n in range(3):
        broker.enqueue(record_message(f"held {n}"))
    consumer = broker.consume("default", prefetch=3, timeout=100)
    messages = [next(consumer) for _ in range(3)]
    pendings = [held_acks.Pending() for _ in messages]
    for message, pending in zip(messages, pendings, strict=True):
        held_acks.hold(message, pending)
        consumer.ack(message)
    assert _stored(broker) == 3
    # When their writes settle together (as the ledger writer settles a round's finish writes)
    before = _script_calls(broker)
    with held_acks.together():
        for pending in pendings:
            pending.settle()
        assert _stored(broker) == 3  # nothing sent before the end of the block
    # Then all three are acked, in one call to Redis, and the consumer has room for more
    assert _stored(broker) == 0
    assert _script_calls(broker) - before == 1
    assert consumer.outstanding_message_count == 0
    consumer.close()


def test_callbacks_run_once_in_order_and_a_failing_one_does_not_stop_the_others():
    pending, seen = held_acks.Pending(), []
    pending.then(lambda: seen.append(1))
    pending.then(lambda: 1 / 0)
    pending.then(lambda: seen.append(3))
    pending.settle()
    pending.then(lambda: seen.append(4))  # after settling: at once
    assert seen == [1, 3, 4]


@pytest.mark.django_db(transaction=True)
def test_run_job_returns_before_the_finish_is_durable_and_the_ack_waits_for_it(broker, monkeypatch):
    # Given a job and a ledger writer whose finish writes are held up
    release = hold_finish_writes(monkeypatch)
    job = Job.objects.create(task="diagnostics.noop", queue="interactive")
    message = dramatiq.MessageProxy(dramatiq.Message(queue_name="interactive", actor_name=job.task, args=(),
                                                     kwargs={"job_id": str(job.pk)}, options={},
                                                     message_id=str(job.pk)))
    current = CurrentMessage()
    current.before_process_message(broker, message)
    try:
        # When the worker thread runs it
        run_job(catalogue.get("diagnostics.noop"), str(job.pk))
    finally:
        current.after_process_message(broker, message)
    # Then it returned with the row still RUNNING, and the message's ack is held
    assert row(job).status == JobStatus.RUNNING
    pending = held_acks.take(message)
    assert pending is not None
    acked = threading.Event()
    pending.then(acked.set)
    assert not acked.is_set()
    # And once the write is durable the row is SUCCESSFUL and the ack goes ahead
    release.set()
    wait_for(acked.is_set, timeout=30, what="the held ack")
    assert row(job).status == JobStatus.SUCCESSFUL
    ledger_writer.shutdown()


def _unacked(broker: Any, queue_name: str) -> int:
    """Messages of `queue_name` taken by a consumer and not yet acked (Dramatiq's per-consumer sets)."""
    keys = broker.client.scan_iter(f"{broker.namespace}:__acks__.*.{queue_name}")
    return sum(int(broker.client.scard(key)) for key in keys)


@pytest.mark.parametrize(("queues", "env", "taken"), [
    (["default"], {}, 4),
    (["default"], {"dramatiq_queue_prefetch": 2}, 2),
    (["batch", "default"], {}, 2),
], ids=["default", "set", "batch-worker"])
def test_a_worker_that_holds_acks_takes_four_messages_per_thread_unless_prefetch_is_set_or_it_runs_batch(
        start_workers, broker, tmp_path, queues, env, taken):
    # Given six slow jobs waiting
    jobs = [services.job_enqueue(task="testing.record", params={"path": str(tmp_path / f"{n}.txt"), "seconds": 3})
            for n in range(6)]
    # When a worker with one thread starts on their queue (and, for one case, on `batch` too)
    start_workers(worker_program("one-thread", queues=queues, threads=1, **env))
    wait_for(lambda: Job.objects.filter(status=JobStatus.RUNNING).exists(), timeout=30, what="the first job to start")
    # Then, while its thread runs the first job, its consumer holds `taken` messages: twice Dramatiq's
    # default of 2 per thread (a done job's ack may wait for the ledger writer), or as many as set, or
    # Dramatiq's default on a worker that also runs long `batch` jobs
    wait_for(lambda: _unacked(broker, jobs[0].queue) == taken, timeout=5, what=f"{taken} messages taken")
    time.sleep(0.5)
    assert _unacked(broker, jobs[0].queue) == taken
    assert Job.objects.filter(status=JobStatus.RUNNING).count() == 1
