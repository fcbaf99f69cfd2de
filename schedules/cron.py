"""Cron expressions: parsed with cron's meaning, computed with APScheduler 3's `CronTrigger`.

Two traps are handled here, once, for code and database schedules alike:

- Sunday. Cron numbers weekdays 0-7 with 0 and 7 both Sunday; APScheduler's `from_crontab` numbers
  them 0-6 from *Monday* (so `0` means Monday and `7` is an error), and periodiq never fires `sun`,
  `0` or `@weekly`. The day-of-week field is rewritten to weekday names before APScheduler sees it,
  so `0`, `7` and `sun` all mean Sunday and `1-5` means Monday to Friday.
- The repeated hour when clocks go back. APScheduler fires a fixed-hour schedule (e.g. `30 1 * * *`)
  twice on that night, once per offset; like cron, a schedule whose hour field is not a wildcard
  fires only the first of the two. Wildcard hours (`*/15 * * * *`) keep firing through both.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

# Cron's day-of-week numbers (0 and 7 are Sunday) → APScheduler's weekday names.
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
NAME_TO_CRON = {name: number for number, name in enumerate(WEEKDAYS)}
# The nicknames cron accepts, as five fields.
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class InvalidCron(ValueError):
    """The cron expression or its time zone is not valid."""


def _weekday(value: str) -> int:
    value = value.strip().lower()
    if value.isdigit():
        number = int(value)
        if not 0 <= number <= 7:
            raise InvalidCron(f"day of week {value!r} is not 0-7 (0 and 7 are Sunday)")
        return number % 7 if number != 7 else 7
    if value[:3] in NAME_TO_CRON:
        return NAME_TO_CRON[value[:3]]
    raise InvalidCron(f"day of week {value!r} is not a number 0-7 or a name sun-sat")


def normalise_day_of_week(field: str) -> str:
    """Rewrite a cron day-of-week field ('0', '1-5', 'sun,7', '*/2') as APScheduler weekday names."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        if step_text and not (step_text.isdigit() and int(step_text) > 0):
            raise InvalidCron(f"bad step in day of week {part!r}")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            first_text, _, last_text = span.partition("-")
            first, last = _weekday(first_text), _weekday(last_text)
            if last < first:
                raise InvalidCron(f"day-of-week range {span!r} runs backwards")
        else:
            first = _weekday(span)
            last = 7 if step_text else first  # cron: 'n/step' means from n to the end
        days.update(day % 7 for day in range(first, last + 1, step))
    if len(days) == 7:
        return "*"
    # APScheduler's weekday order starts on Monday; the order in the list does not matter to it.
    return ",".join(WEEKDAYS[day] for day in sorted(days))


def normalise(expr: str) -> str:
    """The five-field expression with aliases expanded and the day of week in names."""
    expr = " ".join(expr.split())
    expr = ALIASES.get(expr.lower(), expr)
    fields = expr.split(" ")
    if len(fields) != 5:
        raise InvalidCron(f"{expr!r} must have five fields: minute hour day-of-month month day-of-week")
    fields[4] = normalise_day_of_week(fields[4])
    return " ".join(fields)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; raise InvalidCron for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidCron(f"unknown time zone {name!r} (use an IANA name such as 'Europe/Lisbon')") from None


class Cron:
    """A validated cron expression in a time zone, yielding its fire times (UTC-comparable)."""

    def __init__(self, expr: str, tz: str = "UTC") -> None:
        self.expr = expr
        self.normalised = normalise(expr)
        self.tz = zone(tz)
        try:
            self.trigger = CronTrigger.from_crontab(self.normalised, timezone=self.tz)
        except ValueError as exc:
            raise InvalidCron(f"invalid cron expression {expr!r}: {exc}") from None
        # Fixed-hour schedules fire once in the hour that repeats when the clocks go back.
        self._fixed_hour = "*" not in self.normalised.split(" ")[1]

    def __repr__(self) -> str:
        return f"Cron({self.expr!r}, {self.tz.key!r})"

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time (in UTC) strictly after `after` (aware), or None if there is none."""
        # Step in UTC: aware arithmetic in a local zone is wall-clock and loses the DST fold.
        while True:
            start = (after.astimezone(UTC) + timedelta(microseconds=1)).astimezone(self.tz)
            slot: datetime | None = self.trigger.get_next_fire_time(None, start)
            if slot is None:
                return None
            if not self._is_repeat(slot):
                # In UTC: Python never finds an ambiguous local time equal to a time of another zone.
                return slot.astimezone(UTC)
            after = slot

    def slots(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """Fire times in (after, until], oldest first."""
        slot = self.next_after(after)
        while slot is not None and slot <= until:
            yield slot
            slot = self.next_after(slot)

    def _is_repeat(self, slot: datetime) -> bool:
        """Whether `slot` is the second pass of an ambiguous wall time of a fixed-hour schedule."""
        if not self._fixed_hour:
            return False
        wall = slot.replace(tzinfo=None)
        first = wall.replace(fold=0, tzinfo=self.tz)
        second = wall.replace(fold=1, tzinfo=self.tz)
        return first.utcoffset() != second.utcoffset() and slot.utcoffset() == second.utcoffset()
