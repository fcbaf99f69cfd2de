"""The fixtures Greenroom offers to projects testing their own jobs."""

from __future__ import annotations

import pytest

from workers import services
from workers.models import Job, JobStatus


@pytest.mark.django_db
def test_eager_mode_runs_the_job_inline_through_the_ledger(greenroom_eager):
    job = services.job_enqueue(task="diagnostics.noop")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCESSFUL
    assert job.result == {"ok": True}
    assert job.attempts == 1


@pytest.mark.django_db
def test_eager_enqueue_returns_the_job_as_it_ended(greenroom_eager):
    job = services.job_enqueue(task="diagnostics.fail", params={"kind": "permanent"})
    assert job.status == JobStatus.FAILED  # no refresh needed: the API answers with this
    assert job.error_class == "workers.errors.PermanentError"


@pytest.mark.django_db
def test_eager_mode_retries_transient_errors_then_records_the_failure(greenroom_eager):
    job = services.job_enqueue(task="diagnostics.fail", params={"kind": "transient"})
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.attempts == 4  # the first run and its 3 retries
    assert job.error_class == "workers.errors.TransientError"


@pytest.mark.django_db
def test_eager_mode_inside_a_transaction_runs_after_commit(greenroom_eager, django_capture_on_commit_callbacks):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        job = services.job_enqueue(task="diagnostics.noop")
        assert Job.objects.get(pk=job.pk).status == JobStatus.READY
    assert Job.objects.get(pk=job.pk).status == JobStatus.SUCCESSFUL


def test_run_jobs_drains_the_stub_broker_including_retries(transactional_db, run_jobs):
    ok = services.job_enqueue(task="diagnostics.noop")
    bad = services.job_enqueue(task="diagnostics.fail", params={"kind": "permanent"})
    finished = run_jobs()
    assert {job.pk for job in finished} == {ok.pk, bad.pk}
    assert Job.objects.get(pk=ok.pk).status == JobStatus.SUCCESSFUL
    failed = Job.objects.get(pk=bad.pk)
    assert failed.status == JobStatus.FAILED
    assert failed.attempts == 1  # permanent: no retry
