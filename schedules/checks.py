"""System checks: a schedule naming a job that does not exist, or a bad cron, fails at start-up."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.db import DatabaseError

from schedules.cron import Cron, InvalidCron
from schedules.periodic import periodic_jobs, timezone_name, unknown_overrides
from workers import catalogue


@checks.register()
def check_schedules(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for entry in periodic_jobs():
        errors += _check(f"periodic job {entry.name!r}", entry.task, entry.cron, timezone_name(),
                         "schedules/periodic.py")
    for name in unknown_overrides():
        errors.append(checks.Warning(f"GREENROOM_PERIODIC names {name!r}, which is not in the code table",
                                     hint="See schedules/periodic.py for the names.", id="schedules.W001"))
    try:
        from schedules.models import Schedule

        rows = list(Schedule.objects.values_list("name", "task", "cron", "timezone"))
    except DatabaseError:
        rows = []  # no table yet (before migrate) or no database: nothing to check
    for name, task, cron, tz in rows:
        errors += _check(f"schedule {name!r}", task, cron, tz, "the Schedule admin")
    return errors


def _check(what: str, task: str, cron: str, tz: str, where: str) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    if catalogue.get(task) is None:
        errors.append(checks.Error(f"{what} names the job {task!r}, which is not in the catalogue",
                                   hint=f"Fix it in {where}.", id="schedules.E001"))
    try:
        Cron(cron, tz)
    except InvalidCron as exc:
        errors.append(checks.Error(f"{what}: {exc}", hint=f"Fix it in {where}.", id="schedules.E002"))
    return errors
