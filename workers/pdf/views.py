"""PDF builds over HTTP: ask for one, follow it, fetch the file.

    POST /pdf/reports/<pk>/        → 202 {"id", "status", "url", "page"} + Location; the build already
                                     queued or running for this report if there is one. A browser's form
                                     post (Accept: text/html, no JSON) gets 303 → "page", the end
                                     users' job page /jobs/<id>/ (progress, then the download link)
    GET  /pdf/status/<job id>/     → 200 JSON while READY/RUNNING (with progress), and for a FAILED or
                                     CANCELLED build (with the error); 302 → the file once SUCCESSFUL;
                                     410 once the file has expired
    GET  /pdf/files/<job id>.pdf   → the PDF, to whoever may see the job (its owner, staff)

Authentication as for the jobs API (session or `Authorization: Token`; 401/403 JSON). Reports and
jobs a user may not see answer 404, as if they did not exist.
"""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.urls import reverse

from workers import selectors as job_selectors
from workers.errors import DuplicateJob
from workers.models import Job, JobStatus
from workers.pdf import conf, selectors, services
from workers.serializers import progress_to_json
from workers.views import api_view, error


def status_url(job: Job) -> str:
    return reverse("pdf:status", args=[job.pk])


def file_url(job: Job) -> str:
    return reverse("pdf:file", args=[f"{job.pk}.pdf"])


@api_view({"POST"})
def build(request: HttpRequest, user: Any, pk: int) -> HttpResponseBase:
    """Ask for a PDF of report `pk`: 202 with the build job (a new one, or the one already running)."""
    report = selectors.report_get(user=user, report_id=pk)
    if report is None:
        return error(404, "no such report")
    try:
        job, _ = services.pdf_build_request(report=report, requested_by=user)
    except DuplicateJob:
        return error(409, "a build of this report was just finishing; ask again")
    if job_selectors.job_get(user=user, job_id=job.pk) is None:
        # The build already running was asked for by someone else (staff, for an owner's report):
        # this user may not follow it. Better a clear answer than a status URL that says 404.
        return error(409, "another user's build of this report is running; ask again when it has finished",
                     status=job.status)
    url = status_url(job)
    page = reverse("jobs:job", args=[job.pk])
    if prefers_html(request):
        see_other = HttpResponse(status=303)
        see_other["Location"] = page
        return see_other
    response = JsonResponse({"id": str(job.pk), "status": job.status, "url": url, "page": page}, status=202)
    response["Location"] = url
    return response


def prefers_html(request: HttpRequest) -> bool:
    """A browser's form post: it names HTML in Accept and does not ask for JSON (no Accept: an API client)."""
    accept = request.headers.get("Accept", "")
    return "text/html" in accept and "application/json" not in accept


@api_view({"GET", "HEAD"})
def status(request: HttpRequest, user: Any, job_id: str) -> HttpResponseBase:
    """Where a build stands: JSON while it runs or after it failed, a redirect to the file once done."""
    job = selectors.build_job_get(user=user, job_id=job_id)
    if job is None:
        return error(404, "no such PDF build")
    if job.status == JobStatus.SUCCESSFUL:
        if not selectors.build_file(job).is_file():
            return error(410, "this PDF has expired and was deleted; ask for a new one", status=job.status)
        return HttpResponseRedirect(file_url(job))
    body: dict[str, Any] = {
        "id": str(job.pk),
        "status": job.status,
        "progress": progress_to_json(job),
        "error": {"type": job.error_class, "message": job.error_message} if job.is_finished else None,
        "url": status_url(job),
    }
    return JsonResponse(body)


@api_view({"GET", "HEAD"})
def file(request: HttpRequest, user: Any, filename: str) -> HttpResponseBase:
    """The PDF of a successful build the user may see; 410 once it has expired."""
    stem, dot, extension = filename.rpartition(".")
    job = selectors.build_job_get(user=user, job_id=stem) if dot and extension == "pdf" else None
    if job is None or job.status != JobStatus.SUCCESSFUL:
        return error(404, "no such PDF")
    path = selectors.build_file(job)
    if not path.is_file():
        return error(410, "this PDF has expired and was deleted; ask for a new one")
    settings = conf.get()
    download_name = f"report-{job.params.get('report_id', 'unknown')}.pdf"
    response: HttpResponseBase
    if settings.sendfile == "x-accel-redirect":
        # nginx serves MEDIA_ROOT/pdf/ from an `internal` location: only this header reaches it.
        response = HttpResponse(content_type="application/pdf")
        response["X-Accel-Redirect"] = f"{settings.accel_prefix}{job.pk}.pdf"
    elif settings.sendfile == "x-sendfile":
        response = HttpResponse(content_type="application/pdf")
        response["X-Sendfile"] = str(path)
    else:
        # Streamed from disk in blocks: never the whole file in memory.
        response = FileResponse(path.open("rb"), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{download_name}"'
    # Per-user content: no shared cache may keep it.
    response["Cache-Control"] = "private, no-store"
    return response
