"""Slots in a team's time zone: each wall-clock slot once, across both DST changes."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.slots import next_slots, slots_between

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")

# (zone, spring-forward day, fall-back day): 02:30 does not exist on the first, 01:30 (New York) or
# 02:30 (Berlin) happens twice on the second.
DST_DAYS = [
    (NEW_YORK, datetime(2026, 3, 8), datetime(2026, 11, 1)),
    (BERLIN, datetime(2026, 3, 29), datetime(2026, 10, 25)),
]


def ticked(cron, zone, start, end, step=timedelta(seconds=30)):
    """Slots found by ticks every ``step`` from ``start`` to ``end``, each tick looking since the last."""
    found = []
    previous = start
    while previous < end:
        now = min(previous + step, end)
        found.extend(slots_between(cron, zone, previous, now))
        previous = now
    return found


def local_day(day, zone):
    start = day.replace(tzinfo=zone).astimezone(UTC)
    return start, (day + timedelta(days=1)).replace(tzinfo=zone).astimezone(UTC)


@pytest.mark.parametrize(("zone", "spring", "fall"), DST_DAYS, ids=["new_york", "berlin"])
def test_spring_forward_slot_that_does_not_exist_fires_once_an_hour_later(zone, spring, fall):
    start, end = local_day(spring, zone)
    slots = ticked("30 2 * * *", zone, start, end)
    assert len(slots) == 1
    local = slots[0].astimezone(zone)
    assert (local.hour, local.minute) == (3, 30)  # the 02:30 that never was, once, right after the gap
    assert local.utcoffset() != zone.utcoffset(spring)  # already on summer time


@pytest.mark.parametrize(("zone", "spring", "fall"), DST_DAYS, ids=["new_york", "berlin"])
def test_fall_back_slot_that_happens_twice_fires_once_at_its_first_occurrence(zone, spring, fall):
    start, end = local_day(fall, zone)
    wall = "30 1 * * *" if zone is NEW_YORK else "30 2 * * *"
    slots = ticked(wall, zone, start, end)
    assert len(slots) == 1
    local = slots[0].astimezone(zone)
    assert local.fold == 0
    assert local.utcoffset() == zone.utcoffset(fall)  # still summer time: the first of the two
    assert local.hour == int(wall.split()[1])


@pytest.mark.parametrize(("zone", "spring", "fall"), DST_DAYS, ids=["new_york", "berlin"])
def test_every_half_hour_across_both_changes_each_wall_time_once(zone, spring, fall):
    for day, expected in ((spring, 46), (fall, 48)):
        start, end = local_day(day, zone)
        slots = ticked(
            "*/30 * * * *", zone, start - timedelta(seconds=1), end - timedelta(seconds=1), timedelta(minutes=7)
        )
        assert slots == sorted(set(slots))  # no instant twice
        walls = [s.astimezone(zone).replace(tzinfo=None) for s in slots]
        assert len(walls) == len(set(walls)) == expected  # 23-hour day: 46; 25-hour day: 48, none repeated


def test_daily_slot_in_the_teams_zone_is_identified_by_its_utc_instant():
    start = datetime(2026, 11, 9, 0, 0, tzinfo=UTC)
    slots = slots_between("0 10 * * *", ZoneInfo("Asia/Kolkata"), start, start + timedelta(days=2))
    assert slots == [datetime(2026, 11, 9, 4, 30, tzinfo=UTC), datetime(2026, 11, 10, 4, 30, tzinfo=UTC)]


def test_window_is_open_at_the_start_and_closed_at_the_end():
    slot = datetime(2026, 11, 9, 9, 0, tzinfo=UTC)
    assert slots_between("0 9 * * *", ZoneInfo("UTC"), slot - timedelta(minutes=1), slot) == [slot]
    assert slots_between("0 9 * * *", ZoneInfo("UTC"), slot, slot + timedelta(minutes=1)) == []
    assert slots_between("0 9 * * *", ZoneInfo("UTC"), slot, slot) == []


def test_next_slots_in_order_across_the_spring_gap():
    after = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)  # 01:00 EST
    slots = next_slots("*/30 * * * *", NEW_YORK, after, 4)
    assert [f"{s.astimezone(NEW_YORK):%H:%M %Z}" for s in slots] == ["01:30 EST", "03:00 EDT", "03:30 EDT", "04:00 EDT"]
