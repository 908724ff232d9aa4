"""Alerts between posts: each KPI's alert state, the checks claimed, transitions, notices and their deliveries.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_alert_checks_time": ("alert_checks", ["check_at"]),
    "ix_alert_transitions_team_kpi_time": ("alert_transitions", ["team_id", "kpi_id", "at"]),
    "ix_alert_notices_team_state_release": ("alert_notices", ["team_id", "state", "release_at"]),
}


def columns() -> dict[str, list[sa.Column[object]]]:
    """Each table's columns, as new objects on every call."""

    def time(name: str, *, nullable: bool = True) -> sa.Column[object]:
        return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)

    def text(name: str, length: int | None = None, *, nullable: bool = True) -> sa.Column[object]:
        return sa.Column(name, sa.String(length) if length else sa.Text(), nullable=nullable)

    def key(name: str, length: int) -> sa.Column[object]:
        return sa.Column(name, sa.String(length), primary_key=True)

    def number(name: str, *, nullable: bool = False) -> sa.Column[object]:
        return sa.Column(name, sa.Integer(), nullable=nullable)

    return {
        "alert_states": [
            key("team_id", 40),
            key("kpi_id", 40),
            text("state", 16, nullable=False),
            time("since"),
            text("level", 16),
            number("streak"),
            text("streak_level", 16),
            number("failures"),
            text("held", 16),
            time("incident"),
            time("last_notice"),
            sa.Column("index_value", sa.Float()),
            text("levels", 200),
            text("came_from", 16),
            time("read_at"),
            number("version"),
        ],
        "alert_checks": [
            key("team_id", 40),
            sa.Column("check_at", sa.DateTime(timezone=True), primary_key=True),
            text("claimed_by", 120, nullable=False),
            time("claimed_until", nullable=False),
            time("done_at"),
        ],
        "alert_transitions": [
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            text("team_id", 40, nullable=False),
            text("kpi_id", 40, nullable=False),
            time("at", nullable=False),
            text("before", 16, nullable=False),
            text("after", 16, nullable=False),
            text("move", 16, nullable=False),
            sa.Column("index_value", sa.Float()),
            text("reason", 400),
        ],
        "alert_notices": [
            key("id", 160),
            text("team_id", 40, nullable=False),
            text("kpi_id", 40, nullable=False),
            text("kind", 16, nullable=False),
            time("at", nullable=False),
            time("release_at", nullable=False),
            text("level", 16),
            sa.Column("index_value", sa.Float()),
            time("incident"),
            sa.Column("fired_seconds", sa.Float()),
            text("reason", 400),
            text("came_from", 16),
            text("items"),
            sa.Column("held", sa.Boolean(), nullable=False),
            text("state", 16, nullable=False),
            text("message_id", 63),
            text("claimed_by", 120),
            time("claimed_until"),
            number("attempts"),
            time("sent_at"),
            text("detail", 400),
        ],
        "alert_deliveries": [
            key("message_id", 63),
            key("target", 200),
            text("team_id", 40, nullable=False),
            text("outcome", 16, nullable=False),
            time("at", nullable=False),
            text("detail", 400),
        ],
    }


def upgrade() -> None:
    """Create the alert tables and their indexes."""
    for name, items in columns().items():
        op.create_table(name, *items)
    for name, (table, indexed) in INDEXES.items():
        op.create_index(name, table, indexed)


def downgrade() -> None:
    """Drop the alert tables."""
    for name in reversed(list(columns())):
        op.drop_table(name)
