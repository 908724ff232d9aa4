"""Stores from before Alembic (``schema_info`` versions 1 to 4, no ``alembic_version``) brought to the
baseline revision, which is version 4; `bot.store.migrate.upgrade` then stamps them with it.

1: ``snapshots`` only. 2: with the scheduler's tables, without their indexes. 3: ``readings`` and
``kpi_latest`` in place of ``snapshots`` (rows carried over as origin ``legacy``), ``prune_marks``, the
indexes. 4: ``slot_runs.retry_at``. A version-4 store needs nothing: each step checks what is there.
Runs inside Alembic's operations context, in the upgrade's one locked transaction.
"""

from __future__ import annotations

from types import ModuleType

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

LEGACY_ORIGIN = "legacy"
"""The origin of readings carried over from ``snapshots``."""


def to_baseline(conn: Connection, baseline: ModuleType) -> None:
    """Add what the baseline has and the store lacks (tables, indexes, columns), carry ``snapshots`` over
    into ``readings``, point ``kpi_latest`` at each KPI's newest reading, and record version 4."""
    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names())
    tables = {name: op.create_table(name, *items) for name, items in baseline.columns().items() if name not in present}
    for name, (table, columns) in baseline.INDEXES.items():
        if table in tables or name not in {index["name"] for index in inspector.get_indexes(table)}:
            op.create_index(name, table, columns)
    if "retry_at" not in {column["name"] for column in inspector.get_columns("slot_runs")}:
        op.add_column("slot_runs", sa.Column("retry_at", sa.DateTime(timezone=True)))
    if "snapshots" in present:
        conn.execute(
            sa.text(
                "INSERT INTO readings (team_id, kpi_id, taken_at, origin, counts, index_value)"
                " SELECT team_id, kpi_id, taken_at, :origin, counts, index_value FROM snapshots ORDER BY id"
            ),
            {"origin": LEGACY_ORIGIN},
        )
        op.drop_table("snapshots")
    if "kpi_latest" not in present:
        _point_latest(conn)
    conn.execute(sa.text("DELETE FROM schema_info"))
    conn.execute(sa.text("INSERT INTO schema_info (version) VALUES (4)"))


def _point_latest(conn: Connection) -> None:
    """Each KPI's newest reading into ``kpi_latest`` (the highest id among its readings at the newest time)."""
    conn.execute(
        sa.text(
            "INSERT INTO kpi_latest (team_id, kpi_id, reading_id, taken_at)"
            " SELECT r.team_id, r.kpi_id, max(r.id), r.taken_at FROM readings r"
            " JOIN (SELECT team_id, kpi_id, max(taken_at) AS taken_at FROM readings GROUP BY team_id, kpi_id) n"
            " ON r.team_id = n.team_id AND r.kpi_id = n.kpi_id AND r.taken_at = n.taken_at"
            " GROUP BY r.team_id, r.kpi_id, r.taken_at"
        )
    )
