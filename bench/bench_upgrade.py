"""How long `python -m bot db upgrade` takes on the store the release before Alembic wrote
(tests/fixtures/store-3c76008.*.sql), and what opening an empty store costs now that Alembic makes it,
against ``metadata.create_all`` (what that release did) in the same process.

    .venv/bin/python bench/bench_upgrade.py [--runs 7] [--postgres URL]

Prints the median of ``--runs`` runs for SQLite (a file) and, when the server answers, PostgreSQL
(a fresh schema each run).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.store import Store, make_engine, metadata
from bot.store.migrate import upgrade
from tests.test_migrations import load_3c76008

Fresh = Callable[[], AbstractContextManager[str]]
"""A new empty store's URL for the block's duration."""


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{Path(folder) / 'store.db'}"


def postgres_url(server: str) -> Fresh:
    @contextmanager
    def fresh() -> Iterator[str]:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{server}?options=-csearch_path%3D{schema}"
        finally:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(f'DROP SCHEMA "{schema}" CASCADE')

    return fresh


def timed(fresh: Fresh, prepare: Callable[[str], None], work: Callable[[str], None]) -> float:
    """Milliseconds ``work`` takes on a fresh store ``prepare`` filled."""
    with fresh() as url:
        prepare(url)
        started = time.perf_counter()
        work(url)
        return (time.perf_counter() - started) * 1000


def leave_empty(_url: str) -> None:
    pass


def run_upgrade(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


def open_store(url: str) -> None:
    Store(url).engine.dispose()


def create_all(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        metadata.create_all(conn)
        conn.execute(metadata.tables["schema_info"].insert().values(version=4))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    stores: dict[str, Fresh] = {"sqlite": sqlite_url}
    try:
        psycopg.connect(args.postgres, connect_timeout=3).close()
        stores["postgresql"] = postgres_url(args.postgres)
    except psycopg.OperationalError:
        print("postgresql: not reachable, skipped")
    for name, fresh in stores.items():
        upgrades = [timed(fresh, load_3c76008, run_upgrade) for _ in range(args.runs)]
        opens = [timed(fresh, leave_empty, open_store) for _ in range(args.runs)]
        creates = [timed(fresh, leave_empty, create_all) for _ in range(args.runs)]
        up, made, old = (statistics.median(values) for values in (upgrades, opens, creates))
        print(f"{name}: db upgrade of the 3c76008 store: median {up:.1f} ms of {args.runs} runs")
        print(
            f"{name}: an empty store opened (made at head by Alembic): median {made:.1f} ms;"
            f" metadata.create_all as before: {old:.1f} ms ({made / old:.1f}x)"
        )


if __name__ == "__main__":
    main()
