"""`POST /sources/<pk>/sync/`: enqueue a sync → 202 with the job, or 409 with the active one."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from workers.errors import DuplicateJob
from workers.serializers import job_to_json
from workers.sources.models import Source
from workers.sources.services import source_sync_request
from workers.views import api_view, error

SYNC_PERMISSION = "sources.change_source"


@api_view({"POST"})
def sync(request: HttpRequest, user: Any, pk: int) -> JsonResponse:
    """Sync the source now (staff, or users with sources.change_source)."""
    if not (user.is_staff or user.has_perm(SYNC_PERMISSION)):
        return error(403, f"you lack the permission {SYNC_PERMISSION!r} to sync sources")
    source = Source.objects.filter(pk=pk).first()
    if source is None:
        return error(404, "no such source")
    try:
        job = source_sync_request(source=source, requested_by=user)
    except DuplicateJob as exc:
        existing = str(exc.existing_id) if exc.existing_id else None
        return error(409, "a sync of this source is already queued or running", existing_id=existing)
    body = job_to_json(job)
    response = JsonResponse(body, status=202)
    response["Location"] = body["url"]
    return response
