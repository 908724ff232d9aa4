"""New-item alerts: each item an alert told of, kept so that no item is told twice.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``alert_items`` (one row per team and item told of) and its index by check time."""
    op.create_table(
        "alert_items",
        sa.Column("team_id", sa.String(40), primary_key=True),
        sa.Column("item", sa.String(64), primary_key=True),
        sa.Column("check_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_alert_items_check", "alert_items", ["check_at"])


def downgrade() -> None:
    """Drop ``alert_items``."""
    op.drop_table("alert_items")
