"""The statements behind `Readings.card_history` and `Readings.daily_series`, built once a form and
compiled once a dialect, the local days they ask about, and the readings a process has loaded already."""

from __future__ import annotations

import functools
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from bot.store.engine import to_utc
from bot.store.records import Reading
from bot.store.schema import POSTED_OUTCOMES, deliveries, kpi_latest, readings

RAW_TIME = sa.type_coerce(readings.c.taken_at, sa.String()).label("raw")
"""A reading's time as the driver gives it (no conversion): what tells a known reading is still the same."""


_Convert = Callable[[Any], Any]
LATEST_SPAN, POST_SPAN, POST_SLOT = -1, -2, -3
"""Row kinds of `history_query` besides its spans (0 .. days + 1)."""
KNOWN_READINGS = 4096
"""How many readings a store keeps in memory for `Store.card_history` (about 18 a KPI a team)."""


class KnownReadings:
    """Readings already loaded, by id, least recently used dropped first; shared by a process's threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._readings: OrderedDict[int, tuple[Any, Reading]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, reading_id: int, raw: Any) -> Reading | None:
        """The reading of ``reading_id`` if it is known with the stored time ``raw`` (else None)."""
        with self._lock:
            known = self._readings.get(reading_id)
            if known is None or known[0] != raw:
                return None
            self._readings.move_to_end(reading_id)
            return known[1]

    def put(self, reading_id: int, raw: Any, reading: Reading) -> Reading:
        """Remember ``reading`` (stored time ``raw``); returns it."""
        with self._lock:
            self._readings[reading_id] = (raw, reading)
            self._readings.move_to_end(reading_id)
            while len(self._readings) > self.size:
                self._readings.popitem(last=False)
        return reading


def day_spans(zone: ZoneInfo, days: int, now: datetime) -> tuple[list[date], list[tuple[int, datetime, datetime]]]:
    """The ``days`` local dates up to ``now``'s, oldest first, and each one's span in UTC, numbered from 0."""
    return local_days(zone, days, to_utc(now).astimezone(zone).date())


@functools.lru_cache(maxsize=256)
def local_days(zone: ZoneInfo, days: int, today: date) -> tuple[list[date], list[tuple[int, datetime, datetime]]]:
    """`day_spans` for a local date (the same all day: worked out once a day and zone)."""
    dates = [today - timedelta(days=days - 1 - i) for i in range(days)]
    bounds = [datetime.combine(d, time(0), zone).astimezone(UTC) for d in [*dates, today + timedelta(days=1)]]
    return dates, [(i, start, end) for i, (start, end) in enumerate(itertools.pairwise(bounds))]


def series(dates: list[date], found: list[tuple[int, Reading]]) -> dict[str, list[tuple[date, Reading | None]]]:
    """Per KPI, one point a date: the reading found for that date's span, else None."""
    points: dict[str, list[Reading | None]] = {}
    for day, reading in found:
        points.setdefault(reading.kpi_id, [None] * len(dates))[day] = reading
    return {kpi_id: list(zip(dates, series, strict=True)) for kpi_id, series in points.items()}


def nearest(moment: datetime, before: list[Reading], after: list[Reading]) -> dict[str, Reading]:
    """Per KPI, of the readings just before and just after ``moment``, the closer (before on a tie)."""
    near: dict[str, Reading] = {}
    for reading in before + after:
        known = near.get(reading.kpi_id)
        if known is None or abs(reading.taken_at - moment) < abs(known.taken_at - moment):
            near[reading.kpi_id] = reading
    return near


@functools.lru_cache(maxsize=16)
def history_sql(dialect: Dialect, days: int, with_post: bool) -> str:
    """`history_query` compiled for ``dialect`` once: it is then run as SQL text, without compiling or
    caching it again (its times go to the driver through `time_converters`)."""
    sql = str(history_query(days, with_post).compile(dialect=dialect))
    if "POSTCOMPILE" in sql:
        raise AssertionError("the statement has a parameter to expand at run time")
    return sql


@functools.lru_cache(maxsize=4)
def time_converters(dialect: Dialect) -> tuple[_Convert, _Convert]:
    """How a stored time goes to ``dialect``'s driver and comes back from it, as SQLAlchemy converts it."""
    time_type = readings.c.taken_at.type.dialect_impl(dialect)
    to_driver = time_type.bind_processor(dialect) or _as_is
    from_driver = time_type.result_processor(dialect, None) or _as_is
    return to_driver, from_driver


def _as_is(value: Any) -> Any:
    return value


@functools.lru_cache(maxsize=256)
def midnights(dialect: Dialect, zone: ZoneInfo, days: int, today: date) -> dict[str, Any]:
    """The parameters bound_0 .. bound_days of `history_query`, as ``dialect``'s driver takes them: the
    local midnights that start and end the ``days`` days up to ``today`` (worked out once a day and zone)."""
    _, spans = local_days(zone, days, today)
    to_driver = time_converters(dialect)[0]
    return {f"bound_{n}": to_driver(bound) for n, bound in enumerate([*(s for _, s, _ in spans), spans[-1][2]])}


@functools.lru_cache(maxsize=16)
def history_query(days: int, with_post: bool) -> sa.Select[Any] | sa.CompoundSelect[Any]:
    """The statement of `Store.card_history` (built once for each form: only its parameters change).

    One row a reading it names: ``span`` says which part of the card it is for
    (a day 0 .. days - 1, days: just before the week's moment, days + 1: just
    after, `LATEST_SPAN`, `POST_SPAN`), ``reading_id`` and ``raw`` its time;
    with ``with_post``, one more row (`POST_SLOT`) whose ``slot`` is the last post's (or NULL).
    """
    team_id = sa.bindparam("team_id", type_=sa.String())
    kpis = sa.select(kpi_latest.c.kpi_id).where(kpi_latest.c.team_id == team_id).cte("kpis")
    # LIMIT 1 OFFSET 0 written in the SQL: as parameters, SQLite's form would add two for every span.
    one: sa.ColumnElement[int] = sa.literal_column("1")
    zero: sa.ColumnElement[int] = sa.literal_column("0")
    arms: list[sa.Select[Any]] = [
        sa.select(
            sa.literal_column(str(LATEST_SPAN)).label("span"), kpi_latest.c.kpi_id, kpi_latest.c.reading_id
        ).where(kpi_latest.c.team_id == team_id)
    ]
    time_type = readings.c.taken_at.type
    bounds = [sa.bindparam(f"bound_{n}", type_=time_type) for n in range(days + 3)]
    spans = [*itertools.pairwise(bounds[: days + 1]), (bounds[days + 1], bounds[days + 2])]
    spans.append((bounds[days + 2], sa.bindparam("near_end", type_=time_type)))
    for n, (start, end) in enumerate(spans):
        # By time only, so the index gives the answer without sorting the span's readings.
        order = readings.c.taken_at if n == days + 1 else readings.c.taken_at.desc()
        reading_id = (
            sa.select(readings.c.id)
            .where(
                readings.c.team_id == team_id,
                readings.c.kpi_id == kpis.c.kpi_id,
                readings.c.taken_at >= start,
                readings.c.taken_at < end,
            )
            .order_by(order)
            .limit(one)
            .offset(zero)
            .scalar_subquery()
        )
        arms.append(sa.select(sa.literal_column(str(n)), kpis.c.kpi_id, reading_id))
    posted: list[sa.ColumnElement[Any]] = [sa.literal_column(f"'{o}'") for o in POSTED_OUTCOMES]  # no bind to expand
    last_slot = (
        sa.select(deliveries.c.slot_utc)
        .where(
            deliveries.c.team_id == team_id,
            deliveries.c.slot_utc < sa.bindparam("before", type_=deliveries.c.slot_utc.type),
            deliveries.c.outcome.in_(posted),
        )
        .order_by(deliveries.c.slot_utc.desc())
        .limit(one)
        .offset(zero)
        .scalar_subquery()
    )
    if with_post:
        arms.append(
            sa.select(sa.literal_column(str(POST_SPAN)), readings.c.kpi_id, readings.c.id).where(
                readings.c.team_id == team_id, readings.c.slot_utc == last_slot
            )
        )
    found = sa.union_all(*arms).cte("found")
    named = sa.select(
        found.c.span,
        readings.c.id.label("reading_id"),
        RAW_TIME,
        sa.cast(sa.null(), deliveries.c.slot_utc.type).label("slot"),
    ).join(found, readings.c.id == found.c.reading_id)
    if not with_post:
        return named
    slot_row = sa.select(sa.literal_column(str(POST_SLOT)), sa.null(), sa.null(), last_slot)
    return sa.union_all(named, slot_row)


@functools.lru_cache(maxsize=16)
def spans_query(count: int, newest: bool) -> sa.Select[Any]:
    """The query of `Store._last_in_spans` for ``count`` spans (built once: only its parameters change).

    Each (KPI, span) is one index lookup, however many readings the span holds.
    """
    team_id = sa.bindparam("team_id", type_=sa.String())
    kpis = sa.select(kpi_latest.c.kpi_id).where(kpi_latest.c.team_id == team_id).cte("kpis")
    # By time only, so the index gives the answer without sorting the span's readings.
    order = readings.c.taken_at.desc() if newest else readings.c.taken_at
    arms = []
    for n in range(count):
        reading_id = (
            sa.select(readings.c.id)
            .where(
                readings.c.team_id == team_id,
                readings.c.kpi_id == kpis.c.kpi_id,
                readings.c.taken_at >= sa.bindparam(f"start_{n}"),
                readings.c.taken_at < sa.bindparam(f"end_{n}"),
            )
            .order_by(order)
            .limit(1)
            .scalar_subquery()
        )
        arms.append(sa.select(kpis.c.kpi_id, sa.literal_column(str(n)).label("span"), reading_id.label("reading_id")))
    found = sa.union_all(*arms).cte("found")
    return sa.select(readings, found.c.span).join(found, readings.c.id == found.c.reading_id)
