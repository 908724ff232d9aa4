"""Quiet hours: when a notice that falls due may go out (pure: the time and the zone are given).

A notice falling due inside the team's quiet hours (its own wall-clock
window, which may run past midnight) is held until the window ends; every
notice a team holds for the same end goes out folded into one message then.
The window is read in the team's zone on each day, so it stays at the same
local hours across a DST change; an end that does not exist that day (the
hour skipped in spring) is taken as the same wall time on the clock after
the change (``fold=0``, see `zoneinfo`), which is after the window.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.alert_settings import QuietHours


def inside(at: datetime, quiet: QuietHours | None, zone: ZoneInfo) -> bool:
    """Whether ``at`` (aware) falls inside the quiet hours, in the team's zone."""
    return window_end(at, quiet, zone) is not None


def window_end(at: datetime, quiet: QuietHours | None, zone: ZoneInfo) -> datetime | None:
    """The end (UTC) of the quiet window holding ``at``; None when ``at`` is outside every window."""
    if quiet is None:
        return None
    local = at.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    day: date | None
    if quiet.start < quiet.end:
        day = local.date() if quiet.start <= wall < quiet.end else None
    elif wall >= quiet.start:
        day = local.date() + timedelta(days=1)
    else:
        day = local.date() if wall < quiet.end else None
    if day is None:
        return None
    ends = (datetime.combine(day, quiet.end, tzinfo=zone).replace(fold=fold).astimezone(UTC) for fold in (0, 1))
    return next((end for end in ends if end > at), None)  # in autumn's repeated hour, the second one may be it


def release_at(at: datetime, quiet: QuietHours | None, zone: ZoneInfo) -> datetime:
    """When a notice falling due at ``at`` may go out: at once, or at the end of the quiet window holding it."""
    return window_end(at, quiet, zone) or at.astimezone(UTC)
