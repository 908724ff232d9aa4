"""The store: KPI snapshots (history) and scheduled-post state, through SQLAlchemy Core.

SQLite file by default; PostgreSQL for several instances. Tables are created
on start, and the schema version is recorded so later changes can migrate.

Scheduled posts keep three tables beside the snapshots:

- ``slot_runs``: one row per (team, slot); the row is the claim. A tick
  claims a slot by inserting its row (``INSERT .. ON CONFLICT DO NOTHING``)
  or, for a row left unfinished, by a conditional ``UPDATE`` that only
  succeeds once its lease (``claimed_until``) has run out. Final states:
  delivered, failed, skipped, missed.
- ``deliveries``: every attempt at every target, with its outcome; a target
  with a settled outcome is not sent again when the slot is retried.
- ``outbox``: messages of the ``log`` target (the demo's "Space").

``team_marks`` remembers, per team, when the scheduler first saw it and how
far it has looked, so slots skipped while it was down are recorded as missed.

Every datetime is turned to UTC before it reaches the database: SQLite's
DateTime keeps no offset, so 09:00-05:00 would otherwise be stored as 09:00Z.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

SCHEMA_VERSION = 2
"""1: snapshots. 2: slot_runs, deliveries, outbox, team_marks (new tables only)."""

CLAIMED, PENDING = "claimed", "pending"
DELIVERED, FAILED, SKIPPED, MISSED = "delivered", "failed", "skipped", "missed"
UNFINISHED = (CLAIMED, PENDING)
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

snapshots = sa.Table(
    "snapshots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", sa.String(40), nullable=False),
    sa.Column("kpi_id", sa.String(40), nullable=False),
    sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("counts", sa.Text, nullable=False),
    sa.Column("index_value", sa.Float, nullable=False),
    sa.Index("ix_snapshots_team_kpi_time", "team_id", "kpi_id", "taken_at"),
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
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", sa.String(40), nullable=False),
    sa.Column("slot_utc", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
)

team_marks = sa.Table(
    "team_marks",
    metadata,
    sa.Column("team_id", sa.String(40), primary_key=True),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("scanned_until", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Snapshot:
    """A KPI's counts and index as read at one moment (UTC)."""

    taken_at: datetime
    counts: dict[str, int]
    index: float


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
    """An engine for ``url``; SQLite files get a busy timeout and WAL journaling."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(url, pool_pre_ping=True)


class Store:
    """Scorebot's persistent state."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        with self.engine.connect() as conn:
            # One process at a time creates the tables (several may start at once).
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            metadata.create_all(conn)
            row = conn.execute(sa.select(schema_info.c.version)).first()
            if row is None:
                conn.execute(schema_info.insert().values(version=SCHEMA_VERSION))
            elif row.version < SCHEMA_VERSION:
                conn.execute(schema_info.update().values(version=SCHEMA_VERSION))
            conn.commit()

    def save_snapshot(
        self, team_id: str, kpi_id: str, taken_at: datetime, counts: dict[str, int], index: float
    ) -> None:
        """Record one reading of a KPI."""
        with self.engine.begin() as conn:
            conn.execute(
                snapshots.insert().values(
                    team_id=team_id,
                    kpi_id=kpi_id,
                    taken_at=to_utc(taken_at),
                    counts=json.dumps(counts, sort_keys=True),
                    index_value=index,
                )
            )

    def recent_snapshots(self, team_id: str, kpi_id: str, limit: int = 12) -> list[Snapshot]:
        """The latest ``limit`` readings of a KPI, oldest first."""
        query = (
            sa.select(snapshots.c.taken_at, snapshots.c.counts, snapshots.c.index_value)
            .where(snapshots.c.team_id == team_id, snapshots.c.kpi_id == kpi_id)
            .order_by(snapshots.c.taken_at.desc(), snapshots.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [Snapshot(_utc(r.taken_at), json.loads(r.counts), r.index_value) for r in reversed(rows)]

    # Scheduled posts -------------------------------------------------------

    def team_mark(self, team_id: str, now: datetime) -> TeamMark:
        """The team's mark, created at ``now`` the first time the scheduler sees the team."""
        now = to_utc(now)
        with self.engine.begin() as conn:
            _insert_ignore(conn, team_marks, {"team_id": team_id, "first_seen": now, "scanned_until": now})
            row = conn.execute(sa.select(team_marks).where(team_marks.c.team_id == team_id)).one()
        return TeamMark(_utc(row.first_seen), _utc(row.scanned_until))

    def advance_mark(self, team_id: str, until: datetime) -> None:
        """Record that slots up to ``until`` have been looked at (never moves back)."""
        with self.engine.begin() as conn:
            conn.execute(
                team_marks.update()
                .where(team_marks.c.team_id == team_id, team_marks.c.scanned_until < to_utc(until))
                .values(scanned_until=to_utc(until))
            )

    def record_missed(self, team_id: str, slots: list[datetime], now: datetime, detail: str) -> list[datetime]:
        """Record slots nobody worked on as missed; return those not recorded before."""
        added = []
        with self.engine.begin() as conn:
            for slot in map(to_utc, slots):
                row = {"team_id": team_id, "slot_utc": slot, "state": MISSED, "attempts": 0, "updated_at": to_utc(now)}
                if _insert_ignore(conn, slot_runs, row | {"detail": detail}):
                    added.append(slot)
        return added

    def claim(self, team_id: str, slot: datetime, owner: str, now: datetime, lease_until: datetime) -> bool:
        """Claim a slot for ``owner`` until ``lease_until``; True for exactly one of concurrent claimers.

        A new slot is claimed by inserting its row; an unfinished one (pending,
        or claimed by a process that died) only once its lease has run out.
        """
        slot, now = to_utc(slot), to_utc(now)
        claimed = {"state": CLAIMED, "claimed_by": owner, "claimed_until": to_utc(lease_until), "updated_at": now}
        with self.engine.begin() as conn:
            if _insert_ignore(conn, slot_runs, {"team_id": team_id, "slot_utc": slot, "attempts": 1} | claimed):
                return True
            result = conn.execute(
                slot_runs.update()
                .where(
                    slot_runs.c.team_id == team_id,
                    slot_runs.c.slot_utc == slot,
                    slot_runs.c.state.in_(UNFINISHED),
                    sa.or_(slot_runs.c.claimed_until.is_(None), slot_runs.c.claimed_until < now),
                )
                .values(attempts=slot_runs.c.attempts + 1, **claimed)
            )
            return result.rowcount == 1

    def renew(self, team_id: str, slot: datetime, owner: str, lease_until: datetime) -> bool:
        """Extend ``owner``'s claim; False if the claim was lost (the lease ran out and another took it)."""
        return self._update_claimed(team_id, slot, owner, claimed_until=to_utc(lease_until))

    def release(self, team_id: str, slot: datetime, owner: str, now: datetime, detail: str) -> bool:
        """Give the slot back unfinished, claimable by the next tick at once."""
        return self._update_claimed(
            team_id, slot, owner, state=PENDING, claimed_until=None, updated_at=to_utc(now), detail=detail
        )

    def finish(self, team_id: str, slot: datetime, owner: str, state: str, now: datetime, detail: str | None) -> bool:
        """End ``owner``'s claim with a final ``state``."""
        return self._update_claimed(
            team_id, slot, owner, state=state, claimed_until=None, updated_at=to_utc(now), detail=detail
        )

    def _update_claimed(self, team_id: str, slot: datetime, owner: str, **values: Any) -> bool:
        with self.engine.begin() as conn:
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

    def expire(self, team_id: str, before: datetime, now: datetime, detail: str) -> int:
        """Close unfinished, unleased slots at or before ``before`` as missed; return how many."""
        before, now = to_utc(before), to_utc(now)
        with self.engine.begin() as conn:
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

    def slot_runs(
        self, team_id: str, *, since: datetime | None = None, until: datetime | None = None, limit: int = 100
    ) -> list[SlotRun]:
        """The team's slots with ``since < slot <= until`` (either bound optional), newest first."""
        query = sa.select(slot_runs).where(slot_runs.c.team_id == team_id)
        if since is not None:
            query = query.where(slot_runs.c.slot_utc > to_utc(since))
        if until is not None:
            query = query.where(slot_runs.c.slot_utc <= to_utc(until))
        with self.engine.connect() as conn:
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
            )
            for r in rows
        ]

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
            conn.execute(
                deliveries.insert().values(
                    team_id=team_id,
                    slot_utc=to_utc(slot),
                    target=target,
                    outcome=outcome,
                    at=to_utc(at),
                    message_id=message_id,
                    detail=detail,
                )
            )

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
