"""The tables (SQLAlchemy Core metadata: the one definition the queries use) and the values their columns hold.

The revisions in `bot/store/migrations/versions` create them; a test checks the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 4
"""The last schema version before Alembic (``schema_info``), which the baseline revision is. Versions then:
1: snapshots. 2: slot_runs, deliveries, outbox, team_marks (new tables only).
3: readings and kpi_latest replace snapshots (rows carried over as origin "legacy"); prune_marks;
indexes on the times retention deletes by. 4: slot_runs.retry_at (a peer's Retry-After).
``schema_info`` keeps 4 so that a release from before Alembic still opens the store (a rollback);
Alembic's revision (``alembic_version``) is the schema's version now."""

POST, RETRY, SCORE, REFRESH, SEND, LEGACY = "post", "retry", "score", "refresh", "send", "legacy"
"""Where a reading came from: a scheduled post, a tick retrying a slot, /score, Refresh, `send`, schema 1-2."""
POSTED_OUTCOMES = ("delivered", "already")
"""Delivery outcomes that mean the Space has the post."""

CLAIMED, PENDING = "claimed", "pending"
DELIVERED, FAILED, SKIPPED, MISSED, SUPERSEDED = "delivered", "failed", "skipped", "missed", "superseded"
SNOOZED = "snoozed"
"""A slot that fell due while its team had its scheduled posts snoozed: never posted, and not missed."""
UNFINISHED = (CLAIMED, PENDING)
CONCLUDED = (DELIVERED, FAILED, SKIPPED)
"""Final states of a slot that was worked to the end (posted, refused for good, or skipped on purpose)."""
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
    sa.Column("extras", sa.Text),
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
