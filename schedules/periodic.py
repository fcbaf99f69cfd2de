"""The code-defined periodic jobs, collected in one readable table.

Each is declared next to its job, periodiq-style: `@job("maintenance.reconcile", ...,
periodic=cron("* * * * *"), why="...")`. `declared()` collects them: the admin's schedule list
shows the table, and so does docs/schedules.md. Greenroom's own scheduler (`manage.py runscheduler`)
fires them, not periodiq's: see docs/schedules.md.

The defaults: maintenance.reconcile every minute; maintenance.prune_jobs at 03:30,
maintenance.cleanup_files at 03:45 and sources.sync_all at 02:00 nightly; llm.validate_all hourly.
Override an entry's cron, or turn it off, with GREENROOM_PERIODIC = {"<name>": "<cron>" | "off"};
the crons run in GREENROOM_SCHEDULER_TIMEZONE (default TIME_ZONE).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings

from workers import catalogue

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


def declared() -> tuple[PeriodicJob, ...]:
    """The table: every catalogue job declared with `periodic=cron(...)`, by name.

    An entry is named after its job (`maintenance.reconcile`): its fires are keyed
    `code:<job name>`, and GREENROOM_PERIODIC overrides it by that name.
    """
    return tuple(
        PeriodicJob(spec.name, spec.periodic, spec.name, why=spec.periodic_why)
        for spec in catalogue.all_jobs()
        if spec.periodic
    )


def periodic_jobs() -> list[PeriodicJob]:
    """The table with GREENROOM_PERIODIC applied: crons overridden, 'off' entries left out."""
    overrides: dict[str, str] = getattr(settings, "GREENROOM_PERIODIC", {}) or {}
    jobs = []
    for entry in declared():
        cron = overrides.get(entry.name, entry.cron)
        if str(cron).strip().lower() == OFF:
            continue
        jobs.append(replace(entry, cron=cron))
    return jobs


def unknown_overrides() -> list[str]:
    """Names in GREENROOM_PERIODIC that are not in the table (a typo silently does nothing otherwise)."""
    names = {entry.name for entry in declared()}
    return sorted(set(getattr(settings, "GREENROOM_PERIODIC", {}) or {}) - names)


def timezone_name() -> str:
    return str(getattr(settings, "GREENROOM_SCHEDULER_TIMEZONE", None) or settings.TIME_ZONE)
