"""Server-sent events (SSE) from a WSGI process: a job's progress as it changes, and the helpers the
dashboard's overview stream shares.

    GET /api/jobs/<id>/events/   `event: progress` (data: the API's job JSON) at once and whenever the
                                 status, progress or message changed; `event: end` once the job has
                                 finished, then the stream closes. Owner or staff; others 404.

A stream is a StreamingHttpResponse over a generator, so each open stream holds one thread of the web
server (gunicorn gthread, runserver) for up to GREENROOM_SSE_MAX_SECONDS. Two bounds keep that cheap:
at most GREENROOM_SSE_MAX_STREAMS streams per process (one more answers 503 with Retry-After, and the
page falls back to polling the JSON API), and every stream ends itself after the maximum age (the
browser's EventSource reconnects after `retry:` milliseconds). Between two reads the stream gives its
database connection back, so that a page left open does not pin one.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from workers import selectors
from workers.models import Job
from workers.serializers import job_to_json
from workers.views import api_view, error

# Seconds between two reads of the job's row while its stream is open.
POLL_INTERVAL = 0.5
# Seconds without an event after which a comment line is sent, so that proxies keep the stream open
# (and a stream whose browser has gone notices it: the write fails).
KEEPALIVE_INTERVAL = 15.0
# Milliseconds the browser waits before it reconnects a stream that ended (the `retry:` field).
RECONNECT_MS = 1000
# Seconds a stream stays open before it ends itself (GREENROOM_SSE_MAX_SECONDS).
DEFAULT_MAX_SECONDS = 60.0
# Open streams per process (GREENROOM_SSE_MAX_STREAMS); one more is refused with 503.
DEFAULT_MAX_STREAMS = 16
# Seconds a refused client is asked to wait (Retry-After of the 503).
RETRY_AFTER_SECONDS = 5
KEEPALIVE = b": keepalive\n\n"


def max_seconds() -> float:
    return float(getattr(settings, "GREENROOM_SSE_MAX_SECONDS", DEFAULT_MAX_SECONDS))


def max_streams() -> int:
    return int(getattr(settings, "GREENROOM_SSE_MAX_STREAMS", DEFAULT_MAX_STREAMS))


def sse_event(event: str, data: Any, *, retry_ms: int | None = None) -> bytes:
    """One event in the text/event-stream format (JSON data on one line)."""
    lines = [f"retry: {retry_ms}"] if retry_ms is not None else []
    lines += [f"event: {event}", f"data: {json.dumps(data, cls=DjangoJSONEncoder, separators=(',', ':'))}"]
    return ("\n".join(lines) + "\n\n").encode()


class StreamSlots:
    """The open streams of this process, counted against a limit (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = 0

    @property
    def open(self) -> int:
        return self._open

    def acquire(self, limit: int) -> bool:
        with self._lock:
            if self._open >= limit:
                return False
            self._open += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._open = max(0, self._open - 1)


SLOTS = StreamSlots()


class EventStream:
    """The events of one stream; holds a slot until the server closes the response.

    A WSGI server calls the response's close() when the stream ended or the client went away, and
    Django passes that on to this object's close() (a generator that never started would not run its
    `finally`, which is why the slot is released here and not in the generator).
    """

    def __init__(self, events: Iterator[bytes], slots: StreamSlots) -> None:
        self._events = events
        self._slots = slots
        self._closed = False

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> bytes:
        return next(self._events)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._events, "close", None)
            if close is not None:
                close()
        finally:
            self._slots.release()


def sse_response(events: Callable[[], Iterator[bytes]]) -> HttpResponseBase:
    """A text/event-stream response over `events()`, or 503 when this process serves enough streams."""
    if not SLOTS.acquire(max_streams()):
        refused: JsonResponse = error(503, "too many open event streams; poll the JSON API instead")
        refused["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return refused
    response = StreamingHttpResponse(EventStream(events(), SLOTS), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


def release_connection() -> None:
    """Give the database connection back between two reads of a stream.

    Left alone inside a transaction (a test's, or ATOMIC_REQUESTS), where closing it would break it.
    """
    if not connection.in_atomic_block:
        connection.close()


def _state(job: Job) -> tuple[Any, ...]:
    return (job.status, job.progress_done, job.progress_total, job.progress_message,
            job.cancel_requested_at is not None)


def job_events(job_id: uuid.UUID, *, show_traceback: bool = False) -> Iterator[bytes]:
    """Events of one job until it finishes or the stream's time is up (see the module docstring)."""
    deadline = time.monotonic() + max_seconds()
    last_state: tuple[Any, ...] | None = None
    last_write = time.monotonic()
    first = True
    try:
        while True:
            job = Job.objects.filter(pk=job_id).first()
            release_connection()
            if job is None:  # deleted (pruned) while someone watched it
                yield sse_event("end", {"id": str(job_id), "status": None}, retry_ms=RECONNECT_MS if first else None)
                return
            state = _state(job)
            if state != last_state or job.is_finished:
                data = job_to_json(job, show_traceback=show_traceback)
                if state != last_state:
                    yield sse_event("progress", data, retry_ms=RECONNECT_MS if first else None)
                    first, last_state, last_write = False, state, time.monotonic()
                if job.is_finished:
                    yield sse_event("end", data)
                    return
            now = time.monotonic()
            if now >= deadline:
                return
            if now - last_write >= KEEPALIVE_INTERVAL:
                yield KEEPALIVE
                last_write = now
            time.sleep(min(POLL_INTERVAL, deadline - now))
    finally:
        release_connection()


@api_view({"GET"})
def job_stream(request: HttpRequest, user: Any, job_id: str) -> HttpResponseBase:
    """The progress stream of a job the user may see (the API's authentication and visibility)."""
    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        return error(404, "no such job")
    if selectors.job_get(user=user, job_id=parsed) is None:
        return error(404, "no such job")
    show_traceback = bool(user.is_staff)
    return sse_response(lambda: job_events(parsed, show_traceback=show_traceback))
