"""The store: KPI snapshots (history), through SQLAlchemy.

SQLite file by default; PostgreSQL for several instances. Tables are created
on start, and the schema version is recorded so later changes can migrate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

SCHEMA_VERSION = 1

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


@dataclass(frozen=True)
class Snapshot:
    """A KPI's counts and index as read at one moment (UTC)."""

    taken_at: datetime
    counts: dict[str, int]
    index: float


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
        metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            if conn.execute(sa.select(schema_info.c.version)).first() is None:
                conn.execute(schema_info.insert().values(version=SCHEMA_VERSION))

    def save_snapshot(
        self, team_id: str, kpi_id: str, taken_at: datetime, counts: dict[str, int], index: float
    ) -> None:
        """Record one reading of a KPI."""
        with self.engine.begin() as conn:
            conn.execute(
                snapshots.insert().values(
                    team_id=team_id,
                    kpi_id=kpi_id,
                    taken_at=taken_at.astimezone(UTC),
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


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
