"""The failures page: open failures grouped by task and error type, retried or discarded in bulk.

Selecting jobs leads to a confirmation page (GET, so it survives a reload); only its POST changes
anything, through `services.job_retry` / `services.job_discard`, one job at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from workers import services
from workers.dashboard import queries
from workers.dashboard.access import staff_only
from workers.errors import DuplicateJob, IllegalTransition, InvalidParams, UnknownTask
from workers.models import Job

# Newest jobs shown in each group on the failures page (the group's own page lists them all).
JOBS_PER_GROUP = 3
# Groups on the page (biggest first); `?all=1` shows up to ALL_GROUPS_LIMIT. Rendering, not the
# queries, is what grows with the groups shown: 20 keeps the page well under 100 ms.
GROUP_LIMIT = 20
ALL_GROUPS_LIMIT = 200
# Rows per page of one group's list.
PAGE_SIZE = 50
# Most jobs one confirmation may act on.
MAX_SELECTED = 500
ACTIONS = {"retry": "Retry", "discard": "Discard"}
DONE = {"retry": "Retried", "discard": "Discarded"}


@staff_only
@require_GET
def failures(request: HttpRequest) -> HttpResponse:
    """GET /dashboard/failures/: the groups, biggest first, each with its newest jobs."""
    show_all = request.GET.get("all") == "1"
    limit = ALL_GROUPS_LIMIT if show_all else GROUP_LIMIT
    groups = queries.failure_groups(per_group=JOBS_PER_GROUP, limit=limit + 1)
    return render(request, "dashboard/failures.html", {
        "section": "failures", "groups": groups[:limit], "more_groups": len(groups) > limit, "limit": limit,
        "show_all": show_all,
    })


@staff_only
@require_GET
def failure_group(request: HttpRequest) -> HttpResponse:
    """GET /dashboard/failures/group/?task=&error_class=&cursor=: every open failure of one group."""
    task, error_class = request.GET.get("task", ""), request.GET.get("error_class", "")
    page = queries.failure_jobs(task=task, error_class=error_class, cursor=request.GET.get("cursor") or None,
                                size=PAGE_SIZE)
    older_url = None
    if page.next_cursor:
        query = request.GET.copy()
        query["cursor"] = page.next_cursor
        older_url = f"{request.path}?{query.urlencode()}"
    return render(request, "dashboard/failure_group.html", {
        "section": "failures", "task": task, "error_class": error_class, "jobs": page.jobs, "older_url": older_url,
    })


def _selection(data: QueryDict) -> tuple[str | None, list[uuid.UUID]]:
    """The action and the job ids a form asked for; a per-row "retry" button wins over the checkboxes."""
    one = data.get("retry_one")
    action, values = ("retry", [one]) if one else (data.get("action"), data.getlist("job"))
    ids = []
    for value in values[:MAX_SELECTED]:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            continue
    return (action if action in ACTIONS else None), ids


def _open_failures(ids: Iterable[uuid.UUID]) -> list[Job]:
    return list(queries.open_failures().filter(pk__in=list(ids)).select_related("requested_by")
                .order_by("-created_at", "-pk"))


def _apply(request: HttpRequest, action: str, jobs: list[Job]) -> tuple[int, list[str]]:
    done, problems = 0, []
    for job in jobs:
        try:
            if action == "retry":
                services.job_retry(job=job, requested_by=request.user)
            else:
                services.job_discard(job=job)
        except DuplicateJob as exc:
            problems.append(f"{job.pk}: job {exc.existing_id} with the same unique key is still active")
        except (IllegalTransition, UnknownTask, InvalidParams) as exc:
            problems.append(f"{job.pk}: {exc}")
        else:
            done += 1
    return done, problems


@staff_only
@require_http_methods(["GET", "POST"])
def failures_confirm(request: HttpRequest) -> HttpResponseBase:
    """GET: the jobs selected and a confirm button. POST (the confirm button): do it, back to the list."""
    action, ids = _selection(request.POST if request.method == "POST" else request.GET)
    if action is None:
        messages.error(request, "Choose retry or discard.")
        return redirect("dashboard:failures")
    jobs = _open_failures(ids)
    if request.method == "GET":
        if not jobs:
            messages.warning(request, "Select at least one open failure.")
            return redirect("dashboard:failures")
        return render(request, "dashboard/failures_confirm.html", {
            "section": "failures", "action": action, "verb": ACTIONS[action], "jobs": jobs,
            "gone": len(ids) - len(jobs),
        })
    done, problems = _apply(request, action, jobs)
    messages.success(request, f"{DONE[action]} {done} job(s)")
    gone = len(set(ids)) - len(jobs)
    if gone:
        messages.info(request, f"{gone} job(s) were no longer open failures and were left alone.")
    if problems:
        messages.warning(request, f"Skipped {len(problems)} job(s): " + "; ".join(problems[:5]))
    return redirect("dashboard:failures")
