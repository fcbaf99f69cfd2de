"""The scheduler's tick: fire every due slot of every enabled schedule, code table and database.

`Scheduler(clock=...).tick()` is all `runscheduler` calls while it holds the lease; tests call it
with a fixed clock. Database schedules are re-read on every tick, so admin edits apply at the next
one. Rules (docs/schedules.md):

- A schedule that has never fired starts at the later of its own start and the moment this
  scheduler became active: nothing is fired for slots before start-up (periodiq's start-up trap).
- A schedule that has fired continues from its last handled slot. A slot more than `grace`
  seconds old when seen was missed; the misfire policy decides: `skip` fires none of them, `once`
  fires the latest one (unless an on-time slot fires in the same tick), `all` fires the `cap` most
  recent ones, oldest first. On-time slots always fire.
- Every fire goes through `schedule_fire`, which refuses a second job for a slot.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from schedules.cron import Cron, InvalidCron
from schedules.firing import schedule_fire
from schedules.models import Fire, MisfirePolicy, Schedule, code_schedules_switched_off
from schedules.periodic import PeriodicJob, periodic_jobs, timezone_name
from workers.errors import InvalidParams, UnknownTask

logger = logging.getLogger(__name__)

# Seconds after its time within which a slot is on time rather than missed.
DEFAULT_GRACE = 60.0
# Most missed slots remembered per schedule in one tick (bounds the work after a long downtime).
MAX_TRACKED_SLOTS = 2000

Clock = Callable[[], datetime]


def select_slots(slots: list[datetime], *, now: datetime, grace: float, policy: str, cap: int) -> list[datetime]:
    """The slots to fire among `slots` (oldest first), by the misfire policy."""
    limit = now - timedelta(seconds=grace)
    on_time = [slot for slot in slots if slot >= limit]
    missed = [slot for slot in slots if slot < limit]
    if policy == MisfirePolicy.ONCE:
        return on_time or missed[-1:]
    if policy == MisfirePolicy.ALL:
        return (missed[-cap:] if cap > 0 else []) + on_time
    return on_time


class Scheduler:
    """Fires due slots; one per process, `activate()`d each time it becomes the active scheduler."""

    def __init__(self, *, clock: Clock = timezone.now, grace: float | None = None) -> None:
        self.clock = clock
        if grace is None:
            grace = getattr(settings, "GREENROOM_SCHEDULER_GRACE", DEFAULT_GRACE)
        self.grace = float(grace)
        self.active_since: datetime | None = None
        self._handled: dict[str, datetime] = {}  # code schedules: latest slot dealt with
        self._reported: set[str] = set()  # code-table errors already logged

    def activate(self, now: datetime | None = None) -> None:
        """Start (again) as the active scheduler: forget what another process may have done since."""
        self.active_since = now or self.clock()
        self._handled.clear()

    def tick(self, now: datetime | None = None) -> list[Fire]:
        """Fire what is due at `now` (default: the clock); return the new fires."""
        now = now or self.clock()
        if self.active_since is None:
            self.activate(now)
        fires: list[Fire] = []
        switched_off = code_schedules_switched_off()
        for entry in periodic_jobs():
            if entry.name in switched_off:
                self._handled.pop(entry.key, None)  # switched back on: continue from the last fire
                continue
            fires += self._tick_code(entry, now)
        for schedule in Schedule.objects.filter(enabled=True):
            fires += self._tick_db(schedule, now)
        return fires

    def _tick_code(self, entry: PeriodicJob, now: datetime) -> list[Fire]:
        try:
            cron = Cron(entry.cron, timezone_name())
        except InvalidCron as exc:
            self._report(entry.key, f"periodic job {entry.name}: {exc}")
            return []
        baseline = self._handled.get(entry.key)
        if baseline is None:
            last = Fire.objects.filter(schedule_key=entry.key).aggregate(last=Max("slot"))["last"]
            assert self.active_since is not None
            baseline = last or self.active_since
        fires, handled, error = self._run(entry.key, cron, baseline, now, task=entry.task, params=entry.params,
                                          policy=entry.misfire_policy, cap=entry.misfire_cap)
        if error:
            self._report(entry.key, f"periodic job {entry.name}: {error}")
        self._handled[entry.key] = handled or baseline
        return fires

    def _tick_db(self, schedule: Schedule, now: datetime) -> list[Fire]:
        assert self.active_since is not None
        try:
            cron = schedule.parsed_cron()
        except InvalidCron as exc:
            self._save(schedule, last_error=str(exc))
            return []
        baseline = schedule.handled_until or max(schedule.active_since, self.active_since)
        fires, handled, error = self._run(schedule.key, cron, baseline, now, task=schedule.task,
                                          params=schedule.params, policy=schedule.misfire_policy,
                                          cap=schedule.misfire_cap, schedule=schedule)
        if handled is None and not error:
            return []
        updates: dict[str, Any] = {"last_error": error}
        if handled is not None:
            updates["handled_until"] = handled
            updates["next_fire_at"] = cron.next_after(max(now, handled))
        if fires:
            updates["last_fired_slot"] = fires[-1].slot
        self._save(schedule, **updates)
        return fires

    def _run(self, key: str, cron: Cron, baseline: datetime, now: datetime, *, task: str, params: dict[str, Any],
             policy: str, cap: int, schedule: Schedule | None = None) -> tuple[list[Fire], datetime | None, str]:
        """Fire the selected slots in (baseline, now]; return (fires, latest slot seen, error)."""
        slots = list(deque(cron.slots(baseline, now), maxlen=MAX_TRACKED_SLOTS))
        if not slots:
            return [], None, ""
        chosen = select_slots(slots, now=now, grace=self.grace, policy=policy, cap=cap)
        if len(chosen) < len(slots):
            logger.info("schedule %s: %d missed slot(s) passed over (policy %s)", key, len(slots) - len(chosen), policy)
        fires: list[Fire] = []
        for slot in chosen:
            try:
                fire = schedule_fire(schedule_key=key, slot=slot, task=task, params=params, schedule=schedule)
            except (UnknownTask, InvalidParams) as exc:
                # The slots are still marked as handled: a broken schedule must not retry every tick.
                return fires, slots[-1], f"{type(exc).__name__}: {exc}"
            if fire is not None:
                fires.append(fire)
        return fires, slots[-1], ""

    def _save(self, schedule: Schedule, **updates: Any) -> None:
        # Conditional on active_since: an admin edit made during this tick wins over the tick's writes.
        Schedule.objects.filter(pk=schedule.pk, active_since=schedule.active_since).update(**updates)

    def _report(self, key: str, message: str) -> None:
        if message not in self._reported:
            self._reported.add(message)
            logger.error("%s", message)
