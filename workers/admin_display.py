"""Admin helpers shared by the domain apps: a job's status as a small, escaped badge with a link."""

from __future__ import annotations

from django.urls import reverse
from django.utils.html import format_html

from workers.models import Job

STATUS_COLOURS = {
    "READY": "#6b7280",
    "RUNNING": "#2563eb",
    "SUCCESSFUL": "#15803d",
    "FAILED": "#b91c1c",
    "CANCELLED": "#92400e",
}


def job_badge(job: Job | None) -> str:
    """'—' without a job; else its status (and progress while running), linking to its admin page."""
    if job is None:
        return "—"
    url = reverse("admin:workers_job_change", args=[job.pk])
    label = job.status if job.percent is None or job.is_finished else f"{job.status} {job.percent}%"
    return format_html('<a href="{}" style="color:{}">{}</a>', url, STATUS_COLOURS.get(job.status, "inherit"), label)
