"""The end users' page of one job (/jobs/<uuid>/): where it stands, live, and its result.

It sits beside the dashboard because it shares the dashboard's live script and the job event stream;
its rule is the API's, not the dashboard's: the job's owner and staff see it, anyone else gets 404.
"""

from __future__ import annotations

import json
import uuid

from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from workers import selectors
from workers.dashboard.access import login_redirect
from workers.models import JobStatus

# Jobs whose result is a file, and the URL name that serves it (given "<job id>.pdf").
RESULT_FILES = {"pdf.build_report": "pdf:file"}


@require_GET
def job_page(request: HttpRequest, job_id: uuid.UUID) -> HttpResponseBase:
    """GET /jobs/<uuid>/: status, progress and message; the result (or its download) once successful."""
    if not request.user.is_authenticated:
        return login_redirect(request)
    job = selectors.job_get(user=request.user, job_id=job_id)
    if job is None:
        raise Http404("no such job")
    result_url = None
    if job.status == JobStatus.SUCCESSFUL and job.task in RESULT_FILES:
        result_url = reverse(RESULT_FILES[job.task], args=[f"{job.pk}.pdf"])
    return render(request, "jobs/job.html", {
        "job": job,
        "result": None if job.result is None else json.dumps(job.result, indent=2, sort_keys=True, ensure_ascii=False),
        "result_url": result_url,
        "events_url": reverse("workers:job-events", args=[job.pk]),
        "api_url": reverse("workers:job-detail", args=[job.pk]),
    })
