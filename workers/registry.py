"""The fleet registry: each worker and scheduler process beats its own `FleetProcess` row.

Worker processes beat from their housekeeping thread (every GREENROOM_HEARTBEAT_INTERVAL), the
scheduler on every loop; the dashboard's Workers page, `manage.py jobs stats` and the metrics read
the rows. A process is alive while its beat is younger than `alive_window()`; rows of processes gone
for a day are pruned by maintenance.prune_jobs.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import psutil
from django.db.models import QuerySet
from django.utils import timezone

from workers import conf
from workers.models import FleetProcess

# Beats a process may miss before it counts as gone.
MISSED_BEATS = 3
# Rows of processes gone for longer than this are deleted by `prune_processes`.
KEEP_GONE_FOR = timedelta(days=1)


@cache
def _identity(pid: int) -> tuple[str, str, Any]:
    process = psutil.Process(pid)
    host = socket.gethostname()
    started = datetime.fromtimestamp(process.create_time(), tz=UTC)
    return f"{host}:{pid}:{int(process.create_time() * 1000)}", host, started


def process_id() -> str:
    """This process's registry id: host, pid and start time (a reused pid is another process)."""
    return _identity(os.getpid())[0]


def process_beat(
    *,
    kind: str,
    queues: Iterable[str] = (),
    threads: int = 0,
    running: Iterable[dict[str, str]] = (),
    active: bool = False,
) -> None:
    """Write this process's row: what it serves, what it runs now, its memory, and the time."""
    pid = os.getpid()
    row_id, host, started = _identity(pid)
    now = timezone.now()
    fields = {"kind": kind, "host": host, "pid": pid, "queues": sorted(queues), "threads": threads,
              "running": list(running), "rss_bytes": psutil.Process(pid).memory_info().rss, "active": active,
              "heartbeat_at": now, "stopped_at": None}
    # One UPDATE on every beat but the first.
    if not FleetProcess.objects.filter(pk=row_id).update(**fields):
        FleetProcess.objects.update_or_create(id=row_id, defaults=fields,
                                              create_defaults={**fields, "started_at": started})


def process_stopped() -> None:
    """Mark this process's row as stopped (a clean shutdown; a killed process just stops beating)."""
    FleetProcess.objects.filter(pk=process_id()).update(stopped_at=timezone.now(), running=[], active=False)


def alive_window() -> timedelta:
    return timedelta(seconds=MISSED_BEATS * max(conf.get().heartbeat_interval, 1.0))


def alive(kind: str | None = None) -> QuerySet[FleetProcess]:
    """Processes that beat recently and did not stop."""
    rows = FleetProcess.objects.filter(heartbeat_at__gte=timezone.now() - alive_window(), stopped_at__isnull=True)
    return rows.filter(kind=kind) if kind else rows


def prune_processes() -> int:
    """Delete rows of processes gone for longer than KEEP_GONE_FOR; returns how many."""
    deleted, _ = FleetProcess.objects.filter(heartbeat_at__lt=timezone.now() - KEEP_GONE_FOR).delete()
    return deleted
