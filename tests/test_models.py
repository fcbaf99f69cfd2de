"""The ledger: conditional claims, status transitions, cancel, the one-active-job-per-key constraint."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from workers.errors import IllegalTransition
from workers.models import ApiToken, Job, JobStatus, hash_token

pytestmark = pytest.mark.django_db

STALE_AFTER = timedelta(seconds=12)


def make_job(status: str = JobStatus.READY, **fields) -> Job:
    return Job.objects.create(task="diagnostics.noop", queue="interactive", status=status, **fields)


def claim(job: Job, worker: str = "host:1") -> bool:
    return Job.claim(job.pk, worker=worker, stale_before=timezone.now() - STALE_AFTER)


def row(job: Job) -> Job:
    return Job.objects.get(pk=job.pk)


# --- claim -----------------------------------------------------------------------------------------


def test_a_ready_job_is_claimed_once_and_refused_the_second_time():
    job = make_job()

    first = claim(job, "host:1")
    second = claim(job, "host:2")

    assert (first, second) == (True, False)
    claimed = row(job)
    assert claimed.status == JobStatus.RUNNING
    assert claimed.worker == "host:1"
    assert claimed.attempts == 1
    assert claimed.started_at is not None
    assert claimed.heartbeat_at is not None


@pytest.mark.parametrize("status", [JobStatus.SUCCESSFUL, JobStatus.FAILED, JobStatus.CANCELLED])
def test_a_finished_job_is_never_claimed(status):
    job = make_job(status, finished_at=timezone.now())

    assert not claim(job)
    assert row(job).status == status
    assert row(job).attempts == 0


def test_a_running_job_with_a_fresh_heartbeat_is_not_claimed():
    job = make_job(JobStatus.RUNNING, heartbeat_at=timezone.now(), attempts=1, worker="host:1")

    assert not claim(job, "host:2")
    assert row(job).worker == "host:1"


def test_a_running_job_whose_heartbeat_is_stale_is_taken_over():
    # Given a job whose worker stopped beating a minute ago
    job = make_job(JobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=1), attempts=1, worker="host:1")

    # When another worker gets its message
    taken = claim(job, "host:2")

    # Then it runs it as a new attempt
    assert taken
    claimed = row(job)
    assert (claimed.status, claimed.worker, claimed.attempts) == (JobStatus.RUNNING, "host:2", 2)
    assert timezone.now() - claimed.heartbeat_at < timedelta(seconds=5)


def test_a_stale_running_job_that_was_asked_to_stop_is_not_taken_over():
    job = make_job(JobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=1),
                   cancel_requested_at=timezone.now())

    assert not claim(job)


def test_a_ready_job_waiting_for_a_retry_is_claimable_and_its_retry_time_cleared():
    job = make_job(next_attempt_at=timezone.now() + timedelta(seconds=5), attempts=1)

    assert claim(job)
    assert row(job).next_attempt_at is None
    assert row(job).attempts == 2


def test_claiming_a_job_that_does_not_exist_returns_false():
    job = make_job()
    job_id = job.pk
    job.delete()

    assert not Job.claim(job_id, worker="host:1", stale_before=timezone.now())


# --- transitions -----------------------------------------------------------------------------------


def test_a_running_job_succeeds_with_its_result():
    job = make_job(JobStatus.RUNNING)

    job.succeed({"pages": 3})

    stored = row(job)
    assert stored.status == JobStatus.SUCCESSFUL
    assert stored.result == {"pages": 3}
    assert stored.finished_at is not None
    assert job.status == JobStatus.SUCCESSFUL


def test_a_failure_stores_the_error_and_ends_the_job():
    job = make_job(JobStatus.RUNNING, next_attempt_at=timezone.now())

    job.fail(error_class="builtins.ValueError", error_message="bad page", error_traceback="Traceback ...")

    stored = row(job)
    assert (stored.status, stored.error_class, stored.error_message) == (
        JobStatus.FAILED, "builtins.ValueError", "bad page")
    assert stored.error_traceback == "Traceback ..."
    assert stored.finished_at is not None
    assert stored.next_attempt_at is None


def test_a_retry_puts_the_job_back_to_ready_until_its_delay_has_passed():
    job = make_job(JobStatus.RUNNING)
    before = timezone.now()

    job.schedule_retry(error_class="workers.errors.TransientError", error_message="later", error_traceback="",
                       delay_ms=2000)

    stored = row(job)
    assert stored.status == JobStatus.READY
    assert stored.error_class == "workers.errors.TransientError"
    assert stored.finished_at is None
    assert before + timedelta(seconds=2) <= stored.next_attempt_at <= timezone.now() + timedelta(seconds=2)


@pytest.mark.parametrize(
    ("status", "move"),
    [
        (JobStatus.READY, lambda job: job.succeed(None)),
        (JobStatus.SUCCESSFUL, lambda job: job.succeed(None)),
        (JobStatus.FAILED, lambda job: job.succeed(None)),
        (JobStatus.SUCCESSFUL, lambda job: job.fail(error_class="E", error_message="m")),
        (JobStatus.CANCELLED, lambda job: job.fail(error_class="E", error_message="m")),
        (JobStatus.READY, lambda job: job.schedule_retry(error_class="E", error_message="m", error_traceback="",
                                                         delay_ms=1)),
        (JobStatus.FAILED, lambda job: job.schedule_retry(error_class="E", error_message="m", error_traceback="",
                                                          delay_ms=1)),
        (JobStatus.READY, lambda job: job.mark_cancelled()),
        (JobStatus.SUCCESSFUL, lambda job: job.mark_cancelled()),
    ],
)
def test_an_illegal_transition_raises_and_leaves_the_row_alone(status, move):
    job = make_job(status)

    with pytest.raises(IllegalTransition, match=f"is {status}"):
        move(job)

    stored = row(job)
    assert stored.status == status
    assert stored.result is None
    assert stored.error_class == ""


def test_a_transition_from_a_stale_copy_is_refused_when_the_row_moved_on():
    # Given two copies of one running job, e.g. a worker and a reconciler
    mine = make_job(JobStatus.RUNNING)
    theirs = Job.objects.get(pk=mine.pk)

    # When one finishes it first
    theirs.succeed({"ok": True})

    # Then the other copy's outdated view cannot overwrite the outcome
    with pytest.raises(IllegalTransition):
        mine.fail(error_class="E", error_message="late")
    assert mine.status == JobStatus.SUCCESSFUL  # refreshed from the database
    assert row(mine).result == {"ok": True}


# --- cancel ----------------------------------------------------------------------------------------


def test_cancelling_a_ready_job_cancels_it_at_once():
    job = make_job()

    job.cancel()

    stored = row(job)
    assert stored.status == JobStatus.CANCELLED
    assert stored.finished_at is not None
    assert stored.cancel_requested_at is not None
    assert not claim(job)


def test_cancelling_a_running_job_only_asks_it_to_stop():
    # Given a running job
    job = make_job(JobStatus.RUNNING, heartbeat_at=timezone.now())

    # When it is cancelled
    job.cancel()

    # Then it keeps running until it notices, and then it ends CANCELLED
    stored = row(job)
    assert stored.status == JobStatus.RUNNING
    assert stored.cancel_requested_at is not None
    assert stored.finished_at is None
    stored.mark_cancelled()
    assert row(job).status == JobStatus.CANCELLED
    assert row(job).finished_at is not None


def test_cancelling_a_stale_copy_of_a_job_that_started_meanwhile_asks_it_to_stop():
    stale_copy = make_job()
    claim(stale_copy)

    stale_copy.cancel()

    assert row(stale_copy).status == JobStatus.RUNNING
    assert row(stale_copy).cancel_requested_at is not None


@pytest.mark.parametrize("status", [JobStatus.SUCCESSFUL, JobStatus.FAILED, JobStatus.CANCELLED])
def test_cancelling_a_finished_job_raises(status):
    job = make_job(status)

    with pytest.raises(IllegalTransition):
        job.cancel()
    assert row(job).status == status
    assert row(job).cancel_requested_at is None


# --- one active job per unique key -----------------------------------------------------------------


@pytest.mark.parametrize("second_status", [JobStatus.READY, JobStatus.RUNNING])
def test_two_active_jobs_with_one_unique_key_are_refused_by_the_database(second_status):
    make_job(unique_key="report:7")

    with pytest.raises(IntegrityError), transaction.atomic():
        make_job(second_status, unique_key="report:7")
    assert Job.objects.filter(unique_key="report:7").count() == 1


def test_a_job_cannot_become_active_again_beside_another_holding_its_key():
    first = make_job(JobStatus.FAILED, unique_key="k")
    make_job(unique_key="k")

    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.filter(pk=first.pk).update(status=JobStatus.READY)


@pytest.mark.parametrize("end", [JobStatus.SUCCESSFUL, JobStatus.FAILED, JobStatus.CANCELLED])
def test_a_unique_key_may_be_reused_once_its_job_has_finished(end):
    first = make_job(unique_key="k")
    Job.objects.filter(pk=first.pk).update(status=end)

    second = make_job(unique_key="k")
    third_finished = make_job(end, unique_key="k")

    stored = set(Job.objects.filter(unique_key="k").values_list("pk", flat=True))
    assert stored == {first.pk, second.pk, third_finished.pk}


def test_jobs_without_a_unique_key_are_not_limited():
    for _ in range(3):
        make_job()

    assert Job.objects.filter(unique_key__isnull=True, status=JobStatus.READY).count() == 3


# --- reading ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("done", "total", "percent"),
    [(0, None, None), (5, 0, None), (1, 3, 33.3), (3, 3, 100.0), (7, 3, 100.0)],
)
def test_percent_is_rounded_capped_and_absent_without_a_total(done, total, percent):
    job = Job(progress_done=done, progress_total=total)

    assert job.percent == percent


def test_is_finished_covers_exactly_the_final_statuses():
    finished = {status for status in JobStatus.values if Job(status=status).is_finished}

    assert finished == {"SUCCESSFUL", "FAILED", "CANCELLED"}


# --- API tokens ------------------------------------------------------------------------------------


def test_an_issued_token_is_stored_only_as_its_hash(django_user_model):
    user = django_user_model.objects.create_user("carol")

    token, key = ApiToken.issue(user=user, name="ci")

    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.key_hash == hash_token(key)
    assert stored.prefix == key[:8]
    assert key not in str([getattr(stored, field.attname) for field in ApiToken._meta.fields])
    assert len(key) >= 40  # 32 random bytes, URL-safe base64


def test_two_issued_tokens_differ(django_user_model):
    user = django_user_model.objects.create_user("carol")

    _, first = ApiToken.issue(user=user)
    _, second = ApiToken.issue(user=user)

    assert first != second
