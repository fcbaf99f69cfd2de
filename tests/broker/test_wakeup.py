"""The doorbell: idle consumers start work when it arrives, not when their poll comes round.

The workers here poll every 10 s (`dramatiq_worker_timeout`): Dramatiq's own consumer, idle that
long, backs off to sleeps of several seconds, so a job started within a couple of seconds shows the
wake-up path at work. These are behaviour checks with wide margins; bench/latency.py measures.
"""

from __future__ import annotations

import threading
import time

from tests.broker.helpers import broker_worker, record_message, runs, wait_runs, warm_up
from tests.support.workers import wait_for
from workers import services
from workers.models import Job, JobStatus

SLOW_POLL_MS = 10_000
# Seconds within which a woken worker starts its message: far above the doorbell's milliseconds,
# below what Dramatiq's backed-off polling gives (checked by running these against it).
PROMPTLY = 1.0


def test_enqueue_rings_the_doorbell_with_at_most_one_token(broker):
    # When messages are enqueued one at a time and in bulk, with no consumer listening
    for i in range(3):
        broker.enqueue(record_message(f"one-{i}"))
    broker.enqueue_many([record_message(f"bulk-{i}") for i in range(2500)], batch=1000)
    # Then each queue's doorbell holds one token, and every message waits in order
    assert broker.client.lrange("dramatiq:default.bell", 0, -1) == [b"1"]
    assert broker.client.llen("dramatiq:default") == 2503


def _evalsha_calls(broker) -> int:
    return int(broker.client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def _next_sent_later(broker, consumer, tag: str) -> object:
    """The consumer's next message, sent 0.2 s after it starts asking (idle, it listens by then)."""
    later = threading.Timer(0.2, lambda: broker.enqueue(record_message(tag)))
    later.start()
    clock = time.monotonic()
    message = None
    while message is None and time.monotonic() - clock < PROMPTLY:
        message = next(consumer)
    later.join()
    return message


def test_a_consumer_that_fetched_the_last_message_waits_for_the_doorbell_instead_of_fetching_again(broker):
    # Given a consumer (poll timeout 10 s) that was woken for a lone message and fetched it: fewer
    # than it asked for
    consumer = broker.consume("default", prefetch=8, timeout=SLOW_POLL_MS)
    try:
        first = _next_sent_later(broker, consumer, "first")
        assert first is not None and first.args == ("first",)
        # When it asks for the next one, and a message is sent 0.2 s later
        calls = _evalsha_calls(broker)
        second = _next_sent_later(broker, consumer, "second")
        # Then it gets that message promptly, with one fetch: the doorbell, not a fetch that comes
        # back empty, tells it to fetch (each Lua call to Redis here is the enqueue or a fetch)
        assert second is not None and second.args == ("second",)
        assert _evalsha_calls(broker) - calls == 2, "the enqueue and one fetch; no fetch that came back empty"
        consumer.ack(first)
        consumer.ack(second)
    finally:
        consumer.close()


def test_delayed_message_rings_its_delay_queue(broker):
    broker.enqueue(record_message("later"), delay=60_000)
    assert broker.client.llen("dramatiq:default.DQ.bell") == 1
    assert broker.client.llen("dramatiq:default.bell") == 0


def test_idle_worker_starts_messages_promptly_although_it_polls_every_10_s(start_workers, broker):
    # Given a worker polling every 10 s (Dramatiq's own consumer, idle for 3 s, sleeps for seconds)
    start_workers(broker_worker(poll_ms=SLOW_POLL_MS))
    warm_up(broker)
    for attempt in range(4):
        time.sleep(3)
        # When a message is enqueued to the idle worker
        sent = time.time()
        broker.enqueue(record_message(f"wake-{attempt}"))
        # Then it starts promptly, every time
        started = wait_runs(broker, attempt + 2, timeout=30)[f"wake-{attempt}"]
        assert started[0] - sent < PROMPTLY, (attempt, started[0] - sent)


def test_idle_worker_starts_an_interactive_job_promptly(start_workers, broker):
    # Given an idle worker polling every 10 s
    start_workers(broker_worker(poll_ms=SLOW_POLL_MS))
    warm_up(broker)
    time.sleep(3)
    # When an interactive job is enqueued through the service
    sent = time.monotonic()
    job = services.job_enqueue(task="diagnostics.noop")
    # Then it succeeds promptly
    wait_for(lambda: Job.objects.filter(pk=job.pk, status=JobStatus.SUCCESSFUL).exists(), timeout=30, interval=0.02,
             what="the interactive job to succeed")
    assert time.monotonic() - sent < PROMPTLY


def test_delayed_messages_start_promptly_at_their_due_time_although_the_worker_polls_every_10_s(start_workers, broker):
    # Given a worker polling every 10 s, idle for 3 s
    start_workers(broker_worker(poll_ms=SLOW_POLL_MS))
    warm_up(broker)
    time.sleep(3)
    # When messages are sent with delays of 3 s and 6 s
    sent = time.time()
    broker.enqueue(record_message("d3000"), delay=3000)
    broker.enqueue(record_message("d6000"), delay=6000)
    # Then each starts after its due time, and promptly after it
    started = wait_runs(broker, 3, timeout=30)
    for tag, delay in [("d3000", 3), ("d6000", 6)]:
        late = started[tag][0] - (sent + delay)
        assert -0.01 < late < PROMPTLY, (tag, late)


def test_retried_job_runs_again_promptly_after_its_backoff(start_workers, broker, tmp_path):
    # Given a worker polling every 10 s, idle for 3 s, and a job that fails once (backoff 0.2-0.4 s)
    start_workers(broker_worker(poll_ms=SLOW_POLL_MS))
    warm_up(broker)
    time.sleep(3)
    sent = time.monotonic()
    job = services.job_enqueue(task="testing.record", params={"path": str(tmp_path / "runs"), "fail_times": 1})
    # Then its retry runs and it succeeds soon after the backoff
    wait_for(lambda: Job.objects.filter(pk=job.pk, status=JobStatus.SUCCESSFUL).exists(), timeout=60, interval=0.02,
             what="the retried job to succeed")
    assert Job.objects.get(pk=job.pk).attempts == 2
    assert time.monotonic() - sent < 0.4 + PROMPTLY


def test_no_message_is_lost_or_run_twice_across_several_consumers(start_workers, broker):
    # Given three worker processes that poll every 10 s (so only the doorbell wakes them quickly)
    start_workers(*(broker_worker(f"worker-{i}", threads=3, poll_ms=SLOW_POLL_MS) for i in range(3)))
    warm_up(broker)
    # When 3,000 messages arrive one at a time, in bulk, and delayed, while the workers drain them
    tags = [f"m{i}" for i in range(3000)]
    for tag in tags[:500]:
        broker.enqueue(record_message(tag))
    broker.enqueue_many([record_message(tag) for tag in tags[500:2800]], batch=700)
    for i, tag in enumerate(tags[2800:]):
        broker.enqueue(record_message(tag), delay=i % 50)
    # Then every message runs exactly once
    seen = wait_runs(broker, len(tags) + 1, timeout=120)
    time.sleep(0.5)  # a duplicate would show up now
    seen = runs(broker)
    assert sorted(seen) == sorted([*tags, "warm-up"])
    assert all(len(started) == 1 for started in seen.values()), [t for t, s in seen.items() if len(s) > 1]
    # And no message is left in the queue, prefetched or unacked for long
    wait_for(lambda: broker.client.hlen("dramatiq:default.msgs") == 0, timeout=30, what="every message acked")
