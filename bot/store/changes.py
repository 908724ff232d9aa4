"""Each team's change marker: one row, moved on in the same transaction as every reading, delivery record and
pruning of the team, whichever process writes them. A reader that kept what it read of a team (a
`/score` worker's history) reads this one row to know whether the store still says the same.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import pq
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from bot.store.engine import Database
from bot.store.schema import metadata

team_changes = sa.Table(
    "team_changes",
    metadata,
    sa.Column("team_id", sa.String(40), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)
"""Each team's change marker (revision 0003)."""

_MARK_SQL = {
    "sqlite": "SELECT version FROM team_changes WHERE team_id = ?",
    "postgresql": "SELECT version FROM team_changes WHERE team_id = $1",
}
"""A team's change marker, in each driver's parameter style (PostgreSQL's is libpq's own)."""


class Changes(Database):
    """The teams' change markers."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._marks = ChangeMarks(self.engine)

    def team_version(self, team_id: str) -> int:
        """The team's change marker: it grows with every reading and delivery record of the team, and with
        every pruning that removed readings or deliveries, whichever process wrote them (0: none yet).

        One primary-key read on a connection of its own in autocommit, so it sees every commit so far."""
        return self._marks.version(team_id)


def bump(conn: Connection, team_ids: set[str]) -> None:
    """Move the teams' change markers on (in one order, so two writers never wait on each other in a cycle)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    for team_id in sorted(team_ids):
        statement = insert(team_changes).values(team_id=team_id, version=1)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=[team_changes.c.team_id], set_={"version": team_changes.c.version + 1}
            )
        )


def bump_all(conn: Connection) -> None:
    """Move every team's change marker on (retention removed rows of any team)."""
    conn.execute(team_changes.update().values(version=team_changes.c.version + 1))


class ChangeMarks:
    """Reads change markers on one driver connection of its own, in autocommit and outside the pool: a
    single indexed row read costs no pool checkout, ping, transaction or rollback (on PostgreSQL it is
    one libpq call, without psycopg's cursor). One reader at a time; a connection that failed is dropped
    (the next read opens another) and the error raised as SQLAlchemy's."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._conn: Any = None
        self._closer: weakref.finalize[Any, Any] | None = None
        self._sql = _MARK_SQL[engine.dialect.name]
        sa.event.listen(engine, "engine_disposed", self.close)

    def version(self, team_id: str) -> int:
        """The team's change marker, 0 if it has none."""
        error = self._engine.dialect.loaded_dbapi.Error
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._open()
                found = self._read(team_id)
            except error as exc:
                self._close_locked()
                raise sa.exc.DBAPIError.instance(self._sql, (team_id,), exc, error) from exc
        return int(found) if found is not None else 0

    def _read(self, team_id: str) -> Any:
        """The marker's value as the driver gives it, None without a row; raises the driver's error."""
        if self._engine.dialect.name == "postgresql":
            result = self._conn.pgconn.exec_params(self._sql.encode(), [team_id.encode()])
            if result.status != pq.ExecStatus.TUPLES_OK:
                raise psycopg.OperationalError(result.error_message.decode(errors="replace").strip())
            return result.get_value(0, 0) if result.ntuples else None
        cursor = self._conn.cursor()
        cursor.execute(self._sql, (team_id,))
        row = cursor.fetchone()
        cursor.close()
        return row[0] if row else None

    def close(self, *_args: Any) -> None:
        """Close the connection (the engine was disposed); the next read opens another."""
        with self._lock:
            self._close_locked()

    def _open(self) -> Any:
        pooled = self._engine.raw_connection()
        conn: Any = pooled.driver_connection
        pooled.detach()  # ours until closed: never handed back to the pool in autocommit
        conn.rollback()
        if self._engine.dialect.name == "sqlite":
            conn.isolation_level = None  # autocommit: each read sees the latest commit (WAL)
        else:
            conn.autocommit = True
        # Detached, the pool never closes it: close it when this reader goes, even if its engine was never disposed.
        self._closer = weakref.finalize(self, _close_quietly, conn)
        return conn

    def _close_locked(self) -> None:
        closer, self._conn, self._closer = self._closer, None, None
        if closer is not None:
            closer()


def _close_quietly(conn: Any) -> None:
    with contextlib.suppress(Exception):  # a broken connection may fail to close too
        conn.close()
