"""Greenroom's settings, read in one place with their documented defaults.

`project/settings.py` fills them from the environment; a project that installs Greenroom into its own
settings may leave any of them out and gets the default written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

# Run jobs inline through the ledger instead of publishing them.
DEFAULT_EAGER = False
# Minimum seconds between two progress writes of one job.
DEFAULT_PROGRESS_INTERVAL = 0.5
# Seconds between heartbeat writes for the jobs a worker process is running.
DEFAULT_HEARTBEAT_INTERVAL = 3.0
# A RUNNING job whose heartbeat is older than this (seconds) is presumed dead.
DEFAULT_STALE_AFTER = 12.0
# Seconds between two outbox-relay / reconciler passes in each worker process.
DEFAULT_RELAY_INTERVAL = 5.0
# A READY row is left to the request that created it for this long (seconds) before the relay
# publishes it: the request publishes it itself right after commit.
DEFAULT_RELAY_GRACE = 2.0
# A READY job published this long ago (seconds), due and never started, while its queue is empty,
# lost its message (Redis restarted without persistence, a crash between mark and send): publish it
# again. The ledger's claim drops the duplicate should the old message turn up after all.
DEFAULT_REPUBLISH_AFTER = 600.0
# Resident-memory cap per worker process, MiB (0 disables it). The seeds run 400 MB workers.
DEFAULT_WORKER_MEMORY_CAP_MB = 400
# runstack's worker slots: "queue,queue:threads" separated by spaces, one process each.
DEFAULT_WORKERS = "interactive,default:4 batch,default:2"
# Page size of the job list API.
DEFAULT_PAGE_SIZE = 50
# Commit many jobs' claims and finish writes together: one writer thread per worker process batches them.
DEFAULT_LEDGER_GROUP_COMMIT = True


@dataclass(frozen=True)
class GreenroomSettings:
    """Typed view of the GREENROOM_* settings."""

    eager: bool
    progress_interval: float
    heartbeat_interval: float
    stale_after: float
    relay_interval: float
    relay_grace: float
    republish_after: float
    worker_memory_cap_mb: int
    workers: str
    page_size: int
    ledger_group_commit: bool


_current: GreenroomSettings | None = None


def get() -> GreenroomSettings:
    """The settings, read once (every job reads them) and read again after any setting changes
    (`override_settings` and pytest-django's `settings` fixture send `setting_changed`)."""
    global _current
    if _current is None:
        _current = _read()
    return _current


@receiver(setting_changed)
def _forget(**_kwargs: Any) -> None:
    global _current
    _current = None


def _read() -> GreenroomSettings:
    return GreenroomSettings(
        eager=getattr(settings, "GREENROOM_EAGER", DEFAULT_EAGER),
        progress_interval=getattr(settings, "GREENROOM_PROGRESS_INTERVAL", DEFAULT_PROGRESS_INTERVAL),
        heartbeat_interval=getattr(settings, "GREENROOM_HEARTBEAT_INTERVAL", DEFAULT_HEARTBEAT_INTERVAL),
        stale_after=getattr(settings, "GREENROOM_STALE_AFTER", DEFAULT_STALE_AFTER),
        relay_interval=getattr(settings, "GREENROOM_RELAY_INTERVAL", DEFAULT_RELAY_INTERVAL),
        relay_grace=getattr(settings, "GREENROOM_RELAY_GRACE", DEFAULT_RELAY_GRACE),
        republish_after=getattr(settings, "GREENROOM_REPUBLISH_AFTER", DEFAULT_REPUBLISH_AFTER),
        worker_memory_cap_mb=getattr(settings, "GREENROOM_WORKER_MEMORY_CAP_MB", DEFAULT_WORKER_MEMORY_CAP_MB),
        workers=getattr(settings, "GREENROOM_WORKERS", DEFAULT_WORKERS),
        page_size=getattr(settings, "GREENROOM_PAGE_SIZE", DEFAULT_PAGE_SIZE),
        ledger_group_commit=getattr(settings, "GREENROOM_LEDGER_GROUP_COMMIT", DEFAULT_LEDGER_GROUP_COMMIT),
    )
