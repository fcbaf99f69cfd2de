"""Retries: transient errors retry with growing backoff, permanent ones fail at once, failures dead-letter."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

from django.db import connection
from dramatiq.broker import MessageProxy

from tests.support.runtime import dead_letters, delayed, lines, redis_only, say, wait_dead_letter, wait_status
from workers import catalogue, publishing, services
from workers.errors import TransientError
from workers.middleware import LedgerRetries
from workers.models import Job, JobStatus


def _watch_retry_delays(job: Job, *, timeout: float) -> dict[int, float]:
    """Poll the row until it finishes; attempt number → its retry delay in seconds (from the row)."""
    seen: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = Job.objects.get(pk=job.pk)
        if current.status == JobStatus.READY and current.next_attempt_at and current.started_at:
            started: datetime = current.started_at
            seen[current.attempts] = (current.next_attempt_at - started).total_seconds()
        if current.is_finished:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"job {job.pk} did not finish within {timeout} s")


@redis_only
def test_transient_failure_is_retried_with_growing_backoff_then_dead_lettered(start_workers, broker):
    # Given a worker, and a job declared with max_retries=3 and backoff from 0.2 s
    start_workers()
    spec = catalogue.get("diagnostics.fail")
    assert spec is not None and spec.max_retries == 3
    # When a job that always fails transiently is enqueued
    job = services.job_enqueue(task="diagnostics.fail", params={"kind": "transient", "message": "try later"})
    delays = _watch_retry_delays(job, timeout=30)
    # Then it ran max_retries + 1 times and failed with its error recorded
    done = Job.objects.get(pk=job.pk)
    assert done.status == JobStatus.FAILED
    assert done.attempts == spec.max_retries + 1
    assert done.error_class == "workers.errors.TransientError"
    assert done.error_message == "try later"
    assert "TransientError: try later" in done.error_traceback
    assert "diagnostics.py" in done.error_traceback
    assert done.finished_at is not None and done.next_attempt_at is None
    # And each retry waited longer than the one before (exponential backoff with jitter: the n-th
    # delay lies in [1, 2] x min_backoff x 2^n, so the ranges do not overlap)
    say(f"retry delays (s) by attempt: {delays}")
    assert sorted(delays) == [1, 2, 3], delays
    for attempt, delay in delays.items():
        low = spec.min_backoff * 2 ** (attempt - 1)
        assert 0.9 * low <= delay <= 2 * low + 0.3, (attempt, delay)  # + the run itself
    assert delays[1] < delays[3]
    # And its message is in the dead-letter queue with the traceback, and no retry is left waiting
    # (the row is written before the message is nacked: wait for it; the stored payload is the last
    # enqueued copy, so it counts the retries before the last run)
    dead = wait_dead_letter(broker.client, job)
    assert dead["options"]["retries"] == spec.max_retries
    assert "TransientError" in dead["options"]["traceback"]
    assert str(job.pk) not in delayed(broker.client)


@redis_only
def test_permanent_failure_fails_at_once_and_is_dead_lettered(start_workers, broker):
    # Given a worker
    start_workers()
    # When a job that fails permanently is enqueued
    job = services.job_enqueue(task="diagnostics.fail", params={"kind": "permanent", "message": "never"})
    # Then it fails after one attempt, with no retry scheduled
    done = wait_status(job, JobStatus.FAILED, timeout=20)
    assert done.attempts == 1
    assert done.error_class == "workers.errors.PermanentError"
    assert done.error_message == "never"
    assert "PermanentError: never" in done.error_traceback
    # And its message is dead-lettered
    dlq = wait_dead_letter(broker.client, job)
    assert dlq["options"].get("retries", 0) == 0
    assert str(job.pk) not in delayed(broker.client)


@redis_only
def test_transient_error_then_success_succeeds_on_the_second_attempt(start_workers, tmp_path: Path, broker):
    # Given a worker, and a job that fails transiently on its first run only
    start_workers()
    record = tmp_path / "flaky.txt"
    job = services.job_enqueue(task="testing.record", params={"path": str(record), "fail_times": 1})
    # When it runs
    done = wait_status(job, timeout=20)
    # Then the retry succeeds: two runs, one completion, nothing dead-lettered
    assert done.status == JobStatus.SUCCESSFUL, (done.status, done.error_message)
    assert done.attempts == 2
    assert done.result == {"runs": 2}
    assert lines(record) == ["start 1", "start 2", "done"]
    # The error of the failed attempt stays on the row for the record
    assert done.error_class == "workers.errors.TransientError"
    assert str(job.pk) not in dead_letters(broker.client)


def _fail_with_the_ledger_away(broker, job: Job, *, retries: int) -> MessageProxy:
    """Run LedgerRetries on a transient failure of `job` while its table cannot be reached."""
    message = MessageProxy(publishing.message_for(job).copy(options={"retries": retries}))
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE workers_job RENAME TO workers_job_away")
    try:
        try:
            raise TransientError("the database went away too")
        except TransientError as exc:
            LedgerRetries().after_process_message(broker, message, exception=exc)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE workers_job_away RENAME TO workers_job")
    return message


@redis_only
def test_a_failure_the_ledger_cannot_record_is_retried_with_backoff_and_within_the_limit(transactional_db, broker):
    # Given a job declared with max_retries=3 and a 0.2 s minimum backoff, and a ledger that is away
    spec = catalogue.get("diagnostics.fail")
    assert spec is not None
    job = Job.objects.create(task=spec.name, queue=spec.queue, params={"kind": "transient"})
    # When its first attempt fails transiently
    before = time.time() * 1000
    first = _fail_with_the_ledger_away(broker, job, retries=0)
    # Then the message is retried after at least the declared backoff (not at once)
    assert not first.failed
    (retry,) = [json.loads(raw) for raw in broker.client.hvals("dramatiq:default.DQ.msgs")]
    assert retry["message_id"] == str(job.pk)
    assert retry["options"]["eta"] - before >= spec.min_backoff * 1000
    assert "greenroom_attempt" not in retry["options"]
    # When its last allowed attempt fails the same way
    last = _fail_with_the_ledger_away(broker, job, retries=spec.max_retries)
    # Then it is not retried again: the message fails (to the dead-letter queue)
    assert last.failed
    assert broker.client.hlen("dramatiq:default.DQ.msgs") == 1


@redis_only
def test_a_delivery_that_failed_before_claiming_its_job_is_retried_without_touching_the_row(
    transactional_db, broker
):
    # Given a READY job whose delivery failed before it could claim the row (the database was away
    # for the claim itself: the message carries no attempt)
    job = Job.objects.create(task="diagnostics.fail", queue="default", params={"kind": "transient"})
    message = MessageProxy(publishing.message_for(job))
    # When LedgerRetries handles that failure
    try:
        raise TransientError("could not claim")
    except TransientError as exc:
        LedgerRetries().after_process_message(broker, message, exception=exc)
    # Then the delivery is retried, and the row is as it was: READY, never run, no error
    assert not message.failed
    assert str(job.pk) in delayed(broker.client)
    untouched = Job.objects.get(pk=job.pk)
    assert (untouched.status, untouched.attempts, untouched.error_class) == (JobStatus.READY, 0, "")
