"""How many calls the configured schedules and alert checks cost each source: a tick's plan and the calls a
day (``check``).

Counted, not guessed: from each KPI's row count and calls as ``check`` just read
them, with the plan the tick would choose (`bot.sources.ScansTogether`: count and
aged KPIs read together where one scan costs fewer calls; closed and value KPIs are
read alone, at the calls ``check`` measured for them). Teams whose slots fall on the
same instant are read by one tick, so the day's count plans each instant's
teams together. Signing in and ``describe`` are left out of the counts (a few
calls a tick at most, and only when the session or the module cache expired).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bot.config import Config, KpiConfig, TeamConfig
from bot.slots import slots_between
from bot.sources import ScanPlan, ScansTogether, Source

DAYS = 7
"""How far ahead the calls a day are counted."""


@dataclass(frozen=True)
class TickCalls:
    """One source's calls for reading a set of teams in one tick."""

    calls: int
    alone: int
    """The calls reading every KPI by itself would take."""
    scans: tuple[str, ...] = ()
    """Each shared scan in words: "4 KPIs (alpha/open, ...): 2 calls, 5 alone"."""


@dataclass(frozen=True)
class DayCalls:
    """A source's projected calls on its busiest day of the next `DAYS` days."""

    busiest: date
    calls: int
    average: float
    limit: int | None

    @property
    def over(self) -> bool:
        """Whether the busiest day needs more calls than the source allows a day."""
        return self.limit is not None and self.calls > self.limit


def tick_calls(
    sources: Mapping[str, Source], teams: Sequence[TeamConfig], calls_alone: Mapping[tuple[str, str], int]
) -> dict[str, TickCalls]:
    """Per source, the calls of one tick reading ``teams``; ``calls_alone``: each (team, KPI)'s calls read by
    itself as ``check`` measured them (for sources that do not plan their own)."""
    pairs: dict[str, list[tuple[TeamConfig, KpiConfig]]] = defaultdict(list)
    for team in teams:
        for kpi in team.kpis:
            pairs[kpi.source].append((team, kpi))
    found: dict[str, TickCalls] = {}
    for name, group in pairs.items():
        source = sources[name]
        plans: list[ScanPlan] = []
        # count KPIs as the source plans them (shared scans); other kinds, read alone, as check measured them
        group.sort(key=lambda pair: not pair[1].scannable)
        counting = [kpi for _, kpi in group if kpi.scannable] if isinstance(source, ScansTogether) else []
        if isinstance(source, ScansTogether):
            plans = source.plan_scans([(kpi.count, kpi.category) for kpi in counting])
        alone = (
            [source.calls_alone(kpi.count, kpi.category) for kpi in counting]
            if isinstance(source, ScansTogether)
            else []
        )
        alone += [calls_alone.get((team.id, kpi.id), 1) for team, kpi in group[len(counting) :]]
        shared = {member for plan in plans for member in plan.members}
        words = tuple(
            f"{len(plan.members)} KPIs ({', '.join(_label(*group[m]) for m in plan.members[:3])}"
            f"{', ...' if len(plan.members) > 3 else ''}): {plan.calls} calls, {plan.alone} alone"
            for plan in plans
        )
        calls = sum(plan.calls for plan in plans) + sum(n for at, n in enumerate(alone) if at not in shared)
        found[name] = TickCalls(calls=calls, alone=sum(alone), scans=words)
    return found


def daily_calls(
    config: Config,
    sources: Mapping[str, Source],
    calls_alone: Mapping[tuple[str, str], int],
    now: datetime,
) -> dict[str, DayCalls]:
    """Per source the scheduled teams and the alert checks read, its calls on the busiest of the next `DAYS`
    days (UTC days). A check at the instant of a post reads with it (the tick's reads share the cache)."""
    due: dict[datetime, list[TeamConfig]] = defaultdict(list)
    until = now + timedelta(days=DAYS)
    for team in config.teams:
        instants = set()
        if team.schedule and team.deliver:
            instants.update(slots_between(team.schedule, config.zone(team), now, until))
        if team.alerts is not None:
            instants.update(check_times(now, until, team.alerts.check_every))
        for instant in instants:
            due[instant].append(team)
    per_day: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    memo: dict[tuple[str, ...], dict[str, TickCalls]] = {}
    for slot, teams in due.items():
        key = tuple(team.id for team in teams)
        if key not in memo:
            memo[key] = tick_calls(sources, teams, calls_alone)
        for name, tick in memo[key].items():
            per_day[name][slot.date()] += tick.calls
    found = {}
    for name, days in per_day.items():
        busiest = max(days, key=lambda day: (days[day], day))
        limit = config.sources[name].daily_call_limit
        found[name] = DayCalls(busiest, days[busiest], sum(days.values()) / DAYS, limit)
    return found


def check_times(start: datetime, end: datetime, every: timedelta) -> list[datetime]:
    """The alert checks from ``start`` to ``end`` (excluded): the multiples of ``every`` since the epoch (UTC)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    first = epoch + -((epoch - start.astimezone(UTC)) // every) * every
    count = max(0, -((first - end.astimezone(UTC)) // every))
    return [first + n * every for n in range(count)]


def _label(team: TeamConfig, kpi: KpiConfig) -> str:
    return f"{team.id}/{kpi.id}"
