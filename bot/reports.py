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

import functools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from bot.config import KpiConfig, TeamConfig
from bot.errors import SourceDataError, SourceError, SourceUnavailable
from bot.fetcher import Fetcher, Flight
from bot.sources import (
    Deadline,
    FetchResult,
    Finish,
    Item,
    RemembersRows,
    ScanPlan,
    ScansTogether,
    Source,
    Wanted,
    with_categories_of,
)
from bot.store import Reading, Store
from scoring import VALUE, KpiRule, KpiScore, Status, index_of, score_kpi, worst_status

log = logging.getLogger(__name__)
SPARK_DAYS = 14
"""The sparkline's length: one point a local day."""
WEEK = timedelta(days=7)
KEEP_HISTORY = timedelta(seconds=60)
"""The longest `/score` shows a team's history without reading it again while nothing changed: the
moment "7 days ago" moves with the clock (a new reading or post is seen on the next request)."""
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
    charts: Mapping[str, str] = field(default_factory=dict)
    """The KPIs' trend chart image URLs, by KPI id (`bot.chart_links.card_images`); empty when charts are off."""

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
    return KpiRule(kpi.weights, kpi.target, kpi.warning, kpi.lower_is_better, value=not kpi.counted)


def measure(kpi: KpiConfig, reading: Reading) -> Mapping[str, float]:
    """What a stored reading of ``kpi`` is scored from: its counts, or a value KPI's number (kept as its index)."""
    return reading.counts if kpi.counted else {VALUE: reading.index}


def measure_of(kpi: KpiConfig, result: FetchResult) -> Mapping[str, float]:
    """What a fresh read of ``kpi`` is scored from: its counts, or a value KPI's number."""
    if kpi.counted:
        return result.counts
    if result.value is None:
        raise SourceDataError(f"{kpi.source} gave no value for the value KPI {kpi.id}")
    return {VALUE: result.value}


@dataclass(frozen=True)
class TeamHistory:
    """What the store knows of a team before this read: what a card compares with."""

    latest: dict[str, Reading] = field(default_factory=dict)
    days: dict[str, list[tuple[date, Reading | None]]] = field(default_factory=dict)
    post: tuple[datetime, dict[str, Reading]] | None = None
    week: dict[str, Reading] = field(default_factory=dict)


@dataclass(frozen=True)
class _Kept:
    """A team's history as `/score` read it, valid while the team's change marker is ``version``, its
    local day is ``day`` and the clock is in [``since``, ``until``); and the KPI reports built from it."""

    version: int
    day: date
    since: datetime
    until: datetime
    history: TeamHistory
    shown: dict[str, KpiReport] = field(default_factory=dict)
    """Per KPI, the report of its stored reading."""

    def holds(self, version: int, day: date, now: datetime) -> bool:
        """Whether this history is still the one the store would give."""
        return version == self.version and day == self.day and self.since <= now < self.until


def score_reading(
    kpi: KpiConfig,
    counts: Mapping[str, float],
    *,
    previous: Mapping[str, float] | None = None,
    week_ago: Mapping[str, float] | None = None,
    days: Sequence[Mapping[str, float] | None] = (),
) -> KpiScore:
    """Score ``counts`` against earlier counts, every one re-scored with today's weights."""
    rule = rule_of(kpi)

    def index(past: Mapping[str, float] | None) -> float | None:
        return None if past is None else index_of(past, rule)

    return score_kpi(counts, rule, previous=index(previous), days=[index(d) for d in days], week_ago=index(week_ago))


def compare(
    team: TeamConfig, kpi: KpiConfig, counts: Mapping[str, float], shown_day: date, history: TeamHistory, today: date
) -> KpiReport:
    """The score of ``counts`` (read on local day ``shown_day``) against ``history``; as_of not yet set."""
    series = history.days.get(kpi.id, [])
    days: list[Mapping[str, float] | None] = [measure(kpi, r) if r else None for _, r in series] or [None] * SPARK_DAYS
    if shown_day == today:
        days[-1] = counts
    posted_at, post = history.post if history.post and team.schedule else (None, {})
    posted = post.get(kpi.id)
    if posted:
        previous: Reading | None = posted
        previous_at: datetime | None = posted_at
    else:
        earlier = [r for d, r in series if r and d < shown_day]
        previous = earlier[-1] if earlier else None
        previous_at = previous.taken_at if previous else None
    old_enough = any(r for d, r in series if d <= today - WEEK)
    week = history.week.get(kpi.id) if old_enough else None
    score = score_reading(
        kpi,
        counts,
        previous=measure(kpi, previous) if previous else None,
        week_ago=measure(kpi, week) if week else None,
        days=days,
    )
    return KpiReport(kpi=kpi, score=score, as_of=None, previous_at=previous_at, since_post=bool(posted))


@dataclass(frozen=True)
class ScanShare:
    """A KPI's part of a scan shared with other KPIs: the scan's flight, and which member of it the KPI is."""

    flight: Flight[dict[int, Finish]]
    member: int
    shared: bool = False
    """Whether another caller started the scan (a concurrent view of the same team)."""


def wanted_of(
    kpi: KpiConfig, since: datetime | None, now: datetime, new_in: Sequence[str] = (), new_after: datetime | None = None
) -> Wanted:
    """What a card asks of ``kpi``'s source besides the counts; ``since``: the team's previous post.

    An aged KPI counts the open items created before ``now`` less its days, oldest listed first; a closed KPI
    the items closed since then (neither says what is new); a value KPI asks for its number alone. An alert
    check also lists a count KPI's items of ``new_in`` created after ``new_after`` (its ``new_items``).
    """
    if kpi.kind == "value":
        return Wanted(kind="value")
    cutoff = now - timedelta(days=kpi.days) if kpi.days is not None else None
    new = since if kpi.kind == "count" else None
    listed = tuple(new_in) if new_after is not None else ()
    return Wanted(
        top=kpi.top,
        weights=kpi.weights,
        since=new,
        oldest=kpi.kind != "closed",
        kind=kpi.kind,
        cutoff=cutoff,
        new_in=listed,
        new_after=new_after if listed else None,
    )


class Reporter:
    """Reads teams' KPIs through their sources; records the readings in the store when asked to."""

    def __init__(
        self,
        sources: Mapping[str, Source],
        store: Store,
        clock: Callable[[], datetime],
        budget_seconds: float,
        *,
        cache_seconds: Mapping[str, float],
        max_concurrent: Mapping[str, int],
    ) -> None:
        self.sources = sources
        self.store = store
        self.clock = clock
        self.cache_seconds = dict(cache_seconds)
        self.fetcher = Fetcher(max_concurrent, budget_seconds)
        self._seeded_teams: set[str] = set()
        self._kept: dict[tuple[str, str], _Kept] = {}
        """Per (team, zone), the history `/score` read last (see `_kept_history`)."""

    def report(
        self,
        team: TeamConfig,
        zone: str,
        origin: str,
        *,
        record: bool,
        slot: datetime | None = None,
        cached: bool,
        scans: Mapping[str, ScanShare] | None = None,
        new_after: Mapping[str, datetime] | None = None,
    ) -> TeamReport:
        """Read every KPI of ``team`` within the budget, concurrently, and compare with its history.

        ``origin`` says who asks (a store origin: post, retry, score, refresh,
        send); ``record`` False (preview, dry runs) writes nothing to the store;
        ``slot`` is the post the reading is for (its previous post is the one
        before it). ``cached`` (``/score``) shows a KPI's last stored reading
        instead of reading again when it is younger than its source's
        ``cache_seconds``, whichever process took it; it also keeps the team's
        history while the store's change marker for the team says nothing
        changed (`_kept_history`). ``scans``: the KPIs' parts of scans started
        for several teams (`prefetch`); KPIs of the team that share a filter
        are read by one scan too. ``new_after`` (an alert check): per KPI id, list its items of the team's
        alert ``new_items`` categories created after that time; such a KPI is read, never taken from the cache
        (a stored reading does not list them).
        """
        now = self.clock()
        local = ZoneInfo(zone)
        kept = None
        with self.store.one_connection():
            if cached and slot is None:
                history, kept = self._kept_history(team, zone, now)
            else:
                history = self._history(team, local, now, slot or now)
        latest = history.latest
        self._seed(team, latest)
        since = history.post[0] if history.post else None  # what is new is what was created since
        after = new_after or {}
        new_in = team.alerts.new_items if team.alerts else []
        wants = {kpi.id: wanted_of(kpi, since, now, new_in, after.get(kpi.id)) for kpi in team.kpis}
        reading = [
            kpi
            for kpi in team.kpis
            if not (cached and self._young(kpi, latest.get(kpi.id), now) and not wants[kpi.id].lists_new)
        ]
        shares = {kpi.id: scans[kpi.id] for kpi in reading if scans and kpi.id in scans}
        shares |= self._team_scans(team, [kpi for kpi in reading if kpi.id not in shares])
        flights = {
            kpi.id: self.fetcher.start((team.id, kpi.id), kpi.source, self._read(kpi, wants[kpi.id]))
            for kpi in reading
            if kpi.id not in shares
        }
        kpis = tuple(
            self._settle(team, kpi, flights.get(kpi.id) or shares[kpi.id], wants[kpi.id], now, history, local)
            if kpi in reading
            else self._shown(team, kpi, now, history, local, kept)
            for kpi in team.kpis
        )
        if record:
            self._record(team, kpis, now, origin, slot)
        return TeamReport(team=team, kpis=kpis, generated_at=now, zone=zone)

    def prefetch(self, teams: Sequence[TeamConfig], *, cached: bool) -> dict[str, dict[str, ScanShare]]:
        """Start the scans that read the KPIs of ``teams`` in fewer calls than one read each (the tick: every
        team with a claimed slot, "team = X" filters read together); per team and KPI, its part, for `report`.
        ``cached`` (alert checks, which report with ``cached``): a KPI whose last reading is younger than its
        source's ``cache_seconds`` is left out, as `report` will show that reading, unless the team's alerts
        may list its new items (`report` reads those).

        A process's first look at a team gives its sources the stored row counts first, so a fresh process
        plans as a warm one does.
        """
        unseeded = [
            team
            for team in teams
            if team.id not in self._seeded_teams
            and any(isinstance(self.sources[kpi.source], RemembersRows) for kpi in team.kpis)
        ]
        if unseeded:
            no_rows: dict[tuple[str, str], int] = {}
            ids = [team.id for team in unseeded]
            stored = self._ask("row counts", unseeded[0], lambda: self.store.latest_rows(ids), no_rows)
            rows: dict[str, dict[str, int]] = {}
            for (team_id, kpi_id), number in stored.items():
                rows.setdefault(team_id, {})[kpi_id] = number
            for team in unseeded:
                self._seed_rows(team, rows.get(team.id, {}))
        pairs_read = [(team, kpi) for team in teams for kpi in team.kpis]
        if cached:
            pairs_read = self._not_young(pairs_read)
        shares: dict[str, dict[str, ScanShare]] = {}
        for source_name, plan, pairs, run in self._plan_scans(pairs_read):
            flight = self.fetcher.submit(source_name, run)
            for member in plan.members:
                team, kpi = pairs[member]
                shares.setdefault(team.id, {})[kpi.id] = ScanShare(flight, member)
        return shares

    @property
    def budget_seconds(self) -> float:
        """How long a read may take, from when it starts (``fetch_budget_seconds``)."""
        return self.fetcher.budget_seconds

    @budget_seconds.setter
    def budget_seconds(self, seconds: float) -> None:
        self.fetcher.budget_seconds = seconds

    def _not_young(self, pairs: list[tuple[TeamConfig, KpiConfig]]) -> list[tuple[TeamConfig, KpiConfig]]:
        """``pairs`` less the KPIs a cached report would show from the store (one query; all if it fails)."""
        if not pairs:
            return pairs
        ids = list(dict.fromkeys(team.id for team, _ in pairs))
        none: dict[tuple[str, str], datetime] = {}
        taken = self._ask("latest readings", pairs[0][0], lambda: self.store.latest_times(ids), none)
        now = self.clock()

        def young(team: TeamConfig, kpi: KpiConfig) -> bool:
            at = taken.get((team.id, kpi.id))
            fresh = at is not None and now - at < timedelta(seconds=self.cache_seconds[kpi.source])
            return fresh and not team.lists_new_items(kpi)

        return [(team, kpi) for team, kpi in pairs if not young(team, kpi)]

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
        if team.id not in self._seeded_teams:
            self._seed_rows(team, {kpi_id: r.rows for kpi_id, r in latest.items() if r.rows is not None})

    def _seed_rows(self, team: TeamConfig, rows: Mapping[str, int]) -> None:
        self._seeded_teams.add(team.id)
        for kpi in team.kpis:
            source, known = self.sources[kpi.source], rows.get(kpi.id)
            if known is not None and isinstance(source, RemembersRows) and kpi.kind == "count":
                source.seed_rows(kpi.count, kpi.category, known)

    def _team_scans(self, team: TeamConfig, kpis: Sequence[KpiConfig]) -> dict[str, ScanShare]:
        """Scans for the team's KPIs that share a filter, joined when the same scan is running already."""
        shares: dict[str, ScanShare] = {}
        for source_name, plan, pairs, run in self._plan_scans([(team, kpi) for kpi in kpis]):
            key = ("scan", team.id, tuple(pairs[m][1].id for m in plan.members))
            flight, new = self.fetcher.start(key, source_name, run)
            shares |= {pairs[m][1].id: ScanShare(flight, m, shared=not new) for m in plan.members}
        return shares

    def _plan_scans(self, pairs: Sequence[tuple[TeamConfig, KpiConfig]]) -> Iterator[_PlannedScan]:
        """Per source that reads KPIs together: each scan it plans for ``pairs``, with its members and its run
        (count and aged KPIs: an aged one keeps the scan's rows created before its cut-off; closed and value
        KPIs are read by themselves)."""
        counting = [(team, kpi) for team, kpi in pairs if kpi.scannable]
        for source_name, group in _by_source(counting).items():
            source = self.sources[source_name]
            if isinstance(source, ScansTogether):
                reads = [(kpi.count, kpi.category) for _, kpi in group]
                for plan in source.plan_scans(reads):
                    yield source_name, plan, group, functools.partial(source.scan, plan, reads)

    def _history(self, team: TeamConfig, zone: ZoneInfo, now: datetime, before: datetime) -> TeamHistory:
        """The team's latest readings and what its card compares with: one store statement (two when
        some of those readings are new to this process)."""

        def ask() -> TeamHistory:
            found = self.store.card_history(
                team.id, zone, SPARK_DAYS, now, now - WEEK, before if team.schedule else None
            )
            return TeamHistory(latest=found.latest, days=found.days, post=found.post, week=found.week)

        return self._ask("history", team, ask, _NO_HISTORY)

    def _kept_history(self, team: TeamConfig, zone: str, now: datetime) -> tuple[TeamHistory, _Kept | None]:
        """`/score`'s history of ``team``: kept from the last request while the team's change marker (a
        one-row read, bumped with every reading, delivery and pruning, by any process) is unchanged,
        the local day is the same and it is under `KEEP_HISTORY` old; else read and kept."""
        local = ZoneInfo(zone)
        version = self._ask("change marker", team, lambda: self.store.team_version(team.id), None)
        if version is None:
            return self._history(team, local, now, now), None
        today = now.astimezone(local).date()
        kept = self._kept.get((team.id, zone))
        if kept is not None and kept.holds(version, today, now):
            return kept.history, kept
        history = self._history(team, local, now, now)
        if history is _NO_HISTORY:  # the store failed: nothing to keep
            return history, None
        kept = _Kept(version, today, now, now + KEEP_HISTORY, history)
        self._kept[(team.id, zone)] = kept
        return history, kept

    def kept_history(self, team: TeamConfig, zone: str) -> tuple[int, datetime] | None:
        """The change marker of the history `/score` keeps for ``team`` in ``zone``, and when it stops being
        kept whatever the marker says (None: none kept)."""
        kept = self._kept.get((team.id, zone))
        return (kept.version, kept.until) if kept is not None else None

    def _shown(
        self, team: TeamConfig, kpi: KpiConfig, now: datetime, history: TeamHistory, zone: ZoneInfo, kept: _Kept | None
    ) -> KpiReport:
        """The KPI's stored reading as `_from_cache` shows it, built once per kept history."""
        if kept is not None and (shown := kept.shown.get(kpi.id)) is not None:
            return shown
        report = self._from_cache(team, kpi, history.latest[kpi.id], now, history, zone)
        if kept is not None:
            kept.shown[kpi.id] = report
        return report

    def _read(self, kpi: KpiConfig, wanted: Wanted) -> Callable[[Deadline], FetchResult]:
        def read(deadline: Deadline) -> FetchResult:
            result = self.sources[kpi.source].fetch(kpi.count, kpi.category, deadline, wanted)
            return with_categories_of(result, kpi.weights)

        return read

    def _from_cache(
        self, team: TeamConfig, kpi: KpiConfig, reading: Reading, now: datetime, history: TeamHistory, zone: ZoneInfo
    ) -> KpiReport:
        """The KPI's stored reading, with what the read behind it found (whichever process made that read)."""
        today = now.astimezone(zone).date()
        report = compare(team, kpi, measure(kpi, reading), reading.taken_at.astimezone(zone).date(), history, today)
        new_since = history.post[0] if history.post else None
        return replace(report, as_of=reading.taken_at, cached=True, fetch=fetch_of(reading), new_since=new_since)

    def _settle(
        self,
        team: TeamConfig,
        kpi: KpiConfig,
        pending: tuple[Flight[FetchResult], bool] | ScanShare,
        wanted: Wanted,
        now: datetime,
        history: TeamHistory,
        zone: ZoneInfo,
    ) -> KpiReport:
        today = now.astimezone(zone).date()
        service = self.sources[kpi.source].service
        try:
            result, shared = self._result(team, kpi, pending, wanted)
            measured = measure_of(kpi, result)
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
            report = compare(team, kpi, measured, today, history, today)
            return replace(report, as_of=now, fetch=result, new_since=wanted.since, shared=shared)
        log.warning("team %s KPI %s could not be read: %s", team.id, kpi.id, reason)
        last = history.latest.get(kpi.id)
        if last is None:
            return KpiReport(kpi=kpi, score=None, as_of=None, stale_reason=reason)
        report = compare(team, kpi, measure(kpi, last), last.taken_at.astimezone(zone).date(), history, today)
        return replace(report, as_of=last.taken_at, stale_reason=reason)

    def _result(
        self,
        team: TeamConfig,
        kpi: KpiConfig,
        pending: tuple[Flight[FetchResult], bool] | ScanShare,
        wanted: Wanted,
    ) -> tuple[FetchResult, bool]:
        """The KPI's fetch, and whether another caller started it; a shared scan that fails for another
        reason than time (a field one member's filter names is gone, say) leaves the KPI to read alone."""
        service = self.sources[kpi.source].service
        if isinstance(pending, ScanShare):
            try:
                finish = self.fetcher.wait(pending.flight, service)[pending.member]
            except SourceUnavailable:
                raise
            except SourceError as exc:
                log.info("team %s KPI %s: shared scan failed (%s); reading it alone", team.id, kpi.id, exc)
                pending = self.fetcher.start((team.id, kpi.id), kpi.source, self._read(kpi, wanted))
            else:
                return with_categories_of(finish(wanted), kpi.weights), pending.shared
        flight, new = pending
        return self.fetcher.wait(flight, service), not new

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
                extras=extras_of(k.fetch),
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


def extras_of(result: FetchResult) -> dict[str, Any] | None:
    """What a read found besides the counts (top items, oldest, new, closed), as JSON values for its reading.
    An alert's new items are not kept: an alert check reads a KPI whose new items it lists (`fetch_of`)."""
    extras: dict[str, Any] = {}
    if result.items:
        extras["items"] = [
            {"title": i.title, "category": i.category, "created": _iso(i.created), "link": i.link} for i in result.items
        ]
    if result.oldest is not None:
        extras |= {"oldest": _iso(result.oldest), "oldest_among": list(result.oldest_among)}
    for name, number in (("created_since", result.created_since), ("closed_since", result.closed_since)):
        if number is not None:
            extras[name] = number
    return extras or None


def fetch_of(reading: Reading) -> FetchResult:
    """The read behind a stored reading, as a card shows it: its counts and its `extras_of`. Its row count is
    left out, as a shown reading is never recorded again; so are an alert's new items, which an alert check
    reads afresh (`bot.alerts.runner`): readings stored before `extras_of` stopped keeping them may still hold
    ``new_items`` and ``new_total``, which are ignored."""
    extras = reading.extras or {}
    items = tuple(
        Item(title=i["title"], category=i["category"], created=_moment(i["created"]), link=i["link"])
        for i in extras.get("items", [])
    )
    return FetchResult(
        counts=reading.counts,
        plan=reading.plan or "",
        calls=0,
        items=items,
        oldest=_moment(extras.get("oldest")),
        oldest_among=tuple(extras.get("oldest_among", ())),
        created_since=extras.get("created_since"),
        closed_since=extras.get("closed_since"),
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


_NO_HISTORY = TeamHistory()
"""What a report compares with when the store cannot be read."""

_PlannedScan = tuple[str, ScanPlan, list[tuple[TeamConfig, KpiConfig]], Callable[[Deadline], dict[int, Finish]]]
"""A scan a source plans: the source's name, the plan, the (team, KPI) reads it indexes, and what runs it."""


def _by_source(pairs: Sequence[tuple[TeamConfig, KpiConfig]]) -> dict[str, list[tuple[TeamConfig, KpiConfig]]]:
    """``pairs`` by the name of their KPI's source, in order."""
    grouped: dict[str, list[tuple[TeamConfig, KpiConfig]]] = {}
    for team, kpi in pairs:
        grouped.setdefault(kpi.source, []).append((team, kpi))
    return grouped
