"""Each team's change marker: ``team_changes``, one row a team, moved on with every reading, delivery record
and pruning of the team (a `/score` worker reads it to know whether the history it kept is still current).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``team_changes``, empty: every team's marker starts at 0 and moves with its next write. The
    release before this one neither reads nor writes it; while it still writes beside this one (a rolling
    deploy), its writes move no marker, and a kept history lags them by its minute at most."""
    op.create_table(
        "team_changes",
        sa.Column("team_id", sa.String(40), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    """Drop ``team_changes``."""
    op.drop_table("team_changes")
