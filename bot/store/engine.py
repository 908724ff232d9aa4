"""The engine and its connection rules: SQLite's WAL and busy timeout, PostgreSQL through psycopg, every
known secret hidden in the parameters of every statement, times stored in UTC; and `Database`, one store's
engine with the connection a thread's reads may share."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import tenacity
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from bot.secrets import scrub
from bot.store.migrate import prepare


def resolve_url(url: str, base_dir: Path) -> str:
    """Make a relative SQLite path relative to ``base_dir`` (the config file's folder)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != prefix + ":memory:":
        path = Path(url.removeprefix(prefix))
        if not path.is_absolute():
            return prefix + str((base_dir / path).resolve())
    return url


def make_engine(url: str) -> Engine:
    """An engine for ``url`` that hides known secrets in every string it writes; SQLite gets WAL and a busy timeout."""
    if url.startswith("sqlite"):
        # Named parameters: a value a statement uses in several places is converted and sent once.
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, paramstyle="named")

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            _switch_to_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit survives the process, fsync at checkpoints
            cursor.close()

    else:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        engine = sa.create_engine(url, pool_pre_ping=True)
    sa.event.listen(engine, "before_cursor_execute", _scrub_parameters, retval=True)
    return engine


@tenacity.retry(
    retry=tenacity.retry_if_exception(lambda exc: isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)),
    wait=tenacity.wait_random(0.01, 0.1),
    stop=tenacity.stop_after_delay(30),
    reraise=True,
)
def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    """Put the file in WAL mode. Switching a new file's mode takes an exclusive lock without waiting on the busy
    timeout, so several processes opening a new store together see "database is locked": retried for 30 s."""
    cursor.execute("PRAGMA journal_mode=WAL")


def _scrub_parameters(
    _conn: Connection, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool
) -> tuple[str, Any]:
    """The statement's parameters with every known secret hidden in their strings (all tables, all columns)."""
    if executemany:
        return statement, [_scrub_row(row) for row in parameters]
    return statement, _scrub_row(parameters)


def _scrub_row(row: Any) -> Any:
    if isinstance(row, dict):
        return {key: scrub(value) if isinstance(value, str) else value for key, value in row.items()}
    if isinstance(row, list | tuple):
        return type(row)(scrub(value) if isinstance(value, str) else value for value in row)
    return row


def insert_ignore(conn: Connection, table: sa.Table, values: dict[str, Any]) -> int:
    """Insert a row unless its primary key exists (atomic in SQLite and PostgreSQL); 1 if inserted."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table).values(**values).on_conflict_do_nothing()
    # Drivers report no row count for INSERT unless asked to keep it.
    result = conn.execute(statement.execution_options(preserve_rowcount=True))
    return result.rowcount


def to_utc(moment: datetime) -> datetime:
    """A time as the database gets it: in UTC (a naive one is taken as UTC already)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc_aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Database:
    """One store's engine, and the connection a thread's reads may share.

    Opening a store creates an empty one at the head revision and refuses one behind it (`bot.store.migrate`).
    """

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._local = threading.local()
        try:
            prepare(self.engine)
        except BaseException:
            self.engine.dispose()
            raise

    @contextmanager
    def one_connection(self) -> Iterator[None]:
        """Run this thread's reads inside on one connection, checked out at the first of them (a card's
        queries check out one connection, not five)."""
        if getattr(self._local, "sharing", False):
            yield
            return
        self._local.sharing, self._local.conn = True, None
        try:
            yield
        finally:
            conn, self._local.sharing, self._local.conn = self._local.conn, False, None
            if conn is not None:
                conn.close()

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        """A connection for reads: this thread's `one_connection`, else a new one."""
        if not getattr(self._local, "sharing", False):
            with self.engine.connect() as conn:
                yield conn
            return
        if self._local.conn is None:
            self._local.conn = self.engine.connect()
        try:
            yield self._local.conn
        except sa.exc.SQLAlchemyError:
            self._local.conn.rollback()  # the next read starts a clean transaction
            raise
