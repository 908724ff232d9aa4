"""Reading a team's KPIs now: fetch within a budget, score against the history, record, fall back.

This is the one path behind `/score`, Refresh, the scheduled post, `preview`
and `send`. A KPI whose source fails is shown with its last known reading
marked stale (with the reason in words), or as "no data yet": never as 0.

What a card compares with comes from the store's readings, re-scored with
today's weights: the change against the team's previous post (a team without
a schedule, or before its first post: the last reading of an earlier local
day), the change against the reading closest to 7 days earlier (once the KPI
has readings that old), and a sparkline of one point a local day over 14 days.
A team's report asks the store a fixed number of queries, however many KPIs
it has; only a fetch writes a reading, and only when the caller records it.
The history is read before the fetches start, because each source is asked
what is new since the team's previous post.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from bot.config import KpiConfig, TeamConfig
from bot.errors import SourceError
from bot.fetcher import Fetcher, Flight
from bot.sources import Deadline, FetchResult, RemembersRows, Source, Wanted, with_categories_of
from bot.store import Reading, Store
from scoring import KpiRule, KpiScore, Status, score_kpi, worst_status

log = logging.getLogger(__name__)
SPARK_DAYS = 14
"""The sparkline's length: one point a local day."""
WEEK = timedelta(days=7)
_T = TypeVar("_T")


@dataclass(frozen=True)
class KpiReport:
    """One KPI as it will be shown: its score (None: no data yet) and freshness."""

    kpi: KpiConfig
    score: KpiScore | None
    as_of: datetime | None
    stale_reason: str | None = None
    fetch: FetchResult | None = None
    previous_at: datetime | None = None
    """When the value ``score.change`` compares against was posted (``since_post``) or read."""
    since_post: bool = False
    """Whether ``score.change`` is against the team's previous post (else an earlier day's last reading)."""
    new_since: datetime | None = None
    """The team's previous post: ``fetch.created_since`` counts the items created after it."""
    cached: bool = False
    """Whether this is the KPI's last stored reading, young enough to show without reading again."""
    shared: bool = False
    """Whether ``fetch`` is a read another report started (which records it)."""

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


@dataclass(frozen=True)
class TeamHistory:
    """What the store knows of a team before this read: what a card compares with."""

    latest: dict[str, Reading] = field(default_factory=dict)
    days: dict[str, list[tuple[date, Reading | None]]] = field(default_factory=dict)
    post: tuple[datetime, dict[str, Reading]] | None = None
    week: dict[str, Reading] = field(default_factory=dict)


def score_reading(
    kpi: KpiConfig,
    counts: Mapping[str, int],
    *,
    previous: Mapping[str, int] | None = None,
    week_ago: Mapping[str, int] | None = None,
    days: Sequence[Mapping[str, int] | None] = (),
) -> KpiScore:
    """Score ``counts`` against earlier counts, every one re-scored with today's weights."""
    rule = rule_of(kpi)

    def index(past: Mapping[str, int] | None) -> float | None:
        return None if past is None else score_kpi(past, rule).index

    return score_kpi(counts, rule, previous=index(previous), days=[index(d) for d in days], week_ago=index(week_ago))


def compare(
    team: TeamConfig, kpi: KpiConfig, counts: Mapping[str, int], shown_day: date, history: TeamHistory, today: date
) -> KpiReport:
    """The score of ``counts`` (read on local day ``shown_day``) against ``history``; as_of not yet set."""
    series = history.days.get(kpi.id) or [(today - timedelta(days=SPARK_DAYS - 1 - i), None) for i in range(SPARK_DAYS)]
    days: list[Mapping[str, int] | None] = [r.counts if r else None for _, r in series]
    if shown_day == today:
        days[-1] = counts
    posted = history.post[1].get(kpi.id) if history.post and team.schedule else None
    if history.post and posted:
        previous: Reading | None = posted
        previous_at: datetime | None = history.post[0]
    else:
        earlier = [r for d, r in series if r and d < shown_day]
        previous = earlier[-1] if earlier else None
        previous_at = previous.taken_at if previous else None
    old_enough = any(r for d, r in series if d <= today - WEEK)
    week = history.week.get(kpi.id) if old_enough else None
    score = score_reading(
        kpi,
        counts,
        previous=previous.counts if previous else None,
        week_ago=week.counts if week else None,
        days=days,
    )
    return KpiReport(kpi=kpi, score=score, as_of=None, previous_at=previous_at, since_post=bool(posted))


def wanted_of(kpi: KpiConfig, since: datetime | None) -> Wanted:
    """What a card asks of ``kpi``'s source besides the counts; ``since``: the team's previous post."""
    return Wanted(top=kpi.top, weights=kpi.weights, since=since, oldest=True)


class Reporter:
    """Reads teams' KPIs through their sources; records the readings in the store when asked to."""

    def __init__(
        self,
        sources: Mapping[str, Source],
        store: Store,
        clock: Callable[[], datetime],
        budget_seconds: float,
        *,
        cache_seconds: Mapping[str, float] | None = None,
        max_concurrent: Mapping[str, int] | None = None,
    ) -> None:
        self.sources = sources
        self.store = store
        self.clock = clock
        self.cache_seconds = {name: (cache_seconds or {}).get(name, 0.0) for name in sources}
        limits = {name: (max_concurrent or {}).get(name, 8) for name in sources}
        self.fetcher = Fetcher(limits, budget_seconds)
        self._seeded: set[tuple[str, str]] = set()
        self._last_fetch: dict[tuple[str, str], tuple[datetime, FetchResult]] = {}
        """Per (team, KPI), the read behind the last reading this process stored (its items, for the cache)."""

    def report(
        self,
        team: TeamConfig,
        zone: str,
        origin: str,
        *,
        record: bool = True,
        slot: datetime | None = None,
        cached: bool = False,
    ) -> TeamReport:
        """Read every KPI of ``team`` within the budget, concurrently, and compare with its history.

        ``origin`` says who asks (a store origin: post, retry, score, refresh,
        send); ``record`` False (preview, dry runs) writes nothing to the store;
        ``slot`` is the post the reading is for (its previous post is the one
        before it). ``cached`` (``/score``) shows a KPI's last stored reading
        instead of reading again when it is younger than its source's
        ``cache_seconds``, whichever process took it.
        """
        now = self.clock()
        local = ZoneInfo(zone)
        with self.store.one_connection():
            latest: dict[str, Reading] = self._ask(
                "latest readings", team, lambda: self.store.latest_readings(team.id), {}
            )
            history = self._history(team, local, now, slot or now, latest)
        self._seed(team, latest)
        since = history.post[0] if history.post else None  # what is new is what was created since
        flights: dict[str, tuple[Flight, bool]] = {}
        for kpi in team.kpis:
            if not (cached and self._young(kpi, latest.get(kpi.id), now)):
                flights[kpi.id] = self.fetcher.start((team.id, kpi.id), kpi.source, self._read(kpi, since))
        kpis = tuple(
            self._settle(team, kpi, flights[kpi.id], now, history, local)
            if kpi.id in flights
            else self._from_cache(team, kpi, latest[kpi.id], now, history, local)
            for kpi in team.kpis
        )
        if record:
            self._record(team, kpis, now, origin, slot)
        return TeamReport(team=team, kpis=kpis, generated_at=now, zone=zone)

    @property
    def budget_seconds(self) -> float:
        """How long a read may take, from when it starts (``fetch_budget_seconds``)."""
        return self.fetcher.budget_seconds

    @budget_seconds.setter
    def budget_seconds(self, seconds: float) -> None:
        self.fetcher.budget_seconds = seconds

    def _young(self, kpi: KpiConfig, reading: Reading | None, now: datetime) -> bool:
        """Whether ``reading`` is young enough to show for ``kpi`` without reading again."""
        return reading is not None and now - reading.taken_at < timedelta(seconds=self.cache_seconds[kpi.source])

    def _ask(self, what: str, team: TeamConfig, query: Callable[[], _T], fallback: _T) -> _T:
        try:
            return query()
        except SQLAlchemyError as exc:
            log.error("team %s: store unavailable (%s); no %s", team.id, type(exc).__name__, what)
            return fallback

    def _seed(self, team: TeamConfig, latest: dict[str, Reading]) -> None:
        """Give a source the row counts of the KPIs' last readings, once a process (they may predate it)."""
        for kpi in team.kpis:
            source, reading = self.sources[kpi.source], latest.get(kpi.id)
            if (team.id, kpi.id) in self._seeded or reading is None or reading.rows is None:
                continue
            self._seeded.add((team.id, kpi.id))
            if isinstance(source, RemembersRows):
                source.seed_rows(kpi.count, kpi.category, reading.rows)

    def _history(
        self, team: TeamConfig, zone: ZoneInfo, now: datetime, before: datetime, latest: dict[str, Reading]
    ) -> TeamHistory:
        def ask() -> TeamHistory:
            return TeamHistory(
                latest=latest,
                days=self.store.daily_series(team.id, zone, SPARK_DAYS, now),
                post=self.store.last_post(team.id, before) if team.schedule else None,
                week=self.store.reading_near(team.id, now - WEEK),
            )

        return self._ask("history", team, ask, TeamHistory(latest=latest))

    def _read(self, kpi: KpiConfig, since: datetime | None) -> Callable[[Deadline], FetchResult]:
        def read(deadline: Deadline) -> FetchResult:
            result = self.sources[kpi.source].fetch(kpi.count, kpi.category, deadline, wanted_of(kpi, since))
            return with_categories_of(result, kpi.weights)

        return read

    def _from_cache(
        self, team: TeamConfig, kpi: KpiConfig, reading: Reading, now: datetime, history: TeamHistory, zone: ZoneInfo
    ) -> KpiReport:
        """The KPI's stored reading, with the items of the read behind it when this process made that read."""
        today = now.astimezone(zone).date()
        report = compare(team, kpi, reading.counts, reading.taken_at.astimezone(zone).date(), history, today)
        taken_at, fetch = self._last_fetch.get((team.id, kpi.id), (None, None))
        new_since = history.post[0] if history.post else None
        if taken_at != reading.taken_at:
            fetch = None
        return replace(report, as_of=reading.taken_at, cached=True, fetch=fetch, new_since=new_since)

    def _settle(
        self,
        team: TeamConfig,
        kpi: KpiConfig,
        flight: tuple[Flight, bool],
        now: datetime,
        history: TeamHistory,
        zone: ZoneInfo,
    ) -> KpiReport:
        today = now.astimezone(zone).date()
        service = self.sources[kpi.source].service
        try:
            result = self.fetcher.wait(flight[0], service)
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
            reason = f"{service} failed unexpectedly ({type(exc).__name__})"
        else:
            report = compare(team, kpi, result.counts, today, history, today)
            new_since = history.post[0] if history.post else None
            return replace(report, as_of=now, fetch=result, new_since=new_since, shared=not flight[1])
        log.warning("team %s KPI %s could not be read: %s", team.id, kpi.id, reason)
        last = history.latest.get(kpi.id)
        if last is None:
            return KpiReport(kpi=kpi, score=None, as_of=None, stale_reason=reason)
        report = compare(team, kpi, last.counts, last.taken_at.astimezone(zone).date(), history, today)
        return replace(report, as_of=last.taken_at, stale_reason=reason)

    def _record(
        self, team: TeamConfig, kpis: tuple[KpiReport, ...], now: datetime, origin: str, slot: datetime | None
    ) -> None:
        """Store the fresh readings of this report, in one transaction."""
        readings = [
            Reading(
                team_id=team.id,
                kpi_id=k.kpi.id,
                taken_at=now,
                origin=origin,
                counts=k.fetch.counts,
                index=k.score.index,
                rows=k.fetch.rows,
                plan=k.fetch.plan,
                slot=slot,
            )
            for k in kpis
            if k.fetch is not None
            and k.score is not None
            and k.stale_reason is None
            and not k.cached
            and not (k.shared and slot is None)  # a post keeps its own reading; views leave it to the starter
        ]
        try:
            self.store.add_readings(readings)
        except SQLAlchemyError as exc:
            log.error("team %s: readings not stored (%s)", team.id, type(exc).__name__)
            return
        for k in kpis:
            if k.fetch is not None and any(r.kpi_id == k.kpi.id for r in readings):
                self._last_fetch[(team.id, k.kpi.id)] = (now, k.fetch)
