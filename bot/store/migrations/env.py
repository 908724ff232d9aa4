"""Alembic's environment: runs the revisions on the connection `bot.store.migrate` passes (in its locked
transaction), or, from the ``alembic`` command line, on the store ``-x url=...`` (else $SCOREBOT_STORE)
names, under the same lock."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection

from bot.store.engine import make_engine
from bot.store.migrate import locked
from bot.store.schema import metadata


def run(connection: Connection) -> None:
    """Run the revisions Alembic was asked for on ``connection``, in the transaction it is in."""
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    run(given)
elif context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: run the revisions against a store")
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("SCOREBOT_STORE")
    if not url:
        raise SystemExit("name the store: alembic -x url=sqlite:///FILE ... (or set $SCOREBOT_STORE)")
    engine = make_engine(url)
    with locked(engine) as conn:
        run(conn)
    engine.dispose()
