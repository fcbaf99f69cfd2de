"""The Schedules page: code-defined periodic jobs and database schedules, with an on/off switch each.

A code schedule is switched with its `CodeScheduleSwitch` row (no row: enabled); a database schedule
through `Schedule.save()`, which recomputes its next fire and makes it start afresh from now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from schedules import periodic
from schedules.cron import Cron, InvalidCron
from schedules.models import CodeScheduleSwitch, Fire, Schedule, code_schedules_switched_off
from workers.dashboard.access import staff_only


@dataclass(frozen=True)
class ScheduleRow:
    """One schedule, code or database, as the page shows it."""

    key: str  # 'code:<name>' or 'db:<pk>'
    name: str
    task: str
    cron: str
    timezone: str
    enabled: bool
    next_run: datetime | None
    last_run: Fire | None
    note: str = ""


def _last_fire(key: str) -> Fire | None:
    return Fire.objects.filter(schedule_key=key).select_related("job").order_by("-slot").first()


def _code_rows(now: datetime) -> list[ScheduleRow]:
    switched_off = code_schedules_switched_off()
    zone = periodic.timezone_name()
    rows = []
    for entry in periodic.periodic_jobs():
        enabled = entry.name not in switched_off
        next_run, note = None, entry.why
        if enabled:
            try:
                next_run = Cron(entry.cron, zone).next_after(now)
            except InvalidCron as exc:
                note = f"invalid cron: {exc}"
        rows.append(ScheduleRow(key=entry.key, name=entry.name, task=entry.task, cron=entry.cron, timezone=zone,
                                enabled=enabled, next_run=next_run, last_run=_last_fire(entry.key), note=note))
    return rows


def _db_rows() -> list[ScheduleRow]:
    return [
        ScheduleRow(key=schedule.key, name=schedule.name, task=schedule.task, cron=schedule.cron,
                    timezone=schedule.timezone, enabled=schedule.enabled, next_run=schedule.next_fire_at,
                    last_run=_last_fire(schedule.key), note=schedule.last_error)
        for schedule in Schedule.objects.order_by("name")
    ]


@staff_only
@require_GET
def schedules(request: HttpRequest) -> HttpResponse:
    """GET /dashboard/schedules/."""
    now = timezone.now()
    return render(request, "dashboard/schedules.html", {
        "section": "schedules", "code_rows": _code_rows(now), "db_rows": _db_rows(),
        "switched_off_by_setting": sorted({entry.name for entry in periodic.declared()}
                                          - {entry.name for entry in periodic.periodic_jobs()}),
    })


@staff_only
@require_POST
def schedule_toggle(request: HttpRequest) -> HttpResponseBase:
    """POST schedule=<key>&enabled=0|1: switch one schedule on or off (the state asked for, not a flip,
    so that a form sent twice does not undo itself)."""
    key, enabled = request.POST.get("schedule", ""), request.POST.get("enabled") == "1"
    word = "on" if enabled else "off"
    kind, _, name = key.partition(":")
    if kind == "code" and name in {entry.name for entry in periodic.periodic_jobs()}:
        CodeScheduleSwitch.objects.update_or_create(name=name, defaults={"enabled": enabled})
        messages.success(request, f"Switched {word} {name}.")
    elif kind == "db" and name.isdigit() and (schedule := Schedule.objects.filter(pk=int(name)).first()):
        if schedule.enabled != enabled:
            schedule.enabled = enabled
            schedule.save()
        messages.success(request, f"Switched {word} {schedule.name}.")
    else:
        messages.error(request, "No such schedule.")
    return redirect("dashboard:schedules")
