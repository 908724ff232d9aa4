"""Baseline: the schema as Scorebot made it before Alembic (``schema_info`` version 4).

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

INDEXES = {
    "ix_readings_team_kpi_time": ("readings", ["team_id", "kpi_id", "taken_at"]),
    "ix_readings_team_slot": ("readings", ["team_id", "slot_utc"]),
    "ix_readings_time": ("readings", ["taken_at"]),
    "ix_slot_runs_slot": ("slot_runs", ["slot_utc"]),
    "ix_deliveries_team_slot": ("deliveries", ["team_id", "slot_utc"]),
    "ix_deliveries_at": ("deliveries", ["at"]),
    "ix_outbox_created": ("outbox", ["created_at"]),
}
"""Each index: its table and columns."""


def columns() -> dict[str, list[sa.Column[object]]]:
    """Each table's columns, as new objects on every call (a column belongs to one table)."""

    def time(name: str, *, nullable: bool = False) -> sa.Column[object]:
        return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)

    def text(name: str, length: int | None = None, *, nullable: bool = False) -> sa.Column[object]:
        return sa.Column(name, sa.String(length) if length else sa.Text(), nullable=nullable)

    def key(name: str, length: int) -> sa.Column[object]:
        return sa.Column(name, sa.String(length), primary_key=True)

    def serial() -> sa.Column[object]:
        return sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True)

    return {
        "schema_info": [sa.Column("version", sa.Integer(), nullable=False)],
        "readings": [
            serial(),
            text("team_id", 40),
            text("kpi_id", 40),
            time("taken_at"),
            text("origin", 16),
            text("counts"),
            sa.Column("index_value", sa.Float(), nullable=False),
            sa.Column("rows", sa.Integer()),
            text("plan", 200, nullable=True),
            time("slot_utc", nullable=True),
        ],
        "kpi_latest": [
            key("team_id", 40),
            key("kpi_id", 40),
            sa.Column("reading_id", sa.Integer(), nullable=False),
            time("taken_at"),
        ],
        "prune_marks": [key("name", 40), time("done_until")],
        "slot_runs": [
            key("team_id", 40),
            sa.Column("slot_utc", sa.DateTime(timezone=True), primary_key=True),
            text("state", 16),
            sa.Column("attempts", sa.Integer(), nullable=False),
            text("claimed_by", 80, nullable=True),
            time("claimed_until", nullable=True),
            time("updated_at"),
            text("detail", nullable=True),
            time("retry_at", nullable=True),
        ],
        "deliveries": [
            serial(),
            text("team_id", 40),
            time("slot_utc"),
            text("target", 120),
            text("outcome", 16),
            time("at"),
            text("message_id", 63, nullable=True),
            text("detail", nullable=True),
        ],
        "outbox": [
            serial(),
            text("team_id", 40),
            time("slot_utc"),
            time("created_at"),
            text("message"),
        ],
        "team_marks": [key("team_id", 40), time("first_seen"), time("scanned_until")],
    }


def upgrade() -> None:
    """Create the tables and indexes, and record schema version 4 (so a release from before Alembic still
    opens the store)."""
    tables = {name: op.create_table(name, *items) for name, items in columns().items()}
    for name, (table, indexed) in INDEXES.items():
        op.create_index(name, table, indexed)
    op.bulk_insert(tables["schema_info"], [{"version": 4}])


def downgrade() -> None:
    """Drop every table."""
    for name in reversed(list(columns())):
        op.drop_table(name)
