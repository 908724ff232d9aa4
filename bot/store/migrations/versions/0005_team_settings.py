"""Teams' own settings: ``team_settings`` (overrides of the YAML's editable fields, with a version),
``settings_audit`` (every attempt at a change, with its outcome) and ``space_links`` (Spaces linked from Chat).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the three tables, empty: every team starts with the YAML's settings and no linked Space. The
    release before this one neither reads nor writes them."""
    op.create_table(
        "team_settings",
        sa.Column("team_id", sa.String(40), primary_key=True),
        sa.Column("overrides", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(320), nullable=False),
    )
    op.create_table(
        "settings_audit",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("team_id", sa.String(40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("who", sa.String(320), nullable=False),
        sa.Column("field", sa.String(40), nullable=False),
        sa.Column("old", sa.Text(), nullable=True),
        sa.Column("new", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_settings_audit_team", "settings_audit", ["team_id", "id"])
    op.create_table(
        "space_links",
        sa.Column("space", sa.String(80), primary_key=True),
        sa.Column("team_id", sa.String(40), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("linked_by", sa.String(320), nullable=False),
    )


def downgrade() -> None:
    """Drop the three tables."""
    op.drop_table("space_links")
    op.drop_index("ix_settings_audit_team", table_name="settings_audit")
    op.drop_table("settings_audit")
    op.drop_table("team_settings")
