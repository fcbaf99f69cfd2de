"""maintenance.prune_jobs: old finished jobs go, in batches; active and recent ones stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from workers import services
from workers.lib.pruning import prune_finished_jobs
from workers.models import Job, JobStatus


def _job(status: str, *, finished_days_ago: float | None = None, created_days_ago: float = 0) -> Job:
    now = timezone.now()
    finished = None if finished_days_ago is None else now - timedelta(days=finished_days_ago)
    return Job.objects.create(task="diagnostics.noop", queue="interactive", status=status,
                              created_at=now - timedelta(days=created_days_ago), finished_at=finished)


@pytest.mark.django_db
def test_only_finished_jobs_older_than_the_cutoff_are_deleted_in_batches():
    # Given five old finished jobs, a recent one, and old jobs that are still active
    old = [_job(status, finished_days_ago=40) for status in
           (JobStatus.SUCCESSFUL, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.SUCCESSFUL, JobStatus.FAILED)]
    recent = _job(JobStatus.SUCCESSFUL, finished_days_ago=1)
    ready = _job(JobStatus.READY, created_days_ago=90)
    running = _job(JobStatus.RUNNING, created_days_ago=90)
    seen: list[tuple[int, int]] = []

    # When pruning with a 30-day cutoff, two rows per batch
    result = prune_finished_jobs(before=timezone.now() - timedelta(days=30), batch=2,
                                 on_progress=lambda done, total: seen.append((done, total)))

    # Then the five old finished jobs are gone, three batches later, with progress after each
    assert result == {"deleted": 5, "batches": 3}
    assert not Job.objects.filter(pk__in=[j.pk for j in old]).exists()
    assert set(Job.objects.values_list("pk", flat=True)) == {recent.pk, ready.pk, running.pk}
    assert seen == [(2, 5), (4, 5), (5, 5)]


@pytest.mark.django_db
def test_the_prune_job_uses_the_retention_setting_and_reports_what_it_did(greenroom_eager, settings):
    settings.GREENROOM_JOB_RETENTION_DAYS = 10
    _job(JobStatus.SUCCESSFUL, finished_days_ago=11)
    kept = _job(JobStatus.SUCCESSFUL, finished_days_ago=9)

    job = services.job_enqueue(task="maintenance.prune_jobs")

    assert job.status == JobStatus.SUCCESSFUL
    assert job.result == {"deleted": 1, "batches": 1, "retention_days": 10, "processes_deleted": 0}
    assert Job.objects.filter(pk=kept.pk).exists()


@pytest.mark.django_db
def test_a_zero_retention_keeps_every_job(greenroom_eager, settings):
    settings.GREENROOM_JOB_RETENTION_DAYS = 0
    old = _job(JobStatus.SUCCESSFUL, finished_days_ago=400)

    job = services.job_enqueue(task="maintenance.prune_jobs")

    assert job.result["deleted"] == 0
    assert Job.objects.filter(pk=old.pk).exists()
