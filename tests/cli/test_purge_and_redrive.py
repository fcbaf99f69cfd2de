"""`manage.py jobs purge` and `manage.py jobs redrive`, against the real Redis broker and real workers."""

from __future__ import annotations

import json
import uuid

import dramatiq
from django.utils import timezone

from project.broker import GreenroomRedisBroker
from tests.cli.helpers import dead_count, failed_job, put_dead_letter, refused, run, waiting_ids, waiting_messages
from tests.support.redis_server import free_port
from tests.support.runtime import wait_dead_letter, wait_status
from workers import catalogue, publishing, services
from workers.execution import run_job
from workers.models import Job, JobStatus
from workers.operations import PURGED_MESSAGE

# --- purge -----------------------------------------------------------------------------------------------


def _delayed_job(broker: dramatiq.Broker) -> Job:
    """A READY job whose message waits in the delay queue, like a retry with backoff."""
    job = Job.objects.create(task="diagnostics.sleep", queue="default", params={"seconds": 1}, attempts=1,
                             enqueued_at=timezone.now(), next_attempt_at=timezone.now())
    broker.enqueue(publishing.message_for(job), delay=60_000)
    return job


def test_purge_cancels_the_ready_jobs_first_deletes_waiting_and_delayed_messages_and_leaves_in_flight_ones(
    db, broker
):
    # Given a job whose message a worker has fetched (in flight), three waiting, one delayed retry,
    # and a job in another queue
    in_flight = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 1})
    consumer = broker.consume("default", prefetch=1, timeout=1000)
    fetched = next(consumer)
    assert fetched is not None and fetched.message_id == str(in_flight.pk)
    waiting = [services.job_enqueue(task="diagnostics.sleep", params={"seconds": 1}) for _ in range(3)]
    delayed = _delayed_job(broker)
    other = services.job_enqueue(task="diagnostics.noop")
    # When the operator purges the default queue and confirms
    out, _ = run("purge", "--queue", "default", stdin="y\n")
    # Then it asked with the counts, and reported what it did
    assert "Purge queue default: cancel 5 READY job(s) and delete 3 waiting and 1 delayed message(s)? [y/N]" in out
    assert "5 job(s) cancelled, 3 waiting and 1 delayed message(s) deleted" in out
    assert "1 message(s) held by workers were left alone" in out
    # And every READY job of the queue is CANCELLED in the ledger, with the reason
    for job in [in_flight, *waiting, delayed]:
        row = Job.objects.get(pk=job.pk)
        assert row.status == JobStatus.CANCELLED
        assert row.progress_message == PURGED_MESSAGE
        assert row.finished_at is not None
    # And Redis holds no waiting or delayed message of the queue, only the one in flight
    client = broker.client
    assert client.llen("dramatiq:default") == 0 and client.llen("dramatiq:default.DQ") == 0
    assert client.hlen("dramatiq:default.DQ.msgs") == 0
    assert client.hlen("dramatiq:default.msgs") == 1
    # And the worker holding the in-flight message drops it: the claim refuses a cancelled job
    assert run_job(catalogue.get("diagnostics.sleep"), str(in_flight.pk)) is None
    assert Job.objects.get(pk=in_flight.pk).status == JobStatus.CANCELLED
    consumer.close()
    # And neither the reconciler nor the relay publishes anything again
    assert publishing.republish_lost(older_than=0) == 0
    assert publishing.relay_unpublished(grace=0) == 0
    assert client.llen("dramatiq:default") == 0
    # And the other queue is untouched
    assert Job.objects.get(pk=other.pk).status == JobStatus.READY
    assert waiting_ids(client, "interactive") == [str(other.pk)]


def test_purge_with_yes_does_not_ask(db, broker):
    job = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 1})

    out, _ = run("purge", "--queue", "default", "--yes")

    assert "[y/N]" not in out
    assert "1 job(s) cancelled, 1 waiting and 0 delayed message(s) deleted" in out
    assert Job.objects.get(pk=job.pk).status == JobStatus.CANCELLED


def test_purge_changes_nothing_when_refused_unanswered_or_the_queue_is_unknown(db, broker):
    job = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 1})

    assert "aborted; nothing was changed" in refused("purge", "--queue", "default", stdin="no\n")
    assert "not interactive" in refused("purge", "--queue", "default", stdin="")
    assert "unknown queue 'nightly'; the queues are interactive, default, batch" in refused(
        "purge", "--queue", "nightly", "--yes")

    assert Job.objects.get(pk=job.pk).status == JobStatus.READY
    assert waiting_ids(broker.client) == [str(job.pk)]


def test_purge_with_the_broker_unreachable_cancels_nothing(db, broker):
    job = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 1})
    previous = dramatiq.get_broker()
    dead = GreenroomRedisBroker(url=f"redis://127.0.0.1:{free_port()}/0", middleware=[])
    dramatiq.set_broker(dead)
    try:
        message = refused("purge", "--queue", "default", "--yes")
    finally:
        dramatiq.set_broker(previous)
        dead.close()

    assert "the broker is unreachable" in message and "nothing was purged" in message
    assert Job.objects.get(pk=job.pk).status == JobStatus.READY


# --- redrive ---------------------------------------------------------------------------------------------


def test_redrive_retries_a_job_that_exhausted_its_retries_on_a_real_worker(start_workers, broker):
    # Given a job that failed transiently on every one of its 1 + 3 runs on a real worker, and whose
    # message landed in the dead-letter queue
    pool = start_workers()
    job = services.job_enqueue(task="diagnostics.fail", params={"kind": "transient", "message": "try later"})
    failed = wait_status(job, JobStatus.FAILED, timeout=90)
    assert failed.attempts == 4
    wait_dead_letter(broker.client, job, timeout=30)
    pool.stop()  # nobody takes the new job: the test sees it waiting
    # When the operator redrives the dead-letter queue
    out, _ = run("redrive", "--yes")
    # Then a new job is READY and published, the original is dismissed, and the DLQ is empty
    new = Job.objects.get(retry_of=job)
    assert f"retried {job.pk} (diagnostics.fail) as {new.pk}" in out
    assert "1 retried, 0 re-enqueued raw (not in the catalogue), 0 stale removed" in out
    assert new.status == JobStatus.READY and new.enqueued_at is not None
    assert new.params == {"kind": "transient", "message": "try later"}
    assert waiting_ids(broker.client) == [str(new.pk)]
    assert Job.objects.get(pk=job.pk).dismissed_at is not None
    assert dead_count(broker.client) == 0


def test_redrive_removes_stale_dead_letters_and_re_enqueues_foreign_ones_raw(db, broker):
    # Given dead letters of a job that since succeeded, of a failure already dismissed, of an id the
    # ledger does not know, and of an actor outside the catalogue
    client = broker.client
    succeeded = Job.objects.create(task="diagnostics.noop", queue="default", status=JobStatus.SUCCESSFUL)
    dismissed = failed_job(dismissed_at=timezone.now())
    for message_id in (str(succeeded.pk), str(dismissed.pk), str(uuid.uuid4())):
        put_dead_letter(client, message_id=message_id, actor="diagnostics.fail")
    foreign_id = str(uuid.uuid4())
    put_dead_letter(client, message_id=foreign_id, actor="legacy.export", args=[7], kwargs={"full": True})
    # When the operator redrives the default queue, answering yes
    out, _ = run("redrive", "--queue", "default", stdin="y\n")
    # Then it asked with the count and removed all four
    assert "Redrive 4 dead letter(s) (4 in default)? [y/N]" in out
    assert "0 retried, 1 re-enqueued raw (not in the catalogue), 3 stale removed" in out
    assert dead_count(client) == 0
    # And no job was created; the foreign message waits in its queue, with its retries reset
    assert Job.objects.count() == 2
    [message] = waiting_messages(client)
    assert message["message_id"] == foreign_id and message["actor_name"] == "legacy.export"
    assert message["args"] == [7] and message["kwargs"] == {"full": True}
    assert "retries" not in message["options"] and "traceback" not in message["options"]


def test_redrive_changes_nothing_when_refused_and_says_when_there_is_nothing_to_do(db, broker):
    assert run("redrive")[0].strip() == "the dead-letter queue is empty; nothing to redrive"
    job = failed_job()
    put_dead_letter(broker.client, message_id=str(job.pk), actor="diagnostics.fail")

    assert "aborted" in refused("redrive", stdin="n\n")
    assert "not interactive" in refused("redrive", stdin="")
    assert "unknown queue 'later'" in refused("redrive", "--queue", "later")

    assert dead_count(broker.client) == 2
    assert not Job.objects.filter(retry_of=job).exists()
    assert json.loads(run("show", str(job.pk), "--json")[0])["dismissed_at"] is None
