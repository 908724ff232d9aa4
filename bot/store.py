"""The store: KPI readings (history) and scheduled-post state, through SQLAlchemy Core.

SQLite file by default; PostgreSQL for several instances. Tables are created
on start, and the schema version is recorded so later changes can migrate.

``readings`` holds one row per fetch of one KPI: when, who asked (``origin``:
a scheduled post, a tick's retry, ``/score``, Refresh, a manual ``send``, or
``legacy`` for rows carried over from the old ``snapshots`` table), the
counts and index, the row count and plan the source reported, and for a post
the slot it was read for. Only a fetch writes a reading; showing one writes
nothing. ``kpi_latest`` points at each KPI's newest reading, so a card finds
it without scanning a year of history.

Scheduled posts keep three tables beside the readings:

- ``slot_runs``: one row per (team, slot); the row is the claim. A tick
  claims a slot by inserting its row (``INSERT .. ON CONFLICT DO NOTHING``)
  or, for a row left unfinished, by a conditional ``UPDATE`` that only
  succeeds once its lease (``claimed_until``) has run out and any
  ``Retry-After`` the peer gave (``retry_at``) has passed. Final states:
  delivered, failed, skipped, missed, superseded (a newer slot was posted
  instead: see `bot.schedule.catchup`).
- ``deliveries``: every attempt at every target, with its outcome; a target
  with a settled outcome is not sent again when the slot is retried.
- ``outbox``: messages of the ``log`` target (the demo's "Space").

``team_marks`` remembers, per team, when the scheduler first saw it and how
far it has looked, so slots skipped while it was down are recorded as missed.
``prune_marks`` remembers up to which day old readings have been thinned.

Every datetime is turned to UTC before it reaches the database: SQLite's
DateTime keeps no offset, so 09:00-05:00 would otherwise be stored as 09:00Z.
Every string does so with the secrets Scorebot knows hidden (`bot.secrets`),
whichever table and column it is written to.
"""

from __future__ import annotations

import functools
import itertools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine

from bot.secrets import scrub

SCHEMA_VERSION = 4
"""1: snapshots. 2: slot_runs, deliveries, outbox, team_marks (new tables only).
3: readings and kpi_latest replace snapshots (rows carried over as origin "legacy"); prune_marks;
indexes on the times retention deletes by. 4: slot_runs.retry_at (a peer's Retry-After)."""

POST, RETRY, SCORE, REFRESH, SEND, LEGACY = "post", "retry", "score", "refresh", "send", "legacy"
"""Where a reading came from: a scheduled post, a tick retrying a slot, /score, Refresh, `send`, schema 1-2."""
_TICK = timedelta(microseconds=1)
"""The smallest step between two stored times: turns ``<=`` into ``<``."""
POSTED_OUTCOMES = ("delivered", "already")
"""Delivery outcomes that mean the Space has the post."""

CLAIMED, PENDING = "claimed", "pending"
DELIVERED, FAILED, SKIPPED, MISSED, SUPERSEDED = "delivered", "failed", "skipped", "missed", "superseded"
UNFINISHED = (CLAIMED, PENDING)
CONCLUDED = (DELIVERED, FAILED, SKIPPED)
"""Final states of a slot that was worked to the end (posted, refused for good, or skipped on purpose)."""
SCHEMA_LOCK_KEY = 0x5C0DEB07
"""PostgreSQL advisory lock held while creating tables."""
SETTLED_OUTCOMES = ("delivered", "already", "rejected")
"""Delivery outcomes after which a target is not tried again for the same slot."""

metadata = sa.MetaData()

schema_info = sa.Table(
    "schema_info",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

readings = sa.Table(
    "readings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", sa.String(40), nullable=False),
    sa.Column("kpi_id", sa.String(40), nullable=False),
    sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("counts", sa.Text, nullable=False),
    sa.Column("index_value", sa.Float, nullable=False),
    sa.Column("rows", sa.Integer),
    sa.Column("plan", sa.String(200)),
    sa.Column("slot_utc", sa.DateTime(timezone=True)),
    sa.Index("ix_readings_team_kpi_time", "team_id", "kpi_id", "taken_at"),
    sa.Index("ix_readings_team_slot", "team_id", "slot_utc"),
    sa.Index("ix_readings_time", "taken_at"),
)

kpi_latest = sa.Table(
    "kpi_latest",
    metadata,
    sa.Column("team_id", sa.String(40), primary_key=True),
    sa.Column("kpi_id", sa.String(40), primary_key=True),
    sa.Column("reading_id", sa.Integer, nullable=False),
    sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
)

prune_marks = sa.Table(
    "prune_marks",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("done_until", sa.DateTime(timezone=True), nullable=False),
)

slot_runs = sa.Table(
    "slot_runs",
    metadata,
    sa.Column("team_id", sa.String(40), primary_key=True),
    sa.Column("slot_utc", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("claimed_by", sa.String(80)),
    sa.Column("claimed_until", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("retry_at", sa.DateTime(timezone=True)),
    sa.Index("ix_slot_runs_slot", "slot_utc"),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", sa.String(40), nullable=False),
    sa.Column("slot_utc", sa.DateTime(timezone=True), nullable=False),
    sa.Column("target", sa.String(120), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("message_id", sa.String(63)),
    sa.Column("detail", sa.Text),
    sa.Index("ix_deliveries_team_slot", "team_id", "slot_utc"),
    sa.Index("ix_deliveries_at", "at"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", sa.String(40), nullable=False),
    sa.Column("slot_utc", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Index("ix_outbox_created", "created_at"),
)

team_marks = sa.Table(
    "team_marks",
    metadata,
    sa.Column("team_id", sa.String(40), primary_key=True),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("scanned_until", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Reading:
    """One fetch of one KPI: its counts and index at ``taken_at`` (UTC), and where it came from.

    ``rows`` and ``plan`` are what the source reported (None when it did not
    say); ``slot`` is the scheduled slot (or manual send) the reading was taken for.
    """

    team_id: str
    kpi_id: str
    taken_at: datetime
    origin: str
    counts: dict[str, int]
    index: float
    rows: int | None = None
    plan: str | None = None
    slot: datetime | None = None


@dataclass(frozen=True)
class CardHistory:
    """What a card compares with, as `Store.card_history` reads it in one statement."""

    latest: dict[str, Reading]
    """Each KPI's newest reading."""
    days: dict[str, list[tuple[date, Reading | None]]]
    """Per KPI, the last reading of each local day (as `Store.daily_series`)."""
    post: tuple[datetime, dict[str, Reading]] | None
    """The latest post before a time and its readings (as `Store.last_post`); None when not asked or none."""
    week: dict[str, Reading]
    """Per KPI, the reading nearest a moment (as `Store.reading_near`)."""


@dataclass(frozen=True)
class SlotRun:
    """The state of one (team, slot): the claim, and how it ended."""

    team_id: str
    slot: datetime
    state: str
    attempts: int
    claimed_by: str | None
    claimed_until: datetime | None
    updated_at: datetime
    detail: str | None
    retry_at: datetime | None = None


@dataclass(frozen=True)
class DeliveryRecord:
    """One attempt to post a slot's message to one target."""

    team_id: str
    slot: datetime
    target: str
    outcome: str
    at: datetime
    message_id: str | None
    detail: str | None


@dataclass(frozen=True)
class OutboxEntry:
    """A message the ``log`` target "posted"."""

    team_id: str
    slot: datetime
    created_at: datetime
    message: dict[str, Any]


@dataclass(frozen=True)
class TeamMark:
    """When the scheduler first saw a team, and up to when it has looked for slots."""

    first_seen: datetime
    scanned_until: datetime


def resolve_url(url: str, base_dir: Path) -> str:
    """Make a relative SQLite path relative to ``base_dir`` (the config file's folder)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != prefix + ":memory:":
        path = Path(url.removeprefix(prefix))
        if not path.is_absolute():
            return prefix + str((base_dir / path).resolve())
    return url


def make_engine(url: str) -> Engine:
    """An engine for ``url`` that hides known secrets in every string it writes; SQLite gets WAL and a busy timeout."""
    if url.startswith("sqlite"):
        # Named parameters: a value a statement uses in several places is converted and sent once.
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, paramstyle="named")

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit survives the process, fsync at checkpoints
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    else:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        engine = sa.create_engine(url, pool_pre_ping=True)
    sa.event.listen(engine, "before_cursor_execute", _scrub_parameters, retval=True)
    return engine


def _scrub_parameters(
    _conn: Connection, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool
) -> tuple[str, Any]:
    """The statement's parameters with every known secret hidden in their strings (all tables, all columns)."""
    if executemany:
        return statement, [_scrub_row(row) for row in parameters]
    return statement, _scrub_row(parameters)


def _scrub_row(row: Any) -> Any:
    if isinstance(row, dict):
        return {key: scrub(value) if isinstance(value, str) else value for key, value in row.items()}
    if isinstance(row, list | tuple):
        return type(row)(scrub(value) if isinstance(value, str) else value for value in row)
    return row


class Store:
    """Scorebot's persistent state."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._local = threading.local()
        self._known = _KnownReadings(KNOWN_READINGS)
        with self.engine.connect() as conn:
            # One process at a time creates the tables (several may start at once).
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            metadata.create_all(conn)
            _add_missing_columns(conn)
            row = conn.execute(sa.select(schema_info.c.version)).first()
            if row is None:
                conn.execute(schema_info.insert().values(version=SCHEMA_VERSION))
            elif row.version < SCHEMA_VERSION:
                if row.version < 3:  # 3 → 4 only added a column, done above
                    _migrate(conn)
                conn.execute(schema_info.update().values(version=SCHEMA_VERSION))
            conn.commit()

    @contextmanager
    def one_connection(self) -> Iterator[None]:
        """Run this thread's reads inside on one connection, checked out at the first of them (a card's
        queries check out one connection, not five)."""
        if getattr(self._local, "sharing", False):
            yield
            return
        self._local.sharing, self._local.conn = True, None
        try:
            yield
        finally:
            conn, self._local.sharing, self._local.conn = self._local.conn, False, None
            if conn is not None:
                conn.close()

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        """A connection for reads: this thread's `one_connection`, else a new one."""
        if not getattr(self._local, "sharing", False):
            with self.engine.connect() as conn:
                yield conn
            return
        if self._local.conn is None:
            self._local.conn = self.engine.connect()
        try:
            yield self._local.conn
        except sa.exc.SQLAlchemyError:
            self._local.conn.rollback()  # the next read starts a clean transaction
            raise

    # Readings ----------------------------------------------------------------

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
            }
            for reading in new
        ]
        columns = (readings.c.id, readings.c.team_id, readings.c.kpi_id, readings.c.taken_at)
        with self.engine.begin() as conn:
            added = conn.execute(readings.insert().values(rows).returning(*columns)).all()
            newest: dict[tuple[str, str], Any] = {}
            for row in added:
                known = newest.get((row.team_id, row.kpi_id))
                if known is None or (_utc(row.taken_at), row.id) > (_utc(known.taken_at), known.id):
                    newest[(row.team_id, row.kpi_id)] = row
            _point_latest(conn, [{**row._mapping, "reading_id": row.id} for row in newest.values()])

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
        dates, spans = _day_spans(zone, days, now)
        return _series(dates, self._last_in_spans(team_id, spans, newest=True))

    def reading_near(self, team_id: str, moment: datetime, within: timedelta = timedelta(days=1)) -> dict[str, Reading]:
        """Per KPI, the reading closest to ``moment`` among those at most ``within`` away from it."""
        moment = to_utc(moment)
        before = self._last_in_spans(team_id, [(0, moment - within, moment + _TICK)], newest=True)
        after = self._last_in_spans(team_id, [(1, moment + _TICK, moment + within + _TICK)], newest=False)
        return _nearest(moment, [r for _, r in before], [r for _, r in after])

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
        dates, _ = _local_days(zone, days, today)
        sql = _history_sql(self.engine.dialect, days, post_before is not None)
        to_driver, from_driver = _time_converters(self.engine.dialect)
        near = to_utc(near)
        # bound_0 .. bound_days: the days' midnights (the same all day); then the spans around the week's moment.
        times = {f"bound_{days + 1}": near - within, f"bound_{days + 2}": near + _TICK}
        times["near_end"] = near + within + _TICK
        if post_before is not None:
            times["before"] = to_utc(post_before)
        params = _midnights(self.engine.dialect, zone, days, today) | {k: to_driver(v) for k, v in times.items()}
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
            if row.span == _POST_SLOT:
                slot = _utc(from_driver(row.slot)) if row.slot is not None else None
                continue
            reading = found.get(row.reading_id)
            if reading is None:  # deleted (retention) between the two statements
                continue
            if row.span == _LATEST_SPAN:
                latest[reading.kpi_id] = reading
            elif row.span == _POST_SPAN:
                posted.append((reading, row.reading_id))
            elif row.span < days:
                in_days.append((row.span, reading))
            else:
                (before if row.span == days else after).append(reading)
        posted.sort(key=lambda pair: (pair[0].taken_at, pair[1]))
        return CardHistory(
            latest=latest,
            days=_series(dates, in_days),
            post=(slot, {r.kpi_id: r for r, _ in posted}) if slot else None,
            week=_nearest(near, before, after),
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
            rows = conn.execute(_spans_query(len(spans), newest), params).all()
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
        return _utc(slot), {r.kpi_id: _reading(r) for r in rows}

    def prune(self, now: datetime, keep_days: int, batch: int) -> dict[str, int]:
        """Retention: thin readings older than ``keep_days`` to each KPI's last one per UTC day, and
        delete outbox, slot and delivery rows older than that; at most ``batch`` rows a table a call.

        Returns how many rows went, by table. Whole UTC days are thinned, oldest first; how far
        that got is kept in ``prune_marks``, so each call only looks at days not done yet.
        """
        cutoff = to_utc(now) - timedelta(days=keep_days)
        counts = {"readings": 0, "outbox": 0, "slot_runs": 0, "deliveries": 0}
        with self.engine.begin() as conn:
            counts["readings"] = _thin_readings(conn, _utc_midnight(cutoff), batch)
            for table, column in (
                (outbox, outbox.c.created_at),
                (deliveries, deliveries.c.at),
            ):
                oldest = sa.select(table.c.id).where(column < cutoff).order_by(column).limit(batch)
                counts[table.name] = conn.execute(table.delete().where(table.c.id.in_(oldest))).rowcount
            key = sa.tuple_(slot_runs.c.team_id, slot_runs.c.slot_utc)
            old_slots = (
                sa.select(slot_runs.c.team_id, slot_runs.c.slot_utc)
                .where(slot_runs.c.slot_utc < cutoff)
                .order_by(slot_runs.c.slot_utc)
                .limit(batch)
            )
            counts["slot_runs"] = conn.execute(slot_runs.delete().where(key.in_(old_slots))).rowcount
        return counts

    # Scheduled posts -------------------------------------------------------

    def open_team(
        self,
        team_id: str,
        now: datetime,
        missed: Callable[[TeamMark], list[datetime]],
        missed_detail: str,
        expire_before: datetime,
        expire_detail: str,
    ) -> tuple[list[datetime], int, list[SlotRun]]:
        """A tick's bookkeeping for one team, in one transaction: the team's mark (created at ``now`` the
        first time), the slots ``missed(mark)`` names recorded missed, unfinished unleased slots at or
        before ``expire_before`` closed as missed, and the mark advanced to ``now``.

        Returns the slots newly recorded missed, how many unfinished slots were closed, and then the team's
        slots after ``expire_before`` up to ``now`` (newest first).
        """
        with self.engine.begin() as conn:
            mark = _team_mark(conn, team_id, to_utc(now))
            added = _record_missed(conn, team_id, missed(mark), now, missed_detail)
            expired = _expire(conn, team_id, expire_before, now, expire_detail)
            _advance_mark(conn, team_id, now)
            runs = _slot_runs(conn, team_id, expire_before, now, 100_000)
        return added, expired, runs

    def team_mark(self, team_id: str, now: datetime) -> TeamMark:
        """The team's mark, created at ``now`` the first time the scheduler sees the team."""
        with self.engine.begin() as conn:
            return _team_mark(conn, team_id, to_utc(now))

    def advance_mark(self, team_id: str, until: datetime) -> None:
        """Record that slots up to ``until`` have been looked at (never moves back)."""
        with self.engine.begin() as conn:
            _advance_mark(conn, team_id, until)

    def find_mark(self, team_id: str) -> TeamMark | None:
        """The team's mark, if the scheduler has seen the team (reads only)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(team_marks).where(team_marks.c.team_id == team_id)).first()
        return TeamMark(_utc(row.first_seen), _utc(row.scanned_until)) if row else None

    def record_missed(self, team_id: str, slots: list[datetime], now: datetime, detail: str) -> list[datetime]:
        """Record slots nobody worked on as missed; return those not recorded before."""
        with self.engine.begin() as conn:
            return _record_missed(conn, team_id, slots, now, detail)

    def claim(self, team_id: str, slot: datetime, owner: str, now: datetime, lease_until: datetime) -> int:
        """Claim a slot for ``owner`` until ``lease_until``: its attempt number (1: the slot is new) for exactly
        one of concurrent claimers, 0 for the others.

        A new slot is claimed by inserting its row; an unfinished one (pending,
        or claimed by a process that died) only once its lease has run out and
        its ``retry_at`` has passed.
        """
        slot, now = to_utc(slot), to_utc(now)
        claimed = {
            "state": CLAIMED,
            "claimed_by": owner,
            "claimed_until": to_utc(lease_until),
            "updated_at": now,
            "retry_at": None,
        }
        with self.engine.begin() as conn:
            if _insert_ignore(conn, slot_runs, {"team_id": team_id, "slot_utc": slot, "attempts": 1} | claimed):
                return 1
            attempt = conn.execute(
                slot_runs.update()
                .where(_takeable(team_id, slot, now))
                .where(sa.or_(slot_runs.c.retry_at.is_(None), slot_runs.c.retry_at <= now))
                .values(attempts=slot_runs.c.attempts + 1, **claimed)
                .returning(slot_runs.c.attempts)
            ).scalar()
            return int(attempt or 0)

    def supersede(self, team_id: str, slots: list[datetime], now: datetime, detail: str) -> list[datetime]:
        """Close slots a newer post replaces: never started, or unfinished and unleased; return those closed.

        A slot another process holds (its lease running) is left alone.
        """
        now = to_utc(now)
        closed = []
        with self.engine.begin() as conn:
            for slot in map(to_utc, slots):
                row = {"team_id": team_id, "slot_utc": slot, "state": SUPERSEDED, "attempts": 0, "updated_at": now}
                if (
                    _insert_ignore(conn, slot_runs, row | {"detail": detail})
                    or conn.execute(
                        slot_runs.update()
                        .where(_takeable(team_id, slot, now))
                        .values(state=SUPERSEDED, claimed_until=None, retry_at=None, updated_at=now, detail=detail)
                    ).rowcount
                ):
                    closed.append(slot)
        return closed

    def renew(self, team_id: str, slot: datetime, owner: str, lease_until: datetime) -> bool:
        """Extend ``owner``'s claim; False if the claim was lost (the lease ran out and another took it)."""
        return self._update_claimed(team_id, slot, owner, claimed_until=to_utc(lease_until))

    def release(
        self,
        team_id: str,
        slot: datetime,
        owner: str,
        now: datetime,
        detail: str,
        retry_at: datetime | None = None,
        delivery: DeliveryRecord | None = None,
    ) -> bool:
        """Give the slot back unfinished: claimable by the next tick at once, or from ``retry_at``; with
        ``delivery`` (the last target's attempt) recorded in the same transaction, whether or not the claim
        was still held."""
        return self._update_claimed(
            team_id,
            slot,
            owner,
            delivery,
            state=PENDING,
            claimed_until=None,
            updated_at=to_utc(now),
            detail=detail,
            retry_at=to_utc(retry_at) if retry_at else None,
        )

    def finish(
        self,
        team_id: str,
        slot: datetime,
        owner: str,
        state: str,
        now: datetime,
        detail: str | None,
        delivery: DeliveryRecord | None = None,
    ) -> bool:
        """End ``owner``'s claim with a final ``state`` (and ``delivery`` recorded, as for `release`)."""
        return self._update_claimed(
            team_id, slot, owner, delivery, state=state, claimed_until=None, updated_at=to_utc(now), detail=detail
        )

    def unclaim(self, team_id: str, slot: datetime, owner: str) -> bool:
        """Give back a claim before any work on it: the slot as it was (a new one unclaimed, not recorded; a
        pending one pending again); False if the claim was lost."""
        mine = (
            slot_runs.c.team_id == team_id,
            slot_runs.c.slot_utc == to_utc(slot),
            slot_runs.c.state == CLAIMED,
            slot_runs.c.claimed_by == owner,
        )
        with self.engine.begin() as conn:
            if conn.execute(slot_runs.delete().where(*mine, slot_runs.c.attempts == 1)).rowcount:
                return True
            restored = {"state": PENDING, "claimed_by": None, "claimed_until": None}
            update = slot_runs.update().where(*mine).values(attempts=slot_runs.c.attempts - 1, **restored)
            return bool(conn.execute(update).rowcount)

    def _update_claimed(
        self, team_id: str, slot: datetime, owner: str, delivery: DeliveryRecord | None = None, **values: Any
    ) -> bool:
        with self.engine.begin() as conn:
            if delivery is not None:
                _insert_delivery(conn, delivery)
            result = conn.execute(
                slot_runs.update()
                .where(
                    slot_runs.c.team_id == team_id,
                    slot_runs.c.slot_utc == to_utc(slot),
                    slot_runs.c.state == CLAIMED,
                    slot_runs.c.claimed_by == owner,
                )
                .values(**values)
            )
            return result.rowcount == 1

    def slot_runs(
        self, team_id: str, *, since: datetime | None = None, until: datetime | None = None, limit: int = 100
    ) -> list[SlotRun]:
        """The team's slots with ``since < slot <= until`` (either bound optional), newest first."""
        with self.engine.connect() as conn:
            return _slot_runs(conn, team_id, since, until, limit)

    def record_delivery(
        self,
        team_id: str,
        slot: datetime,
        target: str,
        outcome: str,
        at: datetime,
        *,
        message_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record one attempt at one target: delivered, already (409), rejected (4xx) or error."""
        with self.engine.begin() as conn:
            _insert_delivery(conn, DeliveryRecord(team_id, to_utc(slot), target, outcome, at, message_id, detail))

    def settled_targets(self, team_id: str, slot: datetime) -> set[str]:
        """The slot's targets that need no further attempt (delivered, already there, or rejected)."""
        query = sa.select(deliveries.c.target).where(
            deliveries.c.team_id == team_id,
            deliveries.c.slot_utc == to_utc(slot),
            deliveries.c.outcome.in_(SETTLED_OUTCOMES),
        )
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def deliveries(self, team_id: str, *, slot: datetime | None = None, limit: int = 50) -> list[DeliveryRecord]:
        """The team's delivery attempts (of one slot, if given), newest first."""
        query = sa.select(deliveries).where(deliveries.c.team_id == team_id)
        if slot is not None:
            query = query.where(deliveries.c.slot_utc == to_utc(slot))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(deliveries.c.id.desc()).limit(limit)).all()
        return [
            DeliveryRecord(r.team_id, _utc(r.slot_utc), r.target, r.outcome, _utc(r.at), r.message_id, r.detail)
            for r in rows
        ]

    def add_outbox(self, team_id: str, slot: datetime, message: dict[str, Any], created_at: datetime) -> None:
        """Keep a message the ``log`` target posted."""
        with self.engine.begin() as conn:
            conn.execute(
                outbox.insert().values(
                    team_id=team_id, slot_utc=to_utc(slot), created_at=to_utc(created_at), message=json.dumps(message)
                )
            )

    def outbox(self, team_id: str | None = None, limit: int = 50) -> list[OutboxEntry]:
        """Messages in the outbox (of one team, if given), newest first."""
        query = sa.select(outbox)
        if team_id is not None:
            query = query.where(outbox.c.team_id == team_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(outbox.c.id.desc()).limit(limit)).all()
        return [OutboxEntry(r.team_id, _utc(r.slot_utc), _utc(r.created_at), json.loads(r.message)) for r in rows]


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
_RAW_TIME = sa.type_coerce(readings.c.taken_at, sa.String()).label("raw")
"""A reading's time as the driver gives it (no conversion): what tells a known reading is still the same."""
_BY_ID = sa.select(readings, _RAW_TIME).where(readings.c.id.in_(sa.bindparam("ids", expanding=True)))
"""Readings by id."""
_Convert = Callable[[Any], Any]
_LATEST_SPAN, _POST_SPAN, _POST_SLOT = -1, -2, -3
"""Row kinds of `_history_query` besides its spans (0 .. days + 1)."""
KNOWN_READINGS = 4096
"""How many readings a store keeps in memory for `Store.card_history` (about 18 a KPI a team)."""


class _KnownReadings:
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


def _day_spans(zone: ZoneInfo, days: int, now: datetime) -> tuple[list[date], list[tuple[int, datetime, datetime]]]:
    """The ``days`` local dates up to ``now``'s, oldest first, and each one's span in UTC, numbered from 0."""
    return _local_days(zone, days, to_utc(now).astimezone(zone).date())


@functools.lru_cache(maxsize=256)
def _local_days(zone: ZoneInfo, days: int, today: date) -> tuple[list[date], list[tuple[int, datetime, datetime]]]:
    """`_day_spans` for a local date (the same all day: worked out once a day and zone)."""
    dates = [today - timedelta(days=days - 1 - i) for i in range(days)]
    bounds = [datetime.combine(d, time(0), zone).astimezone(UTC) for d in [*dates, today + timedelta(days=1)]]
    return dates, [(i, start, end) for i, (start, end) in enumerate(itertools.pairwise(bounds))]


def _series(dates: list[date], found: list[tuple[int, Reading]]) -> dict[str, list[tuple[date, Reading | None]]]:
    """Per KPI, one point a date: the reading found for that date's span, else None."""
    points: dict[str, list[Reading | None]] = {}
    for day, reading in found:
        points.setdefault(reading.kpi_id, [None] * len(dates))[day] = reading
    return {kpi_id: list(zip(dates, series, strict=True)) for kpi_id, series in points.items()}


def _nearest(moment: datetime, before: list[Reading], after: list[Reading]) -> dict[str, Reading]:
    """Per KPI, of the readings just before and just after ``moment``, the closer (before on a tie)."""
    near: dict[str, Reading] = {}
    for reading in before + after:
        known = near.get(reading.kpi_id)
        if known is None or abs(reading.taken_at - moment) < abs(known.taken_at - moment):
            near[reading.kpi_id] = reading
    return near


@functools.lru_cache(maxsize=16)
def _history_sql(dialect: Dialect, days: int, with_post: bool) -> str:
    """`_history_query` compiled for ``dialect`` once: it is then run as SQL text, without compiling or
    caching it again (its times go to the driver through `_time_converters`)."""
    sql = str(_history_query(days, with_post).compile(dialect=dialect))
    if "POSTCOMPILE" in sql:
        raise AssertionError("the statement has a parameter to expand at run time")
    return sql


@functools.lru_cache(maxsize=4)
def _time_converters(dialect: Dialect) -> tuple[_Convert, _Convert]:
    """How a stored time goes to ``dialect``'s driver and comes back from it, as SQLAlchemy converts it."""
    time_type = readings.c.taken_at.type.dialect_impl(dialect)
    to_driver = time_type.bind_processor(dialect) or _as_is
    from_driver = time_type.result_processor(dialect, None) or _as_is
    return to_driver, from_driver


def _as_is(value: Any) -> Any:
    return value


@functools.lru_cache(maxsize=256)
def _midnights(dialect: Dialect, zone: ZoneInfo, days: int, today: date) -> dict[str, Any]:
    """The parameters bound_0 .. bound_days of `_history_query`, as ``dialect``'s driver takes them: the
    local midnights that start and end the ``days`` days up to ``today`` (worked out once a day and zone)."""
    _, spans = _local_days(zone, days, today)
    to_driver = _time_converters(dialect)[0]
    return {f"bound_{n}": to_driver(bound) for n, bound in enumerate([*(s for _, s, _ in spans), spans[-1][2]])}


@functools.lru_cache(maxsize=16)
def _history_query(days: int, with_post: bool) -> sa.Select[Any] | sa.CompoundSelect[Any]:
    """The statement of `Store.card_history` (built once for each form: only its parameters change).

    One row a reading it names: ``span`` says which part of the card it is for
    (a day 0 .. days - 1, days: just before the week's moment, days + 1: just
    after, `_LATEST_SPAN`, `_POST_SPAN`), ``reading_id`` and ``raw`` its time;
    with ``with_post``, one more row (`_POST_SLOT`) whose ``slot`` is the last post's (or NULL).
    """
    team_id = sa.bindparam("team_id", type_=sa.String())
    kpis = sa.select(kpi_latest.c.kpi_id).where(kpi_latest.c.team_id == team_id).cte("kpis")
    # LIMIT 1 OFFSET 0 written in the SQL: as parameters, SQLite's form would add two for every span.
    one: sa.ColumnElement[int] = sa.literal_column("1")
    zero: sa.ColumnElement[int] = sa.literal_column("0")
    arms: list[sa.Select[Any]] = [
        sa.select(
            sa.literal_column(str(_LATEST_SPAN)).label("span"), kpi_latest.c.kpi_id, kpi_latest.c.reading_id
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
            sa.select(sa.literal_column(str(_POST_SPAN)), readings.c.kpi_id, readings.c.id).where(
                readings.c.team_id == team_id, readings.c.slot_utc == last_slot
            )
        )
    found = sa.union_all(*arms).cte("found")
    named = sa.select(
        found.c.span,
        readings.c.id.label("reading_id"),
        _RAW_TIME,
        sa.cast(sa.null(), deliveries.c.slot_utc.type).label("slot"),
    ).join(found, readings.c.id == found.c.reading_id)
    if not with_post:
        return named
    slot_row = sa.select(sa.literal_column(str(_POST_SLOT)), sa.null(), sa.null(), last_slot)
    return sa.union_all(named, slot_row)


@functools.lru_cache(maxsize=16)
def _spans_query(count: int, newest: bool) -> sa.Select[Any]:
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


def _reading(row: Any) -> Reading:
    return Reading(
        team_id=row.team_id,
        kpi_id=row.kpi_id,
        taken_at=_utc(row.taken_at),
        origin=row.origin,
        counts=json.loads(row.counts),
        index=row.index_value,
        rows=row.rows,
        plan=row.plan,
        slot=_utc(row.slot_utc) if row.slot_utc else None,
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


def _thin_readings(conn: Connection, until: datetime, batch: int) -> int:
    """Delete, day by day before ``until`` (a UTC midnight), every reading that has a later one of the
    same KPI the same day; at most ``batch`` rows. Advances the ``readings`` prune mark."""
    done = conn.execute(sa.select(prune_marks.c.done_until).where(prune_marks.c.name == "readings")).scalar()
    oldest = conn.execute(sa.select(sa.func.min(readings.c.taken_at)).where(readings.c.taken_at < until)).scalar()
    if oldest is None:
        return 0
    day = max(_utc_midnight(_utc(oldest)), _utc(done) if done else _utc_midnight(_utc(oldest)))
    deleted = 0
    later = readings.alias("later")
    while day < until and deleted < batch:
        next_day = day + timedelta(days=1)
        superseded = sa.exists().where(
            later.c.team_id == readings.c.team_id,
            later.c.kpi_id == readings.c.kpi_id,
            later.c.taken_at < next_day,
            later.c.taken_at >= readings.c.taken_at,  # a range the index can seek, then the tie on id
            sa.or_(later.c.taken_at > readings.c.taken_at, later.c.id > readings.c.id),
        )
        doomed = (
            sa.select(readings.c.id)
            .where(readings.c.taken_at >= day, readings.c.taken_at < next_day, superseded)
            .limit(batch - deleted)
        )
        deleted += conn.execute(readings.delete().where(readings.c.id.in_(doomed))).rowcount
        if deleted < batch:
            day = next_day
    _upsert_mark(conn, "readings", day)
    return deleted


def _upsert_mark(conn: Connection, name: str, until: datetime) -> None:
    if not _insert_ignore(conn, prune_marks, {"name": name, "done_until": until}):
        conn.execute(prune_marks.update().where(prune_marks.c.name == name).values(done_until=until))


def _utc_midnight(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(UTC).date(), time(0), UTC)


def _migrate(conn: Connection) -> None:
    """Bring a schema 1 or 2 store to this version (tables are created already; this runs under the lock)."""
    for table in (slot_runs, deliveries, outbox):
        for index in table.indexes:
            index.create(conn, checkfirst=True)
    if sa.inspect(conn).has_table("snapshots"):
        conn.execute(
            sa.text(
                "INSERT INTO readings (team_id, kpi_id, taken_at, origin, counts, index_value)"
                " SELECT team_id, kpi_id, taken_at, :origin, counts, index_value FROM snapshots ORDER BY id"
            ),
            {"origin": LEGACY},
        )
        conn.execute(sa.text("DROP TABLE snapshots"))
    newest = (
        sa.select(readings.c.team_id, readings.c.kpi_id, sa.func.max(readings.c.taken_at).label("taken_at"))
        .group_by(readings.c.team_id, readings.c.kpi_id)
        .subquery()
    )
    pointers = (
        sa.select(readings.c.team_id, readings.c.kpi_id, sa.func.max(readings.c.id), newest.c.taken_at)
        .join(
            newest,
            sa.and_(
                readings.c.team_id == newest.c.team_id,
                readings.c.kpi_id == newest.c.kpi_id,
                readings.c.taken_at == newest.c.taken_at,
            ),
        )
        .group_by(readings.c.team_id, readings.c.kpi_id, newest.c.taken_at)
    )
    conn.execute(kpi_latest.insert().from_select(["team_id", "kpi_id", "reading_id", "taken_at"], pointers))


def _team_mark(conn: Connection, team_id: str, now: datetime) -> TeamMark:
    _insert_ignore(conn, team_marks, {"team_id": team_id, "first_seen": now, "scanned_until": now})
    row = conn.execute(sa.select(team_marks).where(team_marks.c.team_id == team_id)).one()
    return TeamMark(_utc(row.first_seen), _utc(row.scanned_until))


def _advance_mark(conn: Connection, team_id: str, until: datetime) -> None:
    conn.execute(
        team_marks.update()
        .where(team_marks.c.team_id == team_id, team_marks.c.scanned_until < to_utc(until))
        .values(scanned_until=to_utc(until))
    )


def _record_missed(conn: Connection, team_id: str, slots: list[datetime], now: datetime, detail: str) -> list[datetime]:
    added = []
    for slot in map(to_utc, slots):
        row = {"team_id": team_id, "slot_utc": slot, "state": MISSED, "attempts": 0, "updated_at": to_utc(now)}
        if _insert_ignore(conn, slot_runs, row | {"detail": detail}):
            added.append(slot)
    return added


def _expire(conn: Connection, team_id: str, before: datetime, now: datetime, detail: str) -> int:
    before, now = to_utc(before), to_utc(now)
    result = conn.execute(
        slot_runs.update()
        .where(
            slot_runs.c.team_id == team_id,
            slot_runs.c.slot_utc <= before,
            slot_runs.c.state.in_(UNFINISHED),
            sa.or_(slot_runs.c.claimed_until.is_(None), slot_runs.c.claimed_until < now),
        )
        .values(state=MISSED, claimed_until=None, updated_at=now, detail=detail)
    )
    return result.rowcount


def _takeable(team_id: str, slot: datetime, now: datetime) -> sa.ColumnElement[bool]:
    """The slot's row is unfinished and nobody's lease on it is running."""
    return sa.and_(
        slot_runs.c.team_id == team_id,
        slot_runs.c.slot_utc == slot,
        slot_runs.c.state.in_(UNFINISHED),
        sa.or_(slot_runs.c.claimed_until.is_(None), slot_runs.c.claimed_until < now),
    )


def _add_missing_columns(conn: Connection) -> None:
    """Add columns later versions gave existing tables (``create_all`` only creates missing tables)."""
    present = {column["name"] for column in sa.inspect(conn).get_columns("slot_runs")}
    if "retry_at" not in present:
        kind = slot_runs.c.retry_at.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE slot_runs ADD COLUMN retry_at {kind}"))


def _insert_ignore(conn: Connection, table: sa.Table, values: dict[str, Any]) -> int:
    """Insert a row unless its primary key exists (atomic in SQLite and PostgreSQL); 1 if inserted."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table).values(**values).on_conflict_do_nothing()
    # Drivers report no row count for INSERT unless asked to keep it.
    result = conn.execute(statement.execution_options(preserve_rowcount=True))
    return result.rowcount


def to_utc(moment: datetime) -> datetime:
    """A time as the database gets it: in UTC (a naive one is taken as UTC already)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _insert_delivery(conn: Connection, record: DeliveryRecord) -> None:
    conn.execute(
        deliveries.insert().values(
            team_id=record.team_id,
            slot_utc=to_utc(record.slot),
            target=record.target,
            outcome=record.outcome,
            at=to_utc(record.at),
            message_id=record.message_id,
            detail=record.detail,
        )
    )


def _slot_runs(
    conn: Connection, team_id: str, since: datetime | None, until: datetime | None, limit: int
) -> list[SlotRun]:
    """The team's slots with ``since < slot <= until`` (either bound optional), newest first."""
    query = sa.select(slot_runs).where(slot_runs.c.team_id == team_id)
    if since is not None:
        query = query.where(slot_runs.c.slot_utc > to_utc(since))
    if until is not None:
        query = query.where(slot_runs.c.slot_utc <= to_utc(until))
    rows = conn.execute(query.order_by(slot_runs.c.slot_utc.desc()).limit(limit)).all()
    return [
        SlotRun(
            team_id=r.team_id,
            slot=_utc(r.slot_utc),
            state=r.state,
            attempts=r.attempts,
            claimed_by=r.claimed_by,
            claimed_until=_utc(r.claimed_until) if r.claimed_until else None,
            updated_at=_utc(r.updated_at),
            detail=r.detail,
            retry_at=_utc(r.retry_at) if r.retry_at else None,
        )
        for r in rows
    ]
