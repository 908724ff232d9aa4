"""The schema's version, owned by Alembic: what opening a store checks, and `python -m bot db upgrade|current`.

A store is in one of four states when a process opens it:

- empty (none of Scorebot's tables): created at the head revision under the schema lock, so that
  several processes starting together on a new database create it once;
- at the head revision: opened;
- at a revision this version does not know: written by a newer release (a rollback); opened with a
  warning, since a revision adds what the release before it can live with;
- behind the head, or from before Alembic (``schema_info`` but no ``alembic_version``): refused, with
  one line naming ``python -m bot db upgrade``. Upgrading is a deploy step, run once before the new
  version serves, not whatever the first instance to start does while old ones still serve.

The schema lock is SQLite's write lock (``BEGIN IMMEDIATE``) or a PostgreSQL advisory lock held to the
end of the transaction; everything an upgrade does runs in that one transaction.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from bot.errors import SchemaError
from bot.store.migrations import legacy
from bot.store.schema import metadata

MIGRATIONS = Path(__file__).resolve().with_name("migrations")
"""Alembic's script directory (found from this file, so from any working directory)."""
BASELINE = "0001"
"""The revision that is the schema as it was before Alembic (``schema_info`` version 4)."""
LOCK_KEY = 0x5C0DEB07
"""The PostgreSQL advisory lock held while the schema is created or upgraded."""
UPGRADE = "python -m bot db upgrade"

log = logging.getLogger(__name__)
logging.getLogger("alembic").setLevel(logging.WARNING)  # `db upgrade` prints its own line


@dataclass(frozen=True)
class SchemaState:
    """Where a store's schema stands."""

    revision: str | None
    """``alembic_version``'s revision; None when the store has none (empty, or from before Alembic)."""
    head: str
    """This version's head revision."""
    legacy: int | None
    """For a store from before Alembic, its ``schema_info`` version (0 when it has none)."""

    @property
    def empty(self) -> bool:
        """None of Scorebot's tables are there."""
        return self.revision is None and self.legacy is None

    @property
    def at_head(self) -> bool:
        return self.revision == self.head

    @property
    def known(self) -> bool:
        """The revision is one of this version's (else a newer release wrote it)."""
        return self.revision is None or self.revision in _revisions()

    def describe(self) -> str:
        """The state in a few words, for `db current` and errors."""
        if self.empty:
            return f"empty (head is {self.head})"
        if self.revision is None:
            return f"from before schema revisions (schema {self.legacy}); head is {self.head}"
        if self.at_head:
            return f"{self.revision} (head)"
        if not self.known:
            return f"{self.revision}: not a revision of this version (head {self.head}), written by a newer release"
        return f"{self.revision}, behind head {self.head}"


@functools.cache
def _script() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


@functools.cache
def _revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _script().walk_revisions())


def head() -> str:
    """This version's head revision."""
    found = _script().get_current_head()
    if found is None:
        raise AssertionError(f"no revisions in {MIGRATIONS}")
    return found


def read_state(conn: Connection) -> SchemaState:
    """The schema state of the store ``conn`` is connected to."""
    tables = set(sa.inspect(conn).get_table_names())
    if "alembic_version" in tables:
        return SchemaState(MigrationContext.configure(conn).get_current_revision(), head(), None)
    if not tables & {"schema_info", "snapshots", *metadata.tables}:
        return SchemaState(None, head(), None)
    version = conn.execute(sa.text("SELECT max(version) FROM schema_info")).scalar() if "schema_info" in tables else 0
    return SchemaState(None, head(), version or 0)


@contextmanager
def locked(engine: Engine) -> Iterator[Connection]:
    """A connection whose transaction holds the schema lock; committed when the block ends without error."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        yield conn
        conn.commit()


def prepare(engine: Engine) -> None:
    """What opening a store does: create an empty one at head (under the lock), open one at head or at a
    newer release's revision, refuse any other with a `SchemaError` naming ``python -m bot db upgrade``."""
    with engine.connect() as conn:
        state = read_state(conn)
    if state.empty:
        with locked(engine) as conn:
            state = read_state(conn)  # another process may have created it meanwhile
            if state.empty:
                _run(conn, "upgrade", "head")
                return
    if state.at_head:
        return
    shown = engine.url.render_as_string(hide_password=True)
    if not state.known:
        log.warning("store %s: schema %s; opening it all the same", shown, state.describe())
        return
    raise SchemaError(f"store {shown}: schema {state.describe()}: run `{UPGRADE}` before this version serves")


def upgrade(engine: Engine) -> tuple[SchemaState, SchemaState]:
    """Bring the store to head under the lock, in one transaction; the state before and after.

    A store from before Alembic is first brought to the baseline (`legacy`) and stamped with it.
    """
    with locked(engine) as conn:
        before = read_state(conn)
        if not before.known:
            raise SchemaError(f"schema {before.describe()}: upgrade it with that release, not this one")
        if before.legacy is not None:
            with Operations.context(MigrationContext.configure(conn)):
                legacy.to_baseline(conn, _script().get_revision(BASELINE).module)
            _run(conn, "stamp", BASELINE)
        _run(conn, "upgrade", "head")
        return before, read_state(conn)


def _run(conn: Connection, action: str, revision: str) -> None:
    """Alembic's ``upgrade`` or ``stamp`` to ``revision``, on ``conn`` and in its transaction (see env.py)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    getattr(command, action)(config, revision)
