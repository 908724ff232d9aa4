"""The tables (SQLAlchemy Core metadata: the one definition the queries use) and the values their columns hold."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

SCHEMA_VERSION = 4
"""1: snapshots. 2: slot_runs, deliveries, outbox, team_marks (new tables only).
3: readings and kpi_latest replace snapshots (rows carried over as origin "legacy"); prune_marks;
indexes on the times retention deletes by. 4: slot_runs.retry_at (a peer's Retry-After)."""

POST, RETRY, SCORE, REFRESH, SEND, LEGACY = "post", "retry", "score", "refresh", "send", "legacy"
"""Where a reading came from: a scheduled post, a tick retrying a slot, /score, Refresh, `send`, schema 1-2."""
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


def create_schema(engine: sa.Engine) -> None:
    """Create the tables, or bring an older store to this version; one process at a time (several may start)."""
    with engine.connect() as conn:
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


def _add_missing_columns(conn: Connection) -> None:
    """Add columns later versions gave existing tables (``create_all`` only creates missing tables)."""
    present = {column["name"] for column in sa.inspect(conn).get_columns("slot_runs")}
    if "retry_at" not in present:
        kind = slot_runs.c.retry_at.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE slot_runs ADD COLUMN retry_at {kind}"))
