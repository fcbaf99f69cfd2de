"""The LLM APIs' JSON endpoints (under /llm/). Thin: services and selectors do the work.

    GET  /llm/apis/                  {"results": [api, ...]}: status, latency, key hint (never the key)
    POST /llm/apis/<id>/validate/    → 202 + Location of the `llm.validate_api` job
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import reverse

from workers import services
from workers.errors import DuplicateJob
from workers.llm.models import LlmApi
from workers.llm.selectors import llm_api_list, llm_api_to_json
from workers.views import api_view, error

VIEW_PERMISSIONS = ("llm.view_llmapi", "llm.change_llmapi")
VALIDATE_PERMISSION = "llm.change_llmapi"


def _may(user: Any, *permissions: str) -> bool:
    return bool(user.is_staff) or any(user.has_perm(p) for p in permissions)


@api_view({"GET"})
def api_list(request: HttpRequest, user: Any) -> JsonResponse:
    """Every LLM API with its last validation."""
    if not _may(user, *VIEW_PERMISSIONS):
        return error(403, "you may not see LLM APIs (staff or llm.view_llmapi required)")
    return JsonResponse({"results": [llm_api_to_json(api) for api in llm_api_list()]})


@api_view({"POST"})
def api_validate(request: HttpRequest, user: Any, pk: int) -> JsonResponse:
    """Enqueue `llm.validate_api` for one API."""
    if not _may(user, VALIDATE_PERMISSION):
        return error(403, "you may not validate LLM APIs (staff or llm.change_llmapi required)")
    api = LlmApi.objects.filter(pk=pk).first()
    if api is None:
        return error(404, f"LLM API {pk} does not exist")
    if not api.is_active:
        return error(409, f"LLM API {pk} ({api.name}) is inactive")
    try:
        job = services.job_enqueue(task="llm.validate_api", params={"api_id": api.pk}, requested_by=user)
    except DuplicateJob as exc:
        return error(409, str(exc), existing_id=str(exc.existing_id) if exc.existing_id else None)
    url = reverse("workers:job-detail", args=[job.pk])
    response = JsonResponse({"id": str(job.pk), "status": job.status, "url": url}, status=202)
    response["Location"] = url
    return response
