"""The code-defined periodic jobs, in one readable table.

Each entry is a periodiq-style cron string next to the job it enqueues and why it runs. Greenroom's
own scheduler (`manage.py runscheduler`) fires them, not periodiq's: see docs/schedules.md.
Override an entry's cron, or turn it off, with GREENROOM_PERIODIC = {"<name>": "<cron>" | "off"};
the crons run in GREENROOM_SCHEDULER_TIMEZONE (default TIME_ZONE).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings

OFF = "off"


@dataclass(frozen=True)
class PeriodicJob:
    """One code-defined schedule: `task` with `params`, at every `cron` slot."""

    name: str
    cron: str
    task: str
    params: dict[str, Any] = field(default_factory=dict)
    why: str = ""
    # What to do with slots missed while no scheduler ran: "skip", "once" or "all" (see docs/schedules.md).
    misfire_policy: str = "skip"
    misfire_cap: int = 10

    @property
    def key(self) -> str:
        """The schedule key of its fires: 'code:<name>'."""
        return f"code:{self.name}"


PERIODIC_JOBS: tuple[PeriodicJob, ...] = (
    PeriodicJob("reconcile", "* * * * *", "maintenance.reconcile",
                why="heal pass: stale RUNNING jobs, lost messages, missing embeddings"),
    PeriodicJob("prune_jobs", "30 3 * * *", "maintenance.prune_jobs",
                why="delete finished jobs past GREENROOM_JOB_RETENTION_DAYS"),
    PeriodicJob("cleanup_files", "45 3 * * *", "maintenance.cleanup_files",
                why="delete expired and orphan PDFs and temporary files"),
    PeriodicJob("sync_sources", "0 2 * * *", "sources.sync_all",
                why="refresh every documentation source overnight"),
    PeriodicJob("validate_llm_apis", "0 * * * *", "llm.validate_all",
                why="notice a revoked key or a dead endpoint within the hour"),
)


def periodic_jobs() -> list[PeriodicJob]:
    """The table with GREENROOM_PERIODIC applied: crons overridden, 'off' entries left out."""
    overrides: dict[str, str] = getattr(settings, "GREENROOM_PERIODIC", {}) or {}
    jobs = []
    for entry in PERIODIC_JOBS:
        cron = overrides.get(entry.name, entry.cron)
        if str(cron).strip().lower() == OFF:
            continue
        jobs.append(replace(entry, cron=cron))
    return jobs


def unknown_overrides() -> list[str]:
    """Names in GREENROOM_PERIODIC that are not in the table (a typo silently does nothing otherwise)."""
    names = {entry.name for entry in PERIODIC_JOBS}
    return sorted(set(getattr(settings, "GREENROOM_PERIODIC", {}) or {}) - names)


def timezone_name() -> str:
    return str(getattr(settings, "GREENROOM_SCHEDULER_TIMEZONE", None) or settings.TIME_ZONE)
