"""Cron parsing: cron's Sunday (0, 7, sun), aliases, validation, and DST behaviour of the slots."""

from __future__ import annotations

import itertools
from zoneinfo import ZoneInfo

import pytest

from schedules.cron import Cron, InvalidCron, normalise
from tests.schedules.conftest import at


@pytest.mark.parametrize("expr", ["0 9 * * 0", "0 9 * * 7", "0 9 * * sun", "0 9 * * SUN", "0 9 * * 6-7"])
def test_sunday_is_0_7_and_sun_unlike_apscheduler_and_periodiq(expr):
    # 2027-03-28 is a Sunday, 2027-03-29 a Monday.
    slots = list(Cron(expr).slots(at(2027, 3, 27, 12), at(2027, 3, 29, 23)))
    assert at(2027, 3, 28, 9) in slots
    assert at(2027, 3, 29, 9) not in slots


def test_weekday_ranges_keep_crons_meaning():
    assert normalise("0 9 * * 1-5") == "0 9 * * mon,tue,wed,thu,fri"
    assert normalise("0 9 * * 0-6") == "0 9 * * *"
    slots = list(itertools.islice(Cron("0 9 * * 1-5").slots(at(2027, 3, 26), at(2027, 4, 30)), 3))
    assert [s.strftime("%a") for s in slots] == ["Fri", "Mon", "Tue"]


def test_weekly_alias_fires_on_sunday_midnight():
    assert list(Cron("@weekly").slots(at(2027, 3, 22), at(2027, 4, 5))) == [at(2027, 3, 28), at(2027, 4, 4)]


@pytest.mark.parametrize("expr", ["* * * *", "61 * * * *", "0 9 * * 8", "0 9 * * funday", "0 25 * * *", "@often"])
def test_a_bad_expression_is_refused_with_a_clear_message(expr):
    with pytest.raises(InvalidCron):
        Cron(expr)


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(InvalidCron, match="unknown time zone"):
        Cron("* * * * *", "Mars/Olympus")


def test_daily_local_time_keeps_its_wall_clock_across_spring_forward():
    # Lisbon: 2027-03-28 01:00 WET → 02:00 WEST. 09:00 local is 09:00 UTC before and 08:00 UTC after.
    slots = list(Cron("0 9 * * *", "Europe/Lisbon").slots(at(2027, 3, 27), at(2027, 3, 29, 12)))
    assert slots == [at(2027, 3, 27, 9), at(2027, 3, 28, 8), at(2027, 3, 29, 8)]
    assert all(slot.astimezone(ZoneInfo("Europe/Lisbon")).hour == 9 for slot in slots)


def test_a_local_time_skipped_by_spring_forward_fires_once_an_hour_later_in_wall_time():
    # 01:30 does not exist in Lisbon on 2027-03-28: it fires at 01:30 UTC (= 02:30 WEST), once.
    slots = list(Cron("30 1 * * *", "Europe/Lisbon").slots(at(2027, 3, 27, 12), at(2027, 3, 29, 12)))
    assert slots == [at(2027, 3, 28, 1, 30), at(2027, 3, 29, 0, 30)]


def test_a_repeated_local_time_fires_once_when_clocks_go_back():
    # Lisbon: 2027-10-31 02:00 WEST → 01:00 WET; 01:30 happens twice and fires only the first time.
    slots = list(Cron("30 1 * * *", "Europe/Lisbon").slots(at(2027, 10, 30, 12), at(2027, 11, 1, 12)))
    assert slots == [at(2027, 10, 31, 0, 30), at(2027, 11, 1, 1, 30)]


def test_a_wildcard_hour_keeps_firing_through_the_repeated_hour():
    slots = list(Cron("*/30 * * * *", "Europe/Lisbon").slots(at(2027, 10, 30, 23, 59), at(2027, 10, 31, 2)))
    assert len(slots) == 5  # every 30 minutes of real time, the repeated hour included
    assert slots[0] == at(2027, 10, 31, 0, 0)


def test_sao_paulo_daily_nine_oclock_on_both_sides_of_its_dst_start():
    # Brazil, 2018-11-04 00:00 → 01:00 (-03 → -02): 09:00 local is 12:00 UTC, then 11:00 UTC.
    slots = list(Cron("0 9 * * *", "America/Sao_Paulo").slots(at(2018, 11, 3), at(2018, 11, 5)))
    assert slots == [at(2018, 11, 3, 12), at(2018, 11, 4, 11)]
