"""execution.record_failure honours a TransientError's retry_after, capped at the job's max_backoff."""

from __future__ import annotations

from django.utils import timezone

from workers import catalogue
from workers.errors import TransientError
from workers.execution import record_failure, retry_delay_ms
from workers.models import Job, JobStatus


def spec() -> catalogue.JobSpec:
    found = catalogue.get("llm.validate_api")
    assert found is not None and found.min_backoff == 0.5 and found.max_backoff == 10
    return found


def test_without_retry_after_the_delay_is_the_usual_backoff():
    for _ in range(20):
        assert 500 <= retry_delay_ms(spec(), 0, TransientError("x")) <= 1000


def test_retry_after_longer_than_the_backoff_wins():
    assert retry_delay_ms(spec(), 0, TransientError("x", retry_after=3)) == 3000


def test_retry_after_shorter_than_the_backoff_is_ignored():
    assert 500 <= retry_delay_ms(spec(), 0, TransientError("x", retry_after=0.1)) <= 1000


def test_retry_after_is_capped_at_max_backoff():
    assert retry_delay_ms(spec(), 0, TransientError("x", retry_after=3600)) == 10_000


def test_record_failure_schedules_the_retry_after_the_servers_delay(db):
    # Given a running job
    job = Job.objects.create(task="llm.validate_api", queue="interactive", params={"api_id": 1},
                             status=JobStatus.RUNNING, attempts=1, started_at=timezone.now())
    before = timezone.now()
    # When its run fails with a transient error asking for 4 s
    delay = record_failure(spec(), str(job.pk), TransientError("busy", retry_after=4), retries=0, attempt=1)
    # Then the retry waits 4 s, and the row says so
    assert delay == 4000
    job.refresh_from_db()
    assert job.status == JobStatus.READY
    assert job.next_attempt_at is not None
    assert 3.9 <= (job.next_attempt_at - before).total_seconds() <= 5
