"""Readings and the history queries: what a fetch wrote, and what a card compares with."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.store.changes import bump
from bot.store.engine import Database, to_utc, utc_aware
from bot.store.history import (
    KNOWN_READINGS,
    LATEST_SPAN,
    POST_SLOT,
    POST_SPAN,
    RAW_TIME,
    KnownReadings,
    day_spans,
    history_sql,
    local_days,
    midnights,
    nearest,
    series,
    spans_query,
    time_converters,
)
from bot.store.records import CardHistory, Reading
from bot.store.schema import POSTED_OUTCOMES, deliveries, kpi_latest, readings

_TICK = timedelta(microseconds=1)
"""The smallest step between two stored times: turns ``<=`` into ``<``."""


class Readings(Database):
    """KPI readings: one row a fetch, each KPI's latest, and the history a card compares with."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._known = KnownReadings(KNOWN_READINGS)

    def add_readings(self, new: list[Reading]) -> None:
        """Record fetches, and point each KPI's latest at the newest of them: two statements, one transaction."""
        if not new:
            return
        rows = [
            {
                "team_id": reading.team_id,
                "kpi_id": reading.kpi_id,
                "taken_at": to_utc(reading.taken_at),
                "origin": reading.origin,
                "counts": json.dumps(reading.counts, sort_keys=True),
                "index_value": reading.index,
                "rows": reading.rows,
                "plan": reading.plan,
                "slot_utc": to_utc(reading.slot) if reading.slot else None,
                "extras": json.dumps(reading.extras, sort_keys=True) if reading.extras is not None else None,
            }
            for reading in new
        ]
        columns = (readings.c.id, readings.c.team_id, readings.c.kpi_id, readings.c.taken_at)
        with self.engine.begin() as conn:
            added = conn.execute(readings.insert().values(rows).returning(*columns)).all()
            newest: dict[tuple[str, str], Any] = {}
            for row in added:
                known = newest.get((row.team_id, row.kpi_id))
                if known is None or (utc_aware(row.taken_at), row.id) > (utc_aware(known.taken_at), known.id):
                    newest[(row.team_id, row.kpi_id)] = row
            _point_latest(conn, [{**row._mapping, "reading_id": row.id} for row in newest.values()])
            bump(conn, {reading.team_id for reading in new})

    def latest_readings(self, team_id: str) -> dict[str, Reading]:
        """Each KPI's newest reading (one query, however long the history)."""
        with self._connect() as conn:
            return {r.kpi_id: _reading(r) for r in conn.execute(_LATEST, {"team_id": team_id})}

    def latest_rows(self, team_ids: Sequence[str]) -> dict[tuple[str, str], int]:
        """The row count of each KPI's newest reading, for ``team_ids``, by (team, KPI); one query."""
        query = (
            sa.select(readings.c.team_id, readings.c.kpi_id, readings.c.rows)
            .join(kpi_latest, kpi_latest.c.reading_id == readings.c.id)
            .where(kpi_latest.c.team_id.in_(team_ids), readings.c.rows.is_not(None))
        )
        with self._connect() as conn:
            return {(r.team_id, r.kpi_id): r.rows for r in conn.execute(query)}

    def latest_times(self, team_ids: Sequence[str]) -> dict[tuple[str, str], datetime]:
        """When each KPI of ``team_ids`` was last read, by (team, KPI); one query."""
        query = sa.select(kpi_latest.c.team_id, kpi_latest.c.kpi_id, kpi_latest.c.taken_at).where(
            kpi_latest.c.team_id.in_(team_ids)
        )
        with self._connect() as conn:
            return {(r.team_id, r.kpi_id): utc_aware(r.taken_at) for r in conn.execute(query)}

    def recent_readings(self, team_id: str, limit: int = 20) -> list[Reading]:
        """The team's latest ``limit`` readings (every KPI), newest first."""
        query = (
            sa.select(readings)
            .where(readings.c.team_id == team_id)
            .order_by(readings.c.taken_at.desc(), readings.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_reading(r) for r in conn.execute(query)]

    def daily_series(
        self, team_id: str, zone: ZoneInfo, days: int, now: datetime
    ) -> dict[str, list[tuple[date, Reading | None]]]:
        """Per KPI, one point per local day in ``zone``: the day's last reading, None for a day without one.

        Exactly ``days`` points, oldest first, the last one today (``now``'s
        local date). KPIs with no reading in those days are left out. One
        query, an index lookup per KPI and day however many readings a day has.
        """
        dates, spans = day_spans(zone, days, now)
        return series(dates, self._last_in_spans(team_id, spans, newest=True))

    def reading_near(self, team_id: str, moment: datetime, within: timedelta = timedelta(days=1)) -> dict[str, Reading]:
        """Per KPI, the reading closest to ``moment`` among those at most ``within`` away from it."""
        moment = to_utc(moment)
        before = self._last_in_spans(team_id, [(0, moment - within, moment + _TICK)], newest=True)
        after = self._last_in_spans(team_id, [(1, moment + _TICK, moment + within + _TICK)], newest=False)
        return nearest(moment, [r for _, r in before], [r for _, r in after])

    def card_history(
        self,
        team_id: str,
        zone: ZoneInfo,
        days: int,
        now: datetime,
        near: datetime,
        post_before: datetime | None,
        within: timedelta = timedelta(days=1),
    ) -> CardHistory:
        """Everything a team's card compares with, in one statement: each KPI's latest reading,
        `daily_series` (``days`` local days up to ``now``), `reading_near` ``near`` and, unless
        ``post_before`` is None, `last_post` before it; each the same as those methods give.

        The statement names the readings by id; readings are never changed once written, so
        those this process has loaded before are taken from memory (checked against their
        stored time) and only the others are loaded, in a second statement.
        """
        today = to_utc(now).astimezone(zone).date()
        dates, _ = local_days(zone, days, today)
        sql = history_sql(self.engine.dialect, days, post_before is not None)
        to_driver, from_driver = time_converters(self.engine.dialect)
        near = to_utc(near)
        # bound_0 .. bound_days: the days' midnights (the same all day); then the spans around the week's moment.
        times = {f"bound_{days + 1}": near - within, f"bound_{days + 2}": near + _TICK}
        times["near_end"] = near + within + _TICK
        if post_before is not None:
            times["before"] = to_utc(post_before)
        params = midnights(self.engine.dialect, zone, days, today) | {k: to_driver(v) for k, v in times.items()}
        params["team_id"] = team_id
        with self._connect() as conn:
            rows = conn.exec_driver_sql(sql, params).all()
            found = self._load(conn, [(r.reading_id, r.raw) for r in rows if r.reading_id is not None])
        latest: dict[str, Reading] = {}
        in_days: list[tuple[int, Reading]] = []
        before: list[Reading] = []
        after: list[Reading] = []
        posted: list[tuple[Reading, int]] = []
        slot: datetime | None = None
        for row in rows:
            if row.span == POST_SLOT:
                slot = utc_aware(from_driver(row.slot)) if row.slot is not None else None
                continue
            reading = found.get(row.reading_id)
            if reading is None:  # deleted (retention) between the two statements
                continue
            if row.span == LATEST_SPAN:
                latest[reading.kpi_id] = reading
            elif row.span == POST_SPAN:
                posted.append((reading, row.reading_id))
            elif row.span < days:
                in_days.append((row.span, reading))
            else:
                (before if row.span == days else after).append(reading)
        posted.sort(key=lambda pair: (pair[0].taken_at, pair[1]))
        return CardHistory(
            latest=latest,
            days=series(dates, in_days),
            post=(slot, {r.kpi_id: r for r, _ in posted}) if slot else None,
            week=nearest(near, before, after),
        )

    def _load(self, conn: Connection, wanted: list[tuple[int, Any]]) -> dict[int, Reading]:
        """The readings of ids ``(id, stored time as the driver gives it)``: from memory, the rest in one query."""
        found: dict[int, Reading] = {}
        missing = []
        for reading_id, raw in wanted:
            reading = self._known.get(reading_id, raw)
            if reading is None:
                missing.append(reading_id)
            else:
                found[reading_id] = reading
        if missing:
            for row in conn.execute(_BY_ID, {"ids": sorted(set(missing))}):
                found[row.id] = self._known.put(row.id, row.raw, _reading(row))
        return found

    def _last_in_spans(
        self, team_id: str, spans: list[tuple[int, datetime, datetime]], *, newest: bool
    ) -> list[tuple[int, Reading]]:
        """For each KPI of the team and each ``(number, start, end)`` span, its newest (else oldest)
        reading with ``start <= taken_at < end``, as ``(number, reading)``; one query."""
        params: dict[str, Any] = {"team_id": team_id}
        for n, (_, start, end) in enumerate(spans):
            params |= {f"start_{n}": to_utc(start), f"end_{n}": to_utc(end)}
        with self._connect() as conn:
            rows = conn.execute(spans_query(len(spans), newest), params).all()
        return [(spans[r.span][0], _reading(r)) for r in rows]

    def last_post(self, team_id: str, before: datetime) -> tuple[datetime, dict[str, Reading]] | None:
        """The team's latest post (a slot or manual send delivered to a target) before ``before``,
        and per KPI the reading taken for it; None if nothing was posted yet.

        A KPI that could not be read for that post (it showed its last known value) is left out.
        """
        with self._connect() as conn:
            slot = conn.execute(_LAST_POST, {"team_id": team_id, "before": to_utc(before)}).scalar()
            if slot is None:
                return None
            rows = conn.execute(_POST_READINGS, {"team_id": team_id, "slot": slot}).all()
        return utc_aware(slot), {r.kpi_id: _reading(r) for r in rows}


_LATEST = (
    sa.select(readings)
    .join(kpi_latest, kpi_latest.c.reading_id == readings.c.id)
    .where(kpi_latest.c.team_id == sa.bindparam("team_id", type_=sa.String()))
)
"""Each KPI's newest reading of a team (built once: only its parameters change)."""
_LAST_POST = (
    sa.select(deliveries.c.slot_utc)
    .where(
        deliveries.c.team_id == sa.bindparam("team_id", type_=sa.String()),
        deliveries.c.slot_utc < sa.bindparam("before", type_=deliveries.c.slot_utc.type),
        deliveries.c.outcome.in_(POSTED_OUTCOMES),
    )
    .order_by(deliveries.c.slot_utc.desc())
    .limit(1)
)
"""A team's latest posted slot before a time."""
_POST_READINGS = (
    sa.select(readings)
    .where(
        readings.c.team_id == sa.bindparam("team_id", type_=sa.String()),
        readings.c.slot_utc == sa.bindparam("slot", type_=readings.c.slot_utc.type),
    )
    .order_by(readings.c.taken_at, readings.c.id)
)
"""The readings taken for one slot of a team."""
_BY_ID = sa.select(readings, RAW_TIME).where(readings.c.id.in_(sa.bindparam("ids", expanding=True)))


def _reading(row: Any) -> Reading:
    return Reading(
        team_id=row.team_id,
        kpi_id=row.kpi_id,
        taken_at=utc_aware(row.taken_at),
        origin=row.origin,
        counts=json.loads(row.counts),
        index=row.index_value,
        rows=row.rows,
        plan=row.plan,
        slot=utc_aware(row.slot_utc) if row.slot_utc else None,
        extras=json.loads(row.extras) if row.extras else None,
    )


def _point_latest(conn: Connection, pointers: list[dict[str, Any]]) -> None:
    """Make each pointer's reading its KPI's latest, unless a newer one is there already (one statement)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(kpi_latest).values(
        [{key: pointer[key] for key in ("team_id", "kpi_id", "reading_id", "taken_at")} for pointer in pointers]
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[kpi_latest.c.team_id, kpi_latest.c.kpi_id],
            set_={"reading_id": statement.excluded.reading_id, "taken_at": statement.excluded.taken_at},
            where=kpi_latest.c.taken_at <= statement.excluded.taken_at,
        )
    )
