"""Priorities on Redis: urgent messages wait ahead of ordinary ones, in a documented order."""

from __future__ import annotations

from datetime import timedelta

import dramatiq
import pytest
from django.utils import timezone

from tests.broker.helpers import broker_worker, record_message
from tests.support.workers import wait_for
from workers import publishing, services
from workers.models import Job, JobStatus


def _message(tag: str, priority: int | None = None) -> dramatiq.Message[None]:
    message = record_message(tag)
    return message if priority is None else message.copy(options={"priority": priority})


def _waiting_tags(broker) -> list[str]:
    """The tags of the messages waiting in `default`, head first."""
    ids = broker.client.lrange("dramatiq:default", 0, -1)
    data = broker.client.hmget("dramatiq:default.msgs", ids)
    return [dramatiq.Message.decode(raw).args[0] for raw in data]


def _waiting_jobs(broker) -> list[str]:
    """The job ids of the messages waiting in `default`, head first."""
    ids = broker.client.lrange("dramatiq:default", 0, -1)
    data = broker.client.hmget("dramatiq:default.msgs", ids)
    return [dramatiq.Message.decode(raw).kwargs["job_id"] for raw in data]


def _record(tmp_path, name: str, **options):
    return services.job_enqueue(task="testing.record", params={"path": str(tmp_path / name)}, **options)


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
    assert later.priority is None  # stored as an ordinary job of its class
    # Then it waits behind the backlog as an ordinary job
    assert broker.client.lrange("dramatiq:default", 0, -1)[-1].decode().count("|") == 0
    start_workers(broker_worker(threads=1))
    wait_for(lambda: Job.objects.filter(pk__in=[first.pk, later.pk], status=JobStatus.SUCCESSFUL).count() == 2,
             timeout=60, what="both jobs to succeed")
    assert Job.objects.get(pk=first.pk).started_at < Job.objects.get(pk=later.pk).started_at


@pytest.mark.django_db(transaction=True)
def test_urgent_job_requeued_after_its_worker_died_goes_back_ahead_of_the_backlog(broker, tmp_path):
    # Given an urgent job fetched by a worker that then died without acking it, behind which a
    # backlog of ordinary jobs waits
    urgent = _record(tmp_path, "urgent", priority=0)
    assert Job.objects.get(pk=urgent.pk).priority == 0
    consumer = broker.consume("default", prefetch=1, timeout=100)
    fetched = next(consumer)
    assert fetched is not None and fetched.message_id == str(urgent.pk)
    backlog = [_record(tmp_path, f"job-{i}") for i in range(3)]
    long_ago = timezone.now() - timedelta(minutes=5)
    Job.objects.filter(pk=urgent.pk).update(status=JobStatus.RUNNING, started_at=long_ago, heartbeat_at=long_ago)
    # When the reconciler requeues it and the relay publishes its row again
    assert publishing.requeue_stale(stale_after=60) == 1
    assert publishing.relay_unpublished(grace=0) == 1
    consumer.close()
    # Then its new message waits at the head again, not behind the backlog
    assert _waiting_jobs(broker) == [str(urgent.pk), *(str(job.pk) for job in backlog)]


@pytest.mark.django_db(transaction=True)
def test_rerun_of_a_failed_urgent_job_is_urgent_too(broker, tmp_path):
    # Given a failed urgent job and a backlog of ordinary jobs waiting
    failed = _record(tmp_path, "urgent", priority=-2)
    broker.client.flushdb()  # its first message is gone: the job ran and failed
    Job.objects.filter(pk=failed.pk).update(status=JobStatus.FAILED, finished_at=timezone.now())
    backlog = [_record(tmp_path, f"job-{i}") for i in range(2)]
    # When an operator retries it
    rerun = services.job_retry(job=Job.objects.get(pk=failed.pk))
    # Then the rerun keeps its priority and waits ahead of the backlog
    assert Job.objects.get(pk=rerun.pk).priority == -2
    assert _waiting_jobs(broker) == [str(rerun.pk), *(str(job.pk) for job in backlog)]


@pytest.mark.django_db(transaction=True)
def test_bulk_enqueued_urgent_jobs_store_their_priority_and_wait_ahead(broker, tmp_path):
    # Given a backlog of ordinary jobs
    backlog = [_record(tmp_path, f"job-{i}") for i in range(2)]
    # When urgent jobs are enqueued in bulk
    outcome = services.job_enqueue_many(
        task="testing.record", params_list=[{"path": str(tmp_path / f"u{i}")} for i in range(3)], priority=1)
    # Then their rows hold the priority and their messages lead the queue, in enqueue order
    urgent = [str(job.pk) for job in outcome.jobs]
    assert set(Job.objects.filter(pk__in=urgent).values_list("priority", flat=True)) == {1}
    assert _waiting_jobs(broker) == [*urgent, *(str(job.pk) for job in backlog)]
