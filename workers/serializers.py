"""The JSON shapes of the jobs API (plain functions: no framework)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.urls import reverse

from workers.models import Job


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def progress_to_json(job: Job) -> dict[str, Any]:
    """A job's progress as every endpoint shows it."""
    return {
        "done": job.progress_done,
        "total": job.progress_total,
        "percent": job.percent,
        "message": job.progress_message,
    }


def job_to_json(job: Job, *, show_traceback: bool = False) -> dict[str, Any]:
    """A job as the API shows it."""
    error = None
    if job.error_class:
        error = {"type": job.error_class, "message": job.error_message}
        if show_traceback:
            error["traceback"] = job.error_traceback
    return {
        "id": str(job.pk),
        "task": job.task,
        "queue": job.queue,
        "status": job.status,
        "progress": progress_to_json(job),
        "attempts": job.attempts,
        "params": job.params,
        "result": job.result,
        "error": error,
        "unique_key": job.unique_key,
        "cancel_requested": job.cancel_requested_at is not None,
        "retry_of": str(job.retry_of_id) if job.retry_of_id else None,
        "created_at": iso(job.created_at),
        "enqueued_at": iso(job.enqueued_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "next_attempt_at": iso(job.next_attempt_at),
        "url": reverse("workers:job-detail", args=[job.pk]),
    }
