"""Readings keep what the read found besides the counts (top items, oldest, new), for any process's card.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``readings.extras`` (JSON text; NULL for the readings before it, which show their counts only)."""
    with op.batch_alter_table("readings") as table:
        table.add_column(sa.Column("extras", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop ``readings.extras``."""
    with op.batch_alter_table("readings") as table:
        table.drop_column("extras")
