"""Reads on jobs, with the visibility rule: a user sees their own jobs, staff see all."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Model, QuerySet

from workers.models import Job


def visible_to[M: Model](rows: QuerySet[M], *, user: Any, owner_field: str) -> QuerySet[M]:
    """The visibility rule of every owned object: all for staff, the user's own otherwise, none for
    an anonymous user. `owner_field` names the foreign key to the owner."""
    if not getattr(user, "is_authenticated", False):
        return rows.none()
    if getattr(user, "is_staff", False):
        return rows
    return rows.filter(**{owner_field: user})


def job_visible_to(*, user: Any) -> QuerySet[Job]:
    """Every job for staff, the user's own otherwise; none for an anonymous user."""
    return visible_to(Job.objects.all(), user=user, owner_field="requested_by")


def job_list(*, user: Any, status: str | None = None, task: str | None = None) -> QuerySet[Job]:
    """Jobs the user may see, newest first, optionally filtered."""
    jobs = job_visible_to(user=user)
    if status:
        jobs = jobs.filter(status=status)
    if task:
        jobs = jobs.filter(task=task)
    return jobs.order_by("-created_at", "-pk")


def job_get(*, user: Any, job_id: uuid.UUID | str) -> Job | None:
    """The job if it exists and the user may see it, else None."""
    return job_visible_to(user=user).filter(pk=job_id).first()


def job_latest(*, task: str, **params: Any) -> Job | None:
    """The newest job of `task` whose params include `params` (e.g. report_id=3), or None.

    Domain admin pages and views use it to show "the latest job" of a report, source or API.
    """
    lookups = {f"params__{name}": value for name, value in params.items()}
    return Job.objects.filter(task=task, **lookups).order_by("-created_at").first()
