"""The store's team settings: overrides with a version (a stale save is told, never lost), every attempt
audited with its outcome, resets, Space links, secrets hidden; two saves racing on one version."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot import secrets
from bot.store import CONFLICT, LINKED, RESET, SAVED, UNLINKED, Store
from bot.store.settings import settings_audit, team_settings

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
ANA, BEN = "ana@example.com", "ben@example.com"


@pytest.fixture
def store(store_url):
    store = Store(store_url)
    yield store
    store.engine.dispose()


def audit(store, team="ops"):
    return [(c.who, c.field, c.old, c.new, c.outcome, c.version) for c in store.settings_history(team)]


def test_a_save_raises_the_version_and_audits_each_field(store):
    assert store.team_overrides("ops").values == {} and store.team_overrides("ops").version == 0
    first = store.save_overrides("ops", {"schedule": "0 10 * * *", "live": "day"}, version=0, who=ANA, at=T0)
    assert first.saved and first.changed == ("schedule", "live") and first.overrides.version == 1
    later = T0 + timedelta(minutes=5)
    second = store.save_overrides("ops", {"schedule": "0 11 * * *", "live": "day"}, version=1, who=BEN, at=later)
    assert second.saved and second.changed == ("schedule",)  # live kept its value: not a change
    current = store.team_overrides("ops")
    assert current.values == {"schedule": "0 11 * * *", "live": "day"}
    assert (current.version, current.changed_by, current.changed_at) == (2, BEN, later)
    assert audit(store) == [
        (BEN, "schedule", "0 10 * * *", "0 11 * * *", SAVED, 1),
        (ANA, "live", None, "day", SAVED, 0),
        (ANA, "schedule", None, "0 10 * * *", SAVED, 0),
    ]
    assert store.settings_history("ops")[0].at == later
    assert store.all_overrides() == {"ops": current}
    assert store.team_overrides("docs").version == 0


def test_a_save_from_an_older_version_is_told_the_current_values_and_changes_nothing(store):
    store.save_overrides("ops", {"timezone": "Asia/Tokyo"}, version=0, who=ANA, at=T0)
    stale = store.save_overrides("ops", {"timezone": "Europe/Paris"}, version=0, who=BEN, at=T0)
    assert not stale.saved and stale.changed == ()
    assert stale.overrides.values == {"timezone": "Asia/Tokyo"} and stale.overrides.version == 1
    assert store.team_overrides("ops").values == {"timezone": "Asia/Tokyo"}
    assert audit(store)[0] == (BEN, "timezone", "Asia/Tokyo", "Europe/Paris", CONFLICT, 0)


def test_none_takes_a_field_back_to_the_yaml_and_reset_clears_with_an_audit(store):
    store.save_overrides("ops", {"timezone": "Asia/Tokyo", "live": "week", "kpis": ["a"]}, version=0, who=ANA, at=T0)
    assert store.save_overrides("ops", {"live": None}, version=1, who=ANA, at=T0).overrides.values == {
        "timezone": "Asia/Tokyo",
        "kpis": ["a"],
    }
    assert store.reset_overrides("ops", "timezone", who="cli", at=T0) == ["timezone"]
    assert store.team_overrides("ops").values == {"kpis": ["a"]} and store.team_overrides("ops").version == 3
    assert store.reset_overrides("ops", "timezone", who="cli", at=T0) == []
    assert store.reset_overrides("ops", who="cli", at=T0) == ["kpis"]
    assert store.team_overrides("ops").values == {} and store.team_overrides("ops").version == 4
    assert audit(store)[:3] == [
        ("cli", "kpis", ["a"], None, RESET, 3),
        ("cli", "timezone", "Asia/Tokyo", None, RESET, 2),
        (ANA, "live", "week", None, SAVED, 1),
    ]
    # A dialog opened before the reset is told.
    assert not store.save_overrides("ops", {"live": "day"}, version=3, who=BEN, at=T0).saved


def test_space_links_are_audited_for_each_team(store):
    assert store.linked_team("spaces/X") is None
    assert store.link_space("spaces/X", "ops", who=ANA, at=T0) is None
    assert store.link_space("spaces/X", "ops", who=ANA, at=T0) is None  # already: nothing audited
    assert store.linked_team("spaces/X") == "ops"
    assert store.link_space("spaces/X", "docs", who=BEN, at=T0) == "ops"
    assert store.space_links() == {"spaces/X": "docs"}
    assert store.unlink_space("spaces/X", who=BEN, at=T0) == "docs"
    assert store.unlink_space("spaces/X", who=BEN, at=T0) is None
    assert store.linked_team("spaces/X") is None
    assert audit(store, "ops") == [
        (BEN, "space", "spaces/X", None, UNLINKED, 0),
        (ANA, "space", None, "spaces/X", LINKED, 0),
    ]
    assert [(c.outcome, c.old, c.new) for c in store.settings_history("docs")] == [
        (UNLINKED, "spaces/X", None),
        (LINKED, None, "spaces/X"),
    ]


def test_secrets_are_hidden_in_what_the_settings_store(store):
    token = "s3cret-token-value-1234567890"
    assert secrets.register(token)
    store.save_overrides("ops", {"schedule": f"0 10 * * * {token}"}, version=0, who=f"{token}@x.org", at=T0)
    with store.engine.connect() as conn:
        rows = [str(row) for table in (team_settings, settings_audit) for row in conn.execute(sa.select(table))]
    assert len(rows) == 2 and not any(token in row for row in rows)
    assert all(secrets.PLACEHOLDER in row for row in rows)


@pytest.mark.postgres
def test_two_saves_racing_on_postgresql_one_wins_the_other_is_told(pg_url):
    first, second = Store(pg_url), Store(pg_url)
    first.save_overrides("ops", {"schedule": "0 9 * * *"}, version=0, who=ANA, at=T0)
    results = {}
    for round_ in range(10):  # several rounds: the race goes either way, never both ways
        start = threading.Barrier(2)
        version = first.team_overrides("ops").version

        def save(store, who, cron, start=start, version=version):
            start.wait()
            results[who] = store.save_overrides("ops", {"schedule": cron}, version=version, who=who, at=T0)

        threads = [
            threading.Thread(target=save, args=(first, ANA, f"{round_} 10 * * *")),
            threading.Thread(target=save, args=(second, BEN, f"{round_} 11 * * *")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        winners = [who for who, result in results.items() if result.saved]
        assert len(winners) == 1, results
        loser = BEN if winners == [ANA] else ANA
        current = first.team_overrides("ops")
        assert current.version == version + 1 and current.changed_by == winners[0]
        assert results[loser].overrides == current  # told the values that won
        outcomes = {(c.who, c.outcome) for c in first.settings_history("ops", limit=2)}
        assert outcomes == {(winners[0], SAVED), (loser, CONFLICT)}
    first.engine.dispose()
    second.engine.dispose()
