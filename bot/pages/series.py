"""A team's daily series as chart points: one value a local day, None where nothing was read.

Values are re-scored with today's weights, as the card's are, so the chart, the
card and the status page agree on every day's index.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.config import TeamConfig
from bot.pages.chart import Point
from bot.reports import measure, rule_of
from bot.store import Reading, Store
from scoring import score_kpi

DaySeries = list[tuple[date, Reading | None]]


def team_series(store: Store, team: TeamConfig, zone: ZoneInfo, days: int, now: datetime) -> dict[str, DaySeries]:
    """Every KPI's readings, one a day (the day's last) for ``days`` local days up to ``now``, oldest first."""
    found = store.daily_series(team.id, zone, days, now)
    today = now.astimezone(zone).date()
    empty = [(today - timedelta(days=days - 1 - i), None) for i in range(days)]
    return {kpi.id: found.get(kpi.id) or list(empty) for kpi in team.kpis}


def points(team: TeamConfig, kpi_id: str, series: DaySeries) -> list[Point]:
    """The KPI's daily index values (None: no reading that day)."""
    kpi = next(k for k in team.kpis if k.id == kpi_id)
    rule = rule_of(kpi)
    return [(day, None if reading is None else score_kpi(measure(kpi, reading), rule).index) for day, reading in series]


def day_end(day: date, zone: ZoneInfo, now: datetime) -> datetime:
    """The moment a chart of local day ``day`` ends: ``now`` for today, else the day's last microsecond."""
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone) - timedelta(microseconds=1)
    return min(end, now)
