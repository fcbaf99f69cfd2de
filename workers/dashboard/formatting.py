"""Numbers as the dashboard shows them (plain text; the templates escape it like any other)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

NOTHING = "—"


def duration(seconds: float | None) -> str:
    """A short age or duration: "8 s", "12 min", "3 h", "2 d"; "—" for none."""
    if seconds is None:
        return NOTHING
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def age(moment: datetime | None, *, now: datetime | None = None) -> str:
    """How long ago `moment` was: "8 s ago"; "—" for none."""
    if moment is None:
        return NOTHING
    return f"{duration(((now or timezone.now()) - moment).total_seconds())} ago"


def mib(size: int | None) -> str:
    """Bytes as MiB with one decimal."""
    return NOTHING if not size else f"{size / (1024 * 1024):.1f}"


def rate(value: float | None) -> str:
    """A fraction as a percentage: "12.5 %"; "—" when there was nothing to divide."""
    return NOTHING if value is None else f"{100 * value:.1f} %"


def per_minute(count: int, minutes: int) -> str:
    """Jobs per minute over `minutes`: two decimals below 1 (a job an hour still shows), else one."""
    value = count / max(1, minutes)
    return f"{value:.2f}" if value < 1 else f"{value:.1f}"
