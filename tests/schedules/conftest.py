"""Helpers for the scheduler tests: UTC/local datetimes and a code table reduced to what a test needs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schedules.periodic import declared


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
       tz: str = "UTC") -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(tz))


@pytest.fixture
def code_table(settings: Any) -> Callable[..., None]:
    """`code_table(reconcile="* * * * *")`: only these code schedules, with these crons; none by default.

    Entries are named after their job (`maintenance.reconcile`); the keywords name the action part.
    """
    settings.GREENROOM_SCHEDULER_TIMEZONE = "UTC"

    def only(**crons: str) -> None:
        settings.GREENROOM_PERIODIC = {
            entry.name: crons.get(entry.name.rsplit(".", 1)[-1], "off") for entry in declared()
        }

    only()
    return only
