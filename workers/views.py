"""The jobs API (JSON). Views parse and answer; services and selectors do the work.

    POST /api/jobs/                 {"task", "params", "unique_key"?} → 202 + Location
    GET  /api/jobs/?status=&task=   {"results": [...], "next": url | null}, newest first
    GET  /api/jobs/<id>/            the job
    POST /api/jobs/<id>/cancel/     → 202 (running: stops at its next progress check)
    POST /api/jobs/<id>/retry/      → 202 with the new job
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.models import Q
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from workers import conf, selectors, services
from workers.auth import AuthFailed, authenticate
from workers.errors import DuplicateJob, IllegalTransition, InvalidParams, UnknownTask
from workers.models import Job, JobStatus
from workers.serializers import job_to_json

ENQUEUE_FIELDS = {"task", "params", "unique_key"}
ENQUEUE_PERMISSION = "workers.add_job"
# Deepest nesting of arrays/objects accepted in a request body. Job params are shallow; a limit well
# below Python's recursion limit keeps deep bodies from reaching code that recurses over them.
MAX_JSON_DEPTH = 32
UNIQUE_KEY_MAX_LENGTH = Job._meta.get_field("unique_key").max_length or 200


def error(http_status: int, message: str, /, **extra: Any) -> JsonResponse:
    """A JSON error body; `extra` may hold any key (even `status`, the job's status)."""
    return JsonResponse({"error": message, **extra}, status=http_status)


def api_view(methods: set[str]) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """Method check, authentication and JSON errors around an API view; passes the user in.

    Domain apps use it too, for views that answer with a redirect or a file as well as JSON.
    """

    def decorate(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @csrf_exempt  # session requests are CSRF-checked in authenticate(); token requests need none
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in methods:
                response = error(405, f"method {request.method} not allowed")
                response["Allow"] = ", ".join(sorted(methods))
                return response
            try:
                user = authenticate(request)
                return view(request, user, *args, **kwargs)
            except AuthFailed as refused:
                response = error(refused.status, refused.reason)
                if refused.status == 401:
                    response["WWW-Authenticate"] = "Token"
                return response
            except RequestDataTooBig:
                # Raised wherever the body is first read: parse_body, or the CSRF check of a form post.
                return error(413, f"request body too large (limit: {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes)")

        wrapper.__name__ = view.__name__
        wrapper.__doc__ = view.__doc__
        return wrapper

    return decorate


class BadRequest(Exception):
    """The request body is unusable."""


def _reject_constant(name: str) -> None:
    raise BadRequest(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf, which no JSON column can store
        raise BadRequest(f"number {text[:40]} is out of range")
    return value


def _check_values(data: Any) -> None:
    """Refuse what the database cannot store or code cannot walk: deep nesting, NUL, lone surrogates.

    Iterative, so that the depth check itself cannot run out of stack.
    """
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            # PostgreSQL refuses NUL characters in text and jsonb; refuse them here with a reason.
            if "\x00" in value:
                raise BadRequest("strings may not contain NUL characters")
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
                    raise BadRequest("strings must be valid Unicode (no lone surrogates)") from None
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise BadRequest(f"JSON nested too deeply (limit: {MAX_JSON_DEPTH} levels)")
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)


def parse_body(request: HttpRequest) -> dict[str, Any]:
    """The request body as a JSON object; BadRequest with a reason otherwise.

    RequestDataTooBig (a body over DATA_UPLOAD_MAX_MEMORY_SIZE) is left to `api_view` (413).
    """
    raw = request.body
    if not raw.strip():
        raise BadRequest("the request body is empty; send a JSON object")
    try:
        data = json.loads(raw, parse_constant=_reject_constant, parse_float=_parse_float)
    except RecursionError:
        raise BadRequest(f"JSON nested too deeply (limit: {MAX_JSON_DEPTH} levels)") from None
    except (UnicodeDecodeError, ValueError) as exc:
        # ValueError also covers json.JSONDecodeError and integers over Python's 4300-digit limit.
        raise BadRequest(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    _check_values(data)
    return data


def _parse_job_id(job_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(job_id)
    except ValueError:
        return None


@api_view({"GET", "POST"})
def jobs(request: HttpRequest, user: Any) -> JsonResponse:
    """List jobs (GET) or enqueue one (POST)."""
    if request.method == "GET":
        return _list(request, user)
    if not user.has_perm(ENQUEUE_PERMISSION):
        return error(403, f"you lack the permission {ENQUEUE_PERMISSION!r} to enqueue jobs")
    try:
        body = parse_body(request)
    except BadRequest as bad:
        return error(400, str(bad))
    unknown = sorted(set(body) - ENQUEUE_FIELDS)
    if unknown:
        return error(400, f"unknown field(s): {', '.join(unknown)}", allowed=sorted(ENQUEUE_FIELDS))
    task, params, unique_key = body.get("task"), body.get("params", {}), body.get("unique_key")
    if not isinstance(task, str) or not task:
        return error(400, "'task' must be a job name string")
    if unique_key is not None and (not isinstance(unique_key, str) or not 0 < len(unique_key) <= UNIQUE_KEY_MAX_LENGTH):
        return error(400, f"'unique_key' must be a string of 1 to {UNIQUE_KEY_MAX_LENGTH} characters")
    try:
        job = services.job_enqueue(task=task, params=params, requested_by=user, unique_key=unique_key)
    except UnknownTask as exc:
        return error(400, str(exc))
    except InvalidParams as exc:
        return error(400, str(exc), details=exc.errors)
    except DuplicateJob as exc:
        return error(409, str(exc), existing_id=str(exc.existing_id) if exc.existing_id else None)
    return _accepted(job)


def _accepted(job: Job) -> JsonResponse:
    url = job_to_json(job)["url"]
    response = JsonResponse({"id": str(job.pk), "status": job.status, "url": url}, status=202)
    response["Location"] = url
    return response


def _encode_cursor(job: Job) -> str:
    return base64.urlsafe_b64encode(f"{job.created_at.isoformat()}|{job.pk}".encode()).decode()


def _decode_cursor(cursor: str) -> Q:
    try:
        created, _, pk = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        created_at, job_id = datetime.fromisoformat(created), uuid.UUID(pk)
        if created_at.tzinfo is None:
            raise ValueError("naive datetime")  # we only ever write aware ones
        created_at = created_at.astimezone(UTC)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("invalid cursor") from None
    return Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=job_id)


def _list(request: HttpRequest, user: Any) -> JsonResponse:
    status = request.GET.get("status") or None
    if status is not None and status not in JobStatus.values:
        return error(400, f"unknown status {status!r}", allowed=list(JobStatus.values))
    task = request.GET.get("task") or None
    if task is not None and "\x00" in task:
        return error(400, "'task' may not contain NUL characters")
    page_size = conf.get().page_size
    rows = selectors.job_list(user=user, status=status, task=task)
    if cursor := request.GET.get("cursor"):
        try:
            rows = rows.filter(_decode_cursor(cursor))
        except BadRequest as bad:
            return error(400, str(bad))
    page = list(rows[: page_size + 1])
    next_url = None
    if len(page) > page_size:
        page = page[:page_size]
        query = request.GET.copy()
        query["cursor"] = _encode_cursor(page[-1])
        next_url = f"{request.path}?{query.urlencode()}"
    return JsonResponse({"results": [job_to_json(job) for job in page], "next": next_url})


def _visible(user: Any, job_id: str) -> Job | None:
    parsed = _parse_job_id(job_id)
    return None if parsed is None else selectors.job_get(user=user, job_id=parsed)


@api_view({"GET"})
def job_detail(request: HttpRequest, user: Any, job_id: str) -> JsonResponse:
    """One job."""
    job = _visible(user, job_id)
    if job is None:
        return error(404, "no such job")
    return JsonResponse(job_to_json(job, show_traceback=user.is_staff))


@api_view({"POST"})
def job_cancel(request: HttpRequest, user: Any, job_id: str) -> JsonResponse:
    """Cancel a job: at once if READY, at its next progress check if RUNNING."""
    job = _visible(user, job_id)
    if job is None:
        return error(404, "no such job")
    try:
        services.job_cancel(job=job)
    except IllegalTransition as exc:
        return error(409, str(exc), status=job.status)
    return JsonResponse(job_to_json(job), status=202)


@api_view({"POST"})
def job_retry(request: HttpRequest, user: Any, job_id: str) -> JsonResponse:
    """Enqueue a new job like a FAILED or CANCELLED one."""
    job = _visible(user, job_id)
    if job is None:
        return error(404, "no such job")
    if not user.has_perm(ENQUEUE_PERMISSION):
        return error(403, f"you lack the permission {ENQUEUE_PERMISSION!r} to enqueue jobs")
    try:
        new = services.job_retry(job=job, requested_by=user)
    except IllegalTransition as exc:
        return error(409, str(exc), status=job.status)
    except DuplicateJob as exc:
        return error(409, str(exc), existing_id=str(exc.existing_id) if exc.existing_id else None)
    except (UnknownTask, InvalidParams) as exc:
        return error(409, f"this job can no longer be retried: {exc}")
    return _accepted(new)
