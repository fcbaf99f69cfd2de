"""The running job's handle: `current_job()` inside a job, for progress and cancel checks.

`progress()` is meant for tight loops: it only records the numbers in memory and writes them (and
checks for a cancel request) when `GREENROOM_PROGRESS_INTERVAL` has passed since the last write, so
a job writes at most 1/interval rows per second however often it calls it.
"""

from __future__ import annotations

import threading
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q
from django.utils import timezone

from workers.errors import JobCancelled
from workers.models import Job, JobStatus

PROGRESS_MESSAGE_MAX = 500


@dataclass
class JobContext:
    """What a running job knows about itself."""

    job_id: uuid.UUID
    task: str
    attempt: int
    progress_interval: float
    hard_deadline: float  # time.monotonic() after which the watchdog replaces the process
    message: Any = None  # the Dramatiq message being processed (None when eager)
    done: int = 0
    total: int | None = None
    note: str = ""
    _last_write: float = field(default=float("-inf"))
    _dirty: bool = False

    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        """Record progress; every `progress_interval` seconds also write it and check for cancel.

        Raises JobCancelled when the job was cancelled (or taken over after being presumed dead).
        """
        self.done, self.total, self.note = int(done), (None if total is None else int(total)), message
        self._dirty = True
        now = time.monotonic()
        if now - self._last_write >= self.progress_interval:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        """Write the recorded progress now; raise JobCancelled if the job may not go on."""
        self._last_write = time.monotonic() if now is None else now
        self._dirty = False
        still_ours = Q(
            pk=self.job_id, status=JobStatus.RUNNING, attempts=self.attempt, cancel_requested_at__isnull=True
        )
        if not Job.objects.filter(still_ours).update(**self.progress_fields(), heartbeat_at=timezone.now()):
            raise JobCancelled()

    def progress_fields(self) -> dict[str, Any]:
        return {
            "progress_done": max(0, self.done),
            "progress_total": self.total,
            "progress_message": self.note[:PROGRESS_MESSAGE_MAX],
        }

    def check_cancelled(self) -> None:
        """Raise JobCancelled at once if a cancel was requested (one query, unthrottled)."""
        self.flush()


_current: ContextVar[JobContext | None] = ContextVar("greenroom_current_job", default=None)

# Jobs running in this process, for the heartbeat and the hard-limit watchdog.
_running: dict[uuid.UUID, JobContext] = {}
_running_lock = threading.Lock()


def current_job() -> JobContext:
    """The handle of the job running in this thread; RuntimeError outside a job."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("current_job() called outside a running Greenroom job")
    return ctx


def enter(ctx: JobContext) -> object:
    with _running_lock:
        _running[ctx.job_id] = ctx
    return _current.set(ctx)


def leave(ctx: JobContext, token: object) -> None:
    with _running_lock:
        _running.pop(ctx.job_id, None)
    _current.reset(token)  # type: ignore[arg-type]


def running() -> list[JobContext]:
    """A snapshot of the jobs this process is running."""
    with _running_lock:
        return list(_running.values())
