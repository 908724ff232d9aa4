"""Alembic owns the schema: a new store is made at head, a store written by the release before Alembic
(commit 3c76008, fixtures/store-3c76008.*.sql) is refused until `python -m bot db upgrade`, then upgraded
with nothing lost; several processes opening one empty store together all succeed."""

import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
import sqlalchemy as sa
import yaml
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from bot.__main__ import main
from bot.errors import SchemaError
from bot.store import POST, NewItems, Reading, Store, make_engine, metadata
from bot.store.migrate import BASELINE, MIGRATIONS, head, read_state, upgrade

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
LATER_TABLES = (
    "alert_states",
    "alert_checks",
    "alert_transitions",
    "alert_notices",
    "alert_deliveries",
    "team_changes",
    "team_settings",
    "settings_audit",
    "space_links",
    "alert_items",
)
"""The tables revisions after the baseline add (0002: alerts; 0003: team change markers; 0005: team settings;
0006: new items told)."""
LATER_COLUMNS = {"readings": ("extras",)}
"""The columns revisions after the baseline add to its tables (0004: what a reading found besides the counts)."""
LAST = T0 + timedelta(days=5, hours=1)
"""The fixture's last slot: beta's is pending (HTTP 429, retry at +2 min), alpha's is claimed by tick-3."""


def load_3c76008(url: str) -> None:
    """The fixture's dump, as the release before Alembic wrote it, into the store at ``url``."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.executescript((FIXTURES / "store-3c76008.sqlite.sql").read_text())
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((FIXTURES / "store-3c76008.postgresql.sql").read_text())


def at_revision(engine: sa.Engine, revision: str, action: str = "upgrade") -> None:
    """Bring the store to ``revision`` with Alembic's own command (``upgrade`` or ``downgrade``), in one transaction."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(command, action)(config, revision)


def schema_of(engine: sa.Engine) -> dict[str, object]:
    """Every table but Alembic's: its columns (name, type, nullable, default), primary key and indexes."""
    inspector = sa.inspect(engine)
    return {
        table: (
            [(c["name"], str(c["type"]), c["nullable"], c.get("default")) for c in inspector.get_columns(table)],
            inspector.get_pk_constraint(table)["constrained_columns"],
            sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table)),
        )
        for table in sorted(set(inspector.get_table_names()) - {"alembic_version"})
    }


@pytest.fixture
def old_store(store_url, monkeypatch):
    """The store URL, holding the 3c76008 fixture, named by $SCOREBOT_STORE for the CLI."""
    load_3c76008(store_url)
    monkeypatch.setenv("SCOREBOT_STORE", store_url)
    monkeypatch.delenv("SCOREBOT_CONFIG", raising=False)
    return store_url


def test_a_new_store_is_made_at_head_with_the_tables_the_queries_use(store_url):
    store = Store(store_url)
    with store.engine.connect() as conn:
        assert read_state(conn).revision == head()
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    store.engine.dispose()


def test_the_baseline_is_the_schema_the_release_before_alembic_made(old_store, store_url, tmp_path):
    old = make_engine(store_url)
    before = schema_of(old)
    old.dispose()
    new_url = f"sqlite:///{tmp_path / 'new.db'}" if store_url.startswith("sqlite") else None
    if new_url is None:  # a second schema beside the fixture's, on the same server
        schema = f"{store_url.rpartition('%3D')[2]}_new"
        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        new_url = f"{store_url.rpartition('%3D')[0]}%3D{schema}"
    try:
        new = Store(new_url)
        made = schema_of(new.engine)
        baseline = {
            table: ([c for c in columns if c[0] not in LATER_COLUMNS.get(table, ())], *rest)
            for table, (columns, *rest) in made.items()
        }
        assert {table: baseline[table] for table in before} == before  # the baseline; later revisions add to it
        assert [c[0] for c in made["readings"][0] if c[0] not in [b[0] for b in before["readings"][0]]] == ["extras"]
        assert sorted(set(made) - set(before)) == sorted(LATER_TABLES)
        new.engine.dispose()
    finally:
        if not new_url.startswith("sqlite"):
            with psycopg.connect(store_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_a_store_from_before_alembic_is_refused_with_one_line_naming_the_upgrade(old_store, capsys):
    with pytest.raises(SchemaError, match=r"run `python -m bot db upgrade` before this version serves$") as refused:
        Store(old_store)
    assert "\n" not in str(refused.value)
    assert "schema 4" in str(refused.value)

    assert main(["tick"]) == 2
    assert main(["send", "customer"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2
    assert err.splitlines()[0] == f"error: {refused.value}"

    assert main(["db", "current"]) == 1
    assert capsys.readouterr().out == f"from before schema revisions (schema 4); head is {head()}\n"


def test_the_release_before_alembic_store_upgrades_with_nothing_lost(old_store, capsys):
    assert main(["db", "upgrade"]) == 0
    assert f"schema 4 from before revisions upgraded to {head()} (head) in " in capsys.readouterr().out
    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out == f"{head()} (head)\n"
    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out.endswith(f": at {head()} (head) already\n")

    store = Store(old_store)
    berlin = ZoneInfo("Europe/Berlin")
    # Readings and history, as the old release wrote them.
    latest = store.latest_readings("alpha")
    assert sorted(latest) == ["late", "open"]
    assert latest["open"].taken_at == T0 + timedelta(days=4, hours=8, minutes=1)
    assert (latest["open"].origin, latest["open"].counts, latest["open"].index) == (
        "refresh",
        {"High": 5, "Low": 8},
        56.0,
    )
    assert len(store.recent_readings("alpha", limit=100)) == 30
    history = store.card_history(
        "alpha", berlin, 7, T0 + timedelta(days=5), T0 + timedelta(days=2), T0 + timedelta(days=5)
    )
    assert [point is not None for _, point in history.days["open"]] == [False, True, True, True, True, True, False]
    assert history.post is not None and history.post[0] == T0 + timedelta(days=4, hours=1)
    assert history.post[1]["open"].origin == POST
    assert history.week["open"].taken_at == T0 + timedelta(days=2, hours=1, minutes=1)
    # Schedule state: slots in every state, deliveries, marks, the outbox.
    assert [run.state for run in store.slot_runs("beta")] == ["pending", "superseded", "missed"]
    assert store.slot_runs("beta")[0].retry_at == LAST + timedelta(minutes=2)
    assert store.settled_targets("beta", LAST) == {"https://chat.example/hook"}
    assert store.settled_targets("alpha", T0 + timedelta(days=4, hours=1)) == {"spaces/A"}
    assert store.find_mark("alpha").scanned_until == LAST
    assert [entry.message["text"] for entry in store.outbox("alpha")] == [f"day {d}" for d in range(4, -1, -1)]

    # And written through the new code: ids carry on after the old rows, claims work on old slots.
    assert store.claim("beta", LAST, "tick-4", LAST + timedelta(minutes=1), LAST + timedelta(minutes=6)) == 0
    assert store.claim("beta", LAST, "tick-4", LAST + timedelta(minutes=2), LAST + timedelta(minutes=7)) == 2
    assert store.finish("beta", LAST, "tick-4", "delivered", LAST + timedelta(minutes=3), None)
    assert store.claim("alpha", LAST, "tick-5", LAST + timedelta(minutes=6), LAST + timedelta(minutes=9)) == 2
    fresh = Reading("alpha", "open", LAST + timedelta(minutes=7), POST, {"High": 9}, 99.0, rows=9, plan="q", slot=LAST)
    store.add_readings([fresh])
    assert store.latest_readings("alpha")["open"] == fresh
    assert len(store.recent_readings("alpha", limit=100)) == 31
    store.record_delivery("alpha", LAST, "spaces/A", "delivered", LAST + timedelta(minutes=8), message_id="m/2")
    store.add_outbox("alpha", LAST, {"text": "after the upgrade"}, LAST + timedelta(minutes=8))
    assert store.outbox("alpha")[0].message == {"text": "after the upgrade"}
    assert store.last_post("alpha", LAST + timedelta(hours=1))[0] == LAST
    assert store.prune(T0 + timedelta(days=30), keep_days=7, batch=1000)["readings"] > 0
    store.engine.dispose()


def test_an_empty_store_opened_by_several_processes_together_is_made_once(store_url):
    start = time.time() + 3  # every process imports first, then all open the store at this moment
    script = "import sys, time; from bot.store import Store; time.sleep(max(0.0, float(sys.argv[2]) - time.time()));"
    command = [sys.executable, "-c", script + " Store(sys.argv[1])", store_url, str(start)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    opens = [subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [process.communicate(timeout=120)[1] for process in opens]
    assert [process.returncode for process in opens] == [0] * 4, errors

    engine = make_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [head()]
        assert conn.execute(sa.text("SELECT version FROM schema_info")).scalars().all() == [4]
    engine.dispose()


def test_a_store_a_newer_release_upgraded_is_opened_with_a_warning_and_not_upgraded(store_url, caplog):
    Store(store_url).engine.dispose()
    engine = make_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))

    store = Store(store_url)  # a rollback: this release serves on
    assert "schema 9999: not a revision of this version" in caplog.text
    store.engine.dispose()
    with pytest.raises(SchemaError, match="upgrade it with that release"):
        upgrade(engine)
    engine.dispose()


def test_db_upgrade_makes_an_empty_store(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SCOREBOT_STORE", f"sqlite:///{tmp_path / 'new.db'}")
    monkeypatch.delenv("SCOREBOT_CONFIG", raising=False)
    assert main(["db", "current"]) == 1
    assert capsys.readouterr().out == f"empty (head is {head()})\n"
    assert main(["db", "upgrade"]) == 0
    assert f"created at {head()} (head) in " in capsys.readouterr().out
    assert main(["db", "current"]) == 0


def test_the_production_server_refuses_an_old_store_with_one_line(old_store, tmp_path):
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["chat"] = {"verify": True, "audience": "123456789012"}
    config["sources"]["demo"]["path"] = str(REPO / "config" / "demo-issues.csv")
    (tmp_path / "production.yaml").write_text(yaml.safe_dump(config))
    env = {
        "PATH": os.environ["PATH"],
        "SCOREBOT_CONFIG": str(tmp_path / "production.yaml"),
        "SCOREBOT_STORE": old_store,
    }
    server = [sys.executable, "main.py", "--host=127.0.0.1", "--port=0"]  # app.yaml's entrypoint
    done = subprocess.run(server, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 3
    [line] = [line for line in output.splitlines() if "cannot start" in line]
    assert line.endswith("run `python -m bot db upgrade` before this version serves")
    assert "Traceback" not in output


def test_the_revisions_ship_and_are_found_from_any_working_directory(tmp_path):
    files = sorted(str(path.relative_to(REPO)) for path in MIGRATIONS.rglob("*") if path.suffix in {".py", ".mako"})
    assert f"bot/store/migrations/versions/{BASELINE}_baseline.py" in files
    # gcloud uploads what .gcloudignore (gitignore syntax) does not name; .gitignore's rules checked too.
    rules = ["-c", f"core.excludesFile={REPO / '.gcloudignore'}", "check-ignore", "--no-index", *files]
    ignored = subprocess.run(["git", *rules], cwd=REPO, capture_output=True, text=True, check=False)
    assert (ignored.returncode, ignored.stdout) == (1, "")  # 1: none of them ignored
    found = subprocess.run(
        [sys.executable, "-c", "from bot.store.migrate import head; print(head())"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout == f"{head()}\n"


def upgraded_with_one_reading(store_url: str, revision: str) -> Store:
    """A store brought to ``revision`` with one reading in it, then upgraded to head and opened."""
    engine = make_engine(store_url)
    at_revision(engine, revision)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO readings (team_id, kpi_id, taken_at, origin, counts, index_value)"
                " VALUES ('alpha', 'open', :at, 'score', '{\"High\": 2}', 10.0)"
            ),
            {"at": T0},
        )
    upgrade(engine)
    engine.dispose()
    return Store(store_url)


def test_a_store_at_0002_with_rows_upgrades_to_change_markers_that_start_at_0(store_url):
    store = upgraded_with_one_reading(store_url, "0002")
    assert [r.index for r in store.recent_readings("alpha")] == [10.0]
    assert store.team_version("alpha") == 0
    store.add_readings([Reading("alpha", "open", T0 + timedelta(minutes=1), POST, {"High": 3}, 15.0)])
    assert store.team_version("alpha") == 1
    store.engine.dispose()


def test_a_store_at_0004_with_rows_upgrades_to_team_settings_that_start_empty(store_url):
    store = upgraded_with_one_reading(store_url, "0004")
    assert [r.index for r in store.recent_readings("alpha")] == [10.0]
    assert store.team_overrides("alpha").version == 0
    assert store.linked_team("spaces/A") is None
    saved = store.save_overrides("alpha", {"timezone": "Asia/Tokyo"}, version=0, who="ana@example.com", at=T0)
    assert saved.saved
    assert store.team_overrides("alpha").values == {"timezone": "Asia/Tokyo"}
    assert [(c.field, c.new, c.outcome) for c in store.settings_history("alpha")] == [
        ("timezone", "Asia/Tokyo", "saved")
    ]
    store.engine.dispose()
    engine = make_engine(store_url)
    at_revision(engine, "0004", "downgrade")
    assert not {"team_settings", "settings_audit", "space_links"} & set(sa.inspect(engine).get_table_names())
    engine.dispose()


def test_a_store_at_0005_with_alert_rows_upgrades_to_keep_the_new_items_told(store_url):
    engine = make_engine(store_url)
    at_revision(engine, "0005")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO alert_checks (team_id, check_at, claimed_by, claimed_until, done_at)"
                " VALUES ('alpha', :at, 'tick-1', :at, :at)"
            ),
            {"at": T0},
        )
    upgrade(engine)
    engine.dispose()
    store = Store(store_url)
    assert "alert_items" in sa.inspect(store.engine).get_table_names()
    moment = (T0 + timedelta(minutes=1)).isoformat()
    new = NewItems(
        {"k1": {"title": "Down", "category": "Critical", "created": moment, "link": None}},
        {"id": "alpha/*/new-items/1", "kpi_id": "*", "kind": "new-items", "at": T0, "release_at": T0, "held": False},
    )
    assert store.claim_check("alpha", T0 + timedelta(minutes=15), "tick-2", T0 + timedelta(hours=1))
    assert store.store_check("alpha", T0 + timedelta(minutes=15), "tick-2", T0, [], [], [], new)
    [notice] = store.notices("alpha")
    assert notice.kind == "new-items" and "Down" in (notice.items or "")
    at_revision(store.engine, "0005", "downgrade")
    assert "alert_items" not in sa.inspect(store.engine).get_table_names()
    store.engine.dispose()
