"""The dashboard's overview (page and live stream) and its Workers page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from workers import events, registry
from workers.dashboard import formatting, overview
from workers.dashboard.access import staff_only
from workers.models import FleetProcess

# Seconds between two events of the overview stream.
OVERVIEW_INTERVAL = 2.0
# Gone processes listed on the Workers page, newest beat first (rows are pruned after a day).
GONE_SHOWN = 100


@staff_only
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """GET /dashboard/: queues, throughput chart and live workers; live from /dashboard/events/."""
    return render(request, "dashboard/overview.html", {"section": "overview", "data": overview.snapshot()})


def overview_events() -> Iterator[bytes]:
    """An `overview` event at once and every OVERVIEW_INTERVAL, until the stream's time is up."""
    deadline = time.monotonic() + events.max_seconds()
    first = True
    try:
        while True:
            data = overview.snapshot()
            events.release_connection()
            yield events.sse_event("overview", data, retry_ms=events.RECONNECT_MS if first else None)
            first = False
            left = deadline - time.monotonic()
            if left < OVERVIEW_INTERVAL:
                return
            time.sleep(OVERVIEW_INTERVAL)
    finally:
        events.release_connection()


@staff_only
@require_GET
def overview_stream(request: HttpRequest) -> HttpResponseBase:
    """GET /dashboard/events/: the overview's numbers as server-sent events."""
    return events.sse_response(overview_events)


@dataclass(frozen=True)
class ProcessRow:
    """A FleetProcess as the Workers page shows it."""

    process: FleetProcess
    alive: bool
    beat_age: str
    memory_mib: str
    uptime: str


def _row(process: FleetProcess, *, alive: bool, now: datetime) -> ProcessRow:
    return ProcessRow(process=process, alive=alive, beat_age=formatting.age(process.heartbeat_at, now=now),
                      memory_mib=formatting.mib(process.rss_bytes),
                      uptime=formatting.duration((now - process.started_at).total_seconds()))


@staff_only
@require_GET
def workers(request: HttpRequest) -> HttpResponse:
    """GET /dashboard/workers/: live worker and scheduler processes, then the gone ones."""
    now = timezone.now()
    alive = list(registry.alive())
    gone = FleetProcess.objects.exclude(pk__in=[process.pk for process in alive]).order_by("-heartbeat_at")
    return render(request, "dashboard/workers.html", {
        "section": "workers",
        "alive": [_row(process, alive=True, now=now) for process in alive],
        "gone": [_row(process, alive=False, now=now) for process in gone[:GONE_SHOWN]],
        "missed_beats": registry.MISSED_BEATS,
    })
