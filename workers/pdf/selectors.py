"""Reads of the pdf app: reports a user may see, build jobs and their files."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from django.db.models import QuerySet

from workers import selectors
from workers.models import Job
from workers.pdf import conf
from workers.pdf.models import Report

BUILD_TASK = "pdf.build_report"


def report_visible_to(*, user: Any) -> QuerySet[Report]:
    """Every report for staff, the user's own otherwise; none for an anonymous user."""
    return selectors.visible_to(Report.objects.all(), user=user, owner_field="owner")


def report_get(*, user: Any, report_id: int) -> Report | None:
    """The report if it exists and the user may see it, else None."""
    return report_visible_to(user=user).filter(pk=report_id).first()


def build_job_get(*, user: Any, job_id: str) -> Job | None:
    """A `pdf.build_report` job the user may see (workers.selectors' rule), else None."""
    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        return None
    job = selectors.job_get(user=user, job_id=parsed)
    return job if job is not None and job.task == BUILD_TASK else None


def build_file(job: Job) -> Path:
    """Where a build job's PDF is (or would be). Derived from the id, never from stored text."""
    return conf.get().directory / f"{job.pk}.pdf"
