"""The dashboard's job pages: the filtered list (keyset pages), one job, and its cancel/retry buttons."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from workers import selectors, services
from workers.dashboard import queries
from workers.dashboard.access import staff_only
from workers.dashboard.forms import JobFilterForm, task_names
from workers.errors import DuplicateJob, IllegalTransition, InvalidParams, UnknownTask
from workers.models import Job, JobStatus
from workers.serializers import progress_to_json

# Rows per page of the job list.
PAGE_SIZE = 50
# Most jobs one live-progress request may ask about (a page shows PAGE_SIZE).
LIVE_IDS_LIMIT = 100


def _page_link(request: HttpRequest, **change: str) -> str:
    """The current query string with `change` applied and both cursors dropped first."""
    query = request.GET.copy()
    for name in ("cursor", "before"):
        query.pop(name, None)
    for name, value in change.items():
        query[name] = value
    return f"{request.path}?{query.urlencode()}"


@staff_only
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    """GET /dashboard/jobs/: filters, newest first, "Older"/"Newer" keyset links."""
    form = JobFilterForm(request.GET)
    page = queries.job_page(form.filters(), cursor=request.GET.get("cursor") or None,
                            before=request.GET.get("before") or None, size=PAGE_SIZE)
    return render(request, "dashboard/jobs.html", {
        "section": "jobs",
        "form": form,
        "task_names": task_names(),
        "jobs": page.jobs,
        "older_url": _page_link(request, cursor=page.next_cursor) if page.next_cursor else None,
        "newer_url": _page_link(request, before=page.prev_cursor) if page.prev_cursor else None,
    })


@staff_only
@require_GET
def job_progress(request: HttpRequest) -> JsonResponse:
    """GET /dashboard/jobs/progress/?id=<uuid>&id=...: status and progress of the listed jobs (the list's
    live rows poll this, one request for the whole page instead of one stream per row)."""
    ids = []
    for value in request.GET.getlist("id")[:LIVE_IDS_LIMIT]:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            continue
    jobs = selectors.job_visible_to(user=request.user).filter(pk__in=ids).only(
        "pk", "status", "progress_done", "progress_total", "progress_message")
    return JsonResponse({"jobs": [{"id": str(job.pk), "status": job.status, "progress": progress_to_json(job)}
                                  for job in jobs]})


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@staff_only
@require_GET
def job_detail(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    """GET /dashboard/jobs/<uuid>/: everything about one job, live while it is active."""
    job = queries.job_by_id(job_id)
    if job is None:
        raise Http404("no such job")
    return render(request, "dashboard/job_detail.html", {
        "section": "jobs",
        "job": job,
        "params": _pretty(job.params),
        "result": None if job.result is None else _pretty(job.result),
        "timeline": queries.job_timeline(job),
        "can_cancel": job.status in (JobStatus.READY, JobStatus.RUNNING) and job.cancel_requested_at is None,
        "can_retry": job.status in (JobStatus.FAILED, JobStatus.CANCELLED),
        "events_url": reverse("workers:job-events", args=[job.pk]),
        "api_url": reverse("workers:job-detail", args=[job.pk]),
    })


def _job_or_404(job_id: uuid.UUID) -> Job:
    job = queries.job_by_id(job_id)
    if job is None:
        raise Http404("no such job")
    return job


@staff_only
@require_POST
def job_cancel(request: HttpRequest, job_id: uuid.UUID) -> HttpResponseBase:
    """POST: cancel (READY) or ask to stop (RUNNING); back to the job's page."""
    job = _job_or_404(job_id)
    try:
        services.job_cancel(job=job)
    except IllegalTransition as exc:
        messages.error(request, f"Not cancelled: {exc}")
    else:
        if job.status == JobStatus.CANCELLED:
            messages.success(request, "Cancelled the job.")
        else:
            messages.success(request, "Asked the job to stop: it stops at its next progress check.")
    return redirect("dashboard:job", job_id=job.pk)


@staff_only
@require_POST
def job_retry(request: HttpRequest, job_id: uuid.UUID) -> HttpResponseBase:
    """POST: enqueue a new job like this FAILED or CANCELLED one; back to this job's page."""
    job = _job_or_404(job_id)
    try:
        retry = services.job_retry(job=job, requested_by=request.user)
    except IllegalTransition as exc:
        messages.error(request, f"Not retried: {exc}")
    except DuplicateJob as exc:
        messages.error(request, f"Not retried: job {exc.existing_id} with the same unique key is still active.")
    except (UnknownTask, InvalidParams) as exc:
        messages.error(request, f"This job can no longer be retried: {exc}")
    else:
        messages.success(request, f"Retried as job {retry.pk}.")
    return redirect("dashboard:job", job_id=job.pk)
