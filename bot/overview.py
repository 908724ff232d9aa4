"""Every team at a glance, from the readings already stored: `/score all` and `preview all`.

The overview reads no source. With hundreds of teams a live read would mean
hundreds of CRM queries inside one Chat request (about 30 s, and each source
has its own pace and budget), so it shows each team's latest stored reading,
which the scheduled posts, `/score` and Refresh keep fresh, and says how old
it is. Each KPI is judged against its own target and compared with its own
reading of about 7 days earlier, both re-scored with today's weights. Teams
are ordered worst status first, then by how much they worsened in the week
relative to their own target; nothing is numbered or ranked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import Config, KpiConfig, TeamConfig
from bot.reports import measure, rule_of
from bot.store import Reading, Store
from scoring import KpiScore, Status, score_kpi, worst_status

WEEK = timedelta(days=7)
_SEVERITY = {Status.UNKNOWN: 0, Status.BAD: 1, Status.WARNING: 2, Status.GOOD: 3}
"""Sort order, worst first (as `worst_status` ranks them: no data outranks bad)."""


@dataclass(frozen=True)
class KpiGlance:
    """One KPI's latest stored reading, judged today; ``score`` None when it was never read."""

    kpi: KpiConfig
    score: KpiScore | None
    read_at: datetime | None

    @property
    def status(self) -> Status:
        """The KPI's status; UNKNOWN without a reading."""
        return self.score.status if self.score else Status.UNKNOWN

    @property
    def worsening(self) -> float | None:
        """The week's change as a share of the target, positive when the KPI got worse; None without one."""
        if self.score is None or self.score.week_change is None:
            return None
        worse = self.score.week_change if self.kpi.lower_is_better else -self.score.week_change
        return worse / max(abs(self.kpi.target), 1.0)


@dataclass(frozen=True)
class TeamGlance:
    """A team's KPIs as last read."""

    team: TeamConfig
    kpis: tuple[KpiGlance, ...]

    @property
    def status(self) -> Status:
        """The worst status of the team's KPIs."""
        return worst_status([k.status for k in self.kpis])

    @property
    def read_at(self) -> datetime | None:
        """When the team's oldest shown reading was taken (None if a KPI was never read)."""
        times = [k.read_at for k in self.kpis]
        return None if any(t is None for t in times) else min(t for t in times if t is not None)

    @property
    def worsening(self) -> float | None:
        """The most any of its KPIs worsened in the week, relative to its own target."""
        changes = [w for k in self.kpis if (w := k.worsening) is not None]
        return max(changes) if changes else None

    def worst_first(self) -> tuple[KpiGlance, ...]:
        """The team's KPIs, worst status first, then most worsened."""
        return tuple(sorted(self.kpis, key=_kpi_order))


def glance(team: TeamConfig, latest: dict[str, Reading], week_ago: dict[str, Reading]) -> TeamGlance:
    """``team``'s KPIs judged on their ``latest`` readings, compared with those of a week earlier."""
    kpis = []
    for kpi in team.kpis:
        reading = latest.get(kpi.id)
        if reading is None:
            kpis.append(KpiGlance(kpi, None, None))
            continue
        rule = rule_of(kpi)
        past = week_ago.get(kpi.id)
        old = score_kpi(measure(kpi, past), rule).index if past and past.taken_at < reading.taken_at else None
        kpis.append(KpiGlance(kpi, score_kpi(measure(kpi, reading), rule, week_ago=old), reading.taken_at))
    return TeamGlance(team, tuple(kpis))


def overview(
    config: Config, store: Store, now: datetime, teams: Sequence[TeamConfig] | None = None
) -> list[TeamGlance]:
    """Every team (``teams`` as they run, else the configuration's), worst first, from the store's latest
    readings (two queries a team, no source read)."""
    chosen = config.teams if teams is None else teams
    glances = [glance(t, store.latest_readings(t.id), store.reading_near(t.id, now - WEEK)) for t in chosen]
    return sorted(glances, key=_team_order)


def _team_order(team: TeamGlance) -> tuple[int, float, str]:
    worsening = team.worsening
    return (_SEVERITY[team.status], -(worsening if worsening is not None else float("-inf")), team.team.name)


def _kpi_order(kpi: KpiGlance) -> tuple[int, float]:
    worsening = kpi.worsening
    return (_SEVERITY[kpi.status], -(worsening if worsening is not None else float("-inf")))
