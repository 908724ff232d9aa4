"""Reading a team's KPIs now: fetch within a budget, score, remember, fall back.

This is the one path behind `/score`, Refresh and the scheduled post. A KPI
whose source fails is shown with its last known value marked stale (with the
reason in words), or as "no data yet": never as 0.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from bot.config import KpiConfig, TeamConfig
from bot.errors import SourceError
from bot.sources import Deadline, FetchResult, Source, fold_onto
from bot.store import Snapshot, Store
from scoring import KpiRule, KpiScore, Status, score_kpi, worst_status

log = logging.getLogger(__name__)
HISTORY_LENGTH = 12


@dataclass(frozen=True)
class KpiReport:
    """One KPI as it will be shown: its score (None: no data yet) and freshness."""

    kpi: KpiConfig
    score: KpiScore | None
    as_of: datetime | None
    stale_reason: str | None = None
    fetch: FetchResult | None = None
    previous_at: datetime | None = None
    """When the reading that ``score.change`` compares against was taken."""

    @property
    def status(self) -> Status:
        """The KPI's status; UNKNOWN without data."""
        return self.score.status if self.score else Status.UNKNOWN


@dataclass(frozen=True)
class TeamReport:
    """A team's KPIs read at ``generated_at`` (UTC), to be shown in ``zone``."""

    team: TeamConfig
    kpis: tuple[KpiReport, ...]
    generated_at: datetime
    zone: str

    @property
    def status(self) -> Status:
        """The worst status of the team's KPIs."""
        return worst_status([k.status for k in self.kpis])

    @property
    def fresh(self) -> bool:
        """Whether every KPI was read just now."""
        return all(k.stale_reason is None and k.score is not None for k in self.kpis)

    @property
    def failures(self) -> list[str]:
        """The reasons of the KPIs that could not be read now."""
        return [f"{k.kpi.name}: {k.stale_reason}" for k in self.kpis if k.stale_reason]


def rule_of(kpi: KpiConfig) -> KpiRule:
    """The scoring rule a KPI's configuration describes."""
    return KpiRule(kpi.weights, kpi.target, kpi.warning, kpi.lower_is_better)


def score_with_history(kpi: KpiConfig, counts: Mapping[str, int], history: list[Snapshot]) -> KpiScore:
    """Score ``counts`` against earlier readings (re-scored with today's weights)."""
    rule = rule_of(kpi)
    past = [score_kpi(s.counts, rule).index for s in history]
    return score_kpi(counts, rule, previous=past[-1] if past else None, history=past)


class Reporter:
    """Reads teams' KPIs through their sources, records each reading in the store."""

    def __init__(
        self,
        sources: Mapping[str, Source],
        store: Store,
        clock: Callable[[], datetime],
        budget_seconds: float,
        max_workers: int = 8,
    ) -> None:
        self.sources = sources
        self.store = store
        self.clock = clock
        self.budget_seconds = budget_seconds
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fetch")

    def report(self, team: TeamConfig, zone: str) -> TeamReport:
        """Read every KPI of ``team`` within the budget, concurrently."""
        deadline = Deadline.after(self.budget_seconds)
        futures = [(kpi, self._pool.submit(self._fetch, kpi, deadline)) for kpi in team.kpis]
        now = self.clock()
        kpis = tuple(self._settle(team, kpi, future, deadline, now) for kpi, future in futures)
        return TeamReport(team=team, kpis=kpis, generated_at=now, zone=zone)

    def _fetch(self, kpi: KpiConfig, deadline: Deadline) -> FetchResult:
        result = self.sources[kpi.source].fetch(kpi.count, kpi.category, deadline)
        return replace(result, counts=fold_onto(result.counts, kpi.weights))

    def _settle(
        self, team: TeamConfig, kpi: KpiConfig, future: Future[FetchResult], deadline: Deadline, now: datetime
    ) -> KpiReport:
        try:
            history = self.store.recent_snapshots(team.id, kpi.id, HISTORY_LENGTH)
        except SQLAlchemyError as exc:
            log.error("team %s KPI %s: store unavailable (%s); no history", team.id, kpi.id, type(exc).__name__)
            history = []
        try:
            result = future.result(timeout=deadline.remaining() + 0.5)
        except FutureTimeout:
            reason = f"{self.sources[kpi.source].service} did not answer within {self.budget_seconds:g} s"
        except SourceError as exc:
            reason = str(exc)
        except Exception as exc:  # a fault in a source must give a stale card, not a 500 or a 0
            log.error(
                "team %s KPI %s: source %s failed with %s",
                team.id,
                kpi.id,
                kpi.source,
                type(exc).__name__,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            reason = f"{self.sources[kpi.source].service} failed unexpectedly ({type(exc).__name__})"
        else:
            score = score_with_history(kpi, result.counts, history)
            try:
                self.store.save_snapshot(team.id, kpi.id, now, result.counts, score.index)
            except SQLAlchemyError as exc:
                log.error("team %s KPI %s: reading not stored (%s)", team.id, kpi.id, type(exc).__name__)
            previous_at = history[-1].taken_at if history else None
            return KpiReport(kpi=kpi, score=score, as_of=now, fetch=result, previous_at=previous_at)
        log.warning("team %s KPI %s could not be read: %s", team.id, kpi.id, reason)
        if not history:
            return KpiReport(kpi=kpi, score=None, as_of=None, stale_reason=reason)
        *earlier, last = history
        return KpiReport(
            kpi=kpi,
            score=score_with_history(kpi, last.counts, earlier),
            as_of=last.taken_at,
            stale_reason=reason,
            previous_at=earlier[-1].taken_at if earlier else None,
        )
