"""When a team's scheduled posts fall due: cron slots in the team's own time zone.

A slot is identified by its UTC instant. The cron expression is evaluated on
local wall-clock time (croniter on naive datetimes), and each wall-clock time
is mapped to UTC with ``fold=0``:

- on the spring-forward day a wall-clock time that does not exist (02:30 in
  New York) maps to the same instant one hour later (03:30 EDT), once;
- on the fall-back day a wall-clock time that happens twice (01:30) fires at
  its first occurrence only.

Two wall-clock times that map to the same instant are one slot.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

MARGIN = timedelta(hours=3)
"""Wider than any UTC offset change, so no slot near a window's edge is missed."""


def slot_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a naive local wall-clock time (first occurrence; gaps shift forward)."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def slots_between(cron: str, zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The schedule's slots with ``start < slot <= end`` (aware datetimes), as sorted UTC instants."""
    if end <= start:
        return []
    local_start = start.astimezone(zone).replace(tzinfo=None) - MARGIN
    local_end = end.astimezone(zone).replace(tzinfo=None) + MARGIN
    found: set[datetime] = set()
    walls = croniter(cron, local_start)
    while (wall := walls.get_next(datetime)) <= local_end:
        instant = slot_instant(wall, zone)
        if start < instant <= end:
            found.add(instant)
    return sorted(found)


def next_slots(cron: str, zone: ZoneInfo, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` slots strictly after ``after``, as sorted UTC instants."""
    found: list[datetime] = []
    walls = croniter(cron, after.astimezone(zone).replace(tzinfo=None) - MARGIN)
    while True:
        instant = slot_instant(walls.get_next(datetime), zone)
        if instant > after and instant not in found:
            found = sorted([*found, instant])
        # Instants only step back across a gap, never by more than MARGIN.
        if len(found) >= count and instant > found[count - 1] + MARGIN:
            return found[:count]
