"""RabbitMQ as the broker, with real worker processes: retries through the delay queue, dead letters,
the queue numbers operators read, purge, redrive and discard, priorities, the outbox."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import dramatiq
import pika
import pytest
from django.core.management import call_command

from tests.rabbitmq.conftest import rabbitmq_only
from tests.support.runtime import row, wait_status
from tests.support.workers import wait_for, worker_program
from workers import broker_ops, operations, publishing, services
from workers.models import Job, JobStatus

pytestmark = rabbitmq_only


def _dead_ids(queue: str = "default") -> set[str]:
    return {letter.job_id for letter in broker_ops.dead_letters(queue)}


def _stats(queue: str = "default") -> broker_ops.QueueStats:
    [stats] = broker_ops.queue_stats([queue])
    return stats


def test_a_transient_failure_is_retried_through_the_delay_queue_then_dead_lettered(start_workers, rabbitmq):
    # Given a worker, and a job that always fails transiently (3 retries, backoff 0.2-2 s)
    start_workers()
    job = services.job_enqueue(task="diagnostics.fail", params={"kind": "transient"})
    # Then it runs 4 times, waiting in default.DQ between runs, and ends FAILED
    failed = wait_status(job, JobStatus.FAILED, timeout=60)
    assert failed.attempts == 4
    assert failed.error_class.endswith("TransientError")
    # And its message is in default.XQ as its last run got it (RabbitMQ dead-letters the delivered
    # message: 3 retries before that run; Redis stores the count after it)
    letter = wait_for(lambda: next((x for x in broker_ops.dead_letters("default") if x.job_id == str(job.pk)), None),
                      timeout=10, what="the dead letter")
    assert letter.actor == "diagnostics.fail" and letter.retries == 3
    assert _stats().dead == 1


def test_a_permanent_failure_is_dead_lettered_at_once(start_workers, rabbitmq):
    start_workers()
    job = services.job_enqueue(task="diagnostics.fail", params={"kind": "permanent"})
    failed = wait_status(job, JobStatus.FAILED, timeout=30)
    assert failed.attempts == 1
    wait_for(lambda: str(job.pk) in _dead_ids(), timeout=10, what="the dead letter")


def test_a_transient_error_then_success_succeeds_on_the_second_attempt(start_workers, rabbitmq, tmp_path: Path):
    start_workers()
    job = services.job_enqueue(task="testing.record", params={"path": str(tmp_path / "r.txt"), "fail_times": 1})
    done = wait_status(job, JobStatus.SUCCESSFUL, timeout=30)
    assert done.attempts == 2
    assert str(job.pk) not in _dead_ids()


def test_queue_numbers_count_waiting_delayed_and_dead_messages_and_purge_empties_the_queue(transactional_db,
                                                                                          rabbitmq):
    # Given, with no worker running, three published jobs, a delayed message and a dead letter
    jobs = [services.job_enqueue(task="diagnostics.fail", params={"kind": "permanent"}) for _ in range(3)]
    delayed = services.job_enqueue(task="diagnostics.fail", params={"kind": "permanent"})
    rabbitmq.enqueue(publishing.message_for(row(delayed)), delay=600_000)
    rabbitmq.put("default.XQ", publishing.message_for(row(jobs[0])).encode(), {})
    # Then the numbers count them (no worker holds any: all are ready in RabbitMQ)
    stats = _stats()
    assert (stats.waiting, stats.delayed, stats.dead, stats.in_flight) == (4, 1, 1, 0)
    assert stats.oldest_age is None  # not readable over AMQP without taking the message
    # And `jobs stats` shows them
    out = StringIO()
    call_command("jobs", "stats", "--json", stdout=out)
    default = next(q for q in json.loads(out.getvalue())["queues"] if q["queue"] == "default")
    assert (default["waiting"], default["delayed"], default["dead"]) == (4, 1, 1)

    # When the queue is purged
    outcome = operations.queue_purge(queue="default")
    # Then its waiting and delayed messages are gone and its READY jobs cancelled; the dead letter stays
    assert (outcome.cancelled, outcome.messages.waiting, outcome.messages.delayed) == (4, 4, 1)
    stats = _stats()
    assert (stats.waiting, stats.delayed, stats.dead) == (0, 0, 1)
    assert Job.objects.filter(status=JobStatus.CANCELLED).count() == 4


def test_redrive_retries_dead_lettered_failures_as_new_jobs_and_discard_removes_the_dead_letter(start_workers,
                                                                                              rabbitmq):
    # Given two failures in the dead-letter queue
    start_workers()
    first, second = (services.job_enqueue(task="diagnostics.fail", params={"kind": "permanent"}) for _ in range(2))
    for job in (first, second):
        wait_status(job, JobStatus.FAILED, timeout=30)
    wait_for(lambda: {str(first.pk), str(second.pk)} <= _dead_ids(), timeout=10, what="both dead letters")

    # When an operator discards the first
    services.job_discard(job=row(first))
    # Then its dead letter is gone, the other one stays
    assert _dead_ids() == {str(second.pk)}

    # When `manage.py jobs redrive` runs
    out = StringIO()
    call_command("jobs", "redrive", "--yes", stdout=out)
    # Then the second is retried as a new job (which fails again), and its own dead letter is gone
    assert "1 retried" in out.getvalue()
    retry = Job.objects.get(retry_of=second.pk)
    wait_status(retry, JobStatus.FAILED, timeout=30)
    wait_for(lambda: _dead_ids() == {str(retry.pk)}, timeout=10, what="only the retry's dead letter")
    assert row(second).dismissed_at is not None


def test_an_urgent_job_overtakes_the_ordinary_jobs_waiting_in_its_queue(start_workers, rabbitmq, tmp_path: Path):
    # Given ordinary jobs waiting in `default`, and then an urgent one (priority 0 < the class's 10)
    ordinary = [services.job_enqueue(task="testing.record", params={"path": str(tmp_path / f"{i}.txt")})
                for i in range(6)]
    urgent = services.job_enqueue(task="testing.record", params={"path": str(tmp_path / "urgent.txt")}, priority=0)
    # When a one-thread worker starts on the queue
    start_workers(worker_program("one", queues=["default"], threads=1))
    # Then the urgent job starts first
    done = [wait_status(job, JobStatus.SUCCESSFUL, timeout=60) for job in [urgent, *ordinary]]
    assert done[0].started_at < min(job.started_at for job in done[1:])


def test_a_job_published_while_rabbitmq_is_unreachable_is_published_by_the_relay(start_workers, rabbitmq,
                                                                                monkeypatch):
    # Given a worker (its relay publishes unpublished rows) and a test process that cannot reach RabbitMQ
    start_workers()
    reachable = rabbitmq.parameters
    monkeypatch.setattr(rabbitmq, "parameters", pika.URLParameters("amqp://guest:guest@127.0.0.1:1/?socket_timeout=1"))
    del rabbitmq.connection
    # When a job is enqueued, its publish fails and the row stays unpublished
    job = services.job_enqueue(task="diagnostics.noop")
    assert row(job).enqueued_at is None
    monkeypatch.setattr(rabbitmq, "parameters", reachable)
    # Then a worker's relay publishes it, and it runs
    assert wait_status(job, JobStatus.SUCCESSFUL, timeout=30).enqueued_at is not None


def test_a_ready_job_whose_message_was_lost_is_published_again(transactional_db, rabbitmq):
    # Given two published jobs with no worker, one in `default`, one in `interactive`
    lost = services.job_enqueue(task="diagnostics.fail", params={"kind": "permanent"})
    waiting = services.job_enqueue(task="diagnostics.noop")
    # When the `default` queue loses its message (as a broker that lost its data would)
    rabbitmq.purge("default")
    # Then the reconciler unpublishes the lost one only, for the relay to send again
    assert publishing.republish_lost(older_than=-60) == 1
    assert row(lost).enqueued_at is None and row(waiting).enqueued_at is not None


def test_readyz_checks_rabbitmq(client, rabbitmq, monkeypatch):
    assert client.get("/readyz").json()["checks"]["broker"] == "ok"
    monkeypatch.setattr(rabbitmq, "parameters", pika.URLParameters("amqp://guest:guest@127.0.0.1:1/?socket_timeout=1"))
    del rabbitmq.connection
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["broker"] != "ok"


def test_the_broker_is_rabbitmq_in_this_run():
    assert type(dramatiq.get_broker()).__name__ == "GreenroomRabbitmqBroker"


@pytest.mark.chaos
def test_a_hard_time_limit_dead_letters_the_job_and_replaces_the_worker_process(start_workers, rabbitmq,
                                                                                tmp_path: Path):
    # Given a job blocked in one C call past its 2 s hard limit
    start_workers(worker_program("hard", queues=["default"], threads=2))
    job = services.job_enqueue(task="testing.hard_limit", params={"path": str(tmp_path / "h.txt"), "seconds": 60})
    # Then it ends FAILED, and its message is in default.XQ (nacked before the process exited)
    failed = wait_status(job, JobStatus.FAILED, timeout=40)
    assert failed.error_class.endswith("HardTimeLimitExceeded")
    wait_for(lambda: str(job.pk) in _dead_ids(), timeout=15, what="the dead letter")
    # And the replaced process takes new work
    after = services.job_enqueue(task="testing.record", params={"path": str(tmp_path / "after.txt")})
    wait_status(after, JobStatus.SUCCESSFUL, timeout=40)


def test_an_unreachable_rabbitmq_is_reported_as_a_connection_error_and_the_dashboard_still_answers(
        admin_client, rabbitmq, monkeypatch):
    monkeypatch.setattr(rabbitmq, "parameters", pika.URLParameters("amqp://guest:guest@127.0.0.1:1/?socket_timeout=1"))
    del rabbitmq.connection
    with pytest.raises(ConnectionError):
        broker_ops.queue_stats(["default"])
    assert admin_client.get("/dashboard/").status_code == 200
