"""A card's history in one statement: `Store.card_history` gives what the four separate queries give,
readings already loaded are reused only while the store still names them, and a cached `/score` of
a second worker shows a reading the first wrote after the second had loaded its history.

Real SQLite files and PostgreSQL; the app through Flask's test client with signed tokens.
"""

import json
import shutil
from datetime import UTC, datetime, timedelta
from unittest.mock import ANY
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import yaml

from bot.app import create_app
from bot.card_text import message_as_text
from bot.cards import team_message
from bot.config import DEMO_CONFIG, load_config
from bot.demo import seed_history
from bot.reports import KEEP_HISTORY
from bot.services import build_services
from bot.store import POST, REFRESH, SCORE, Reading, Store
from tests import payloads as p

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def reading(kpi: str, at: datetime, index: int, team: str = "alpha", **extra) -> Reading:
    return Reading(team, kpi, at, extra.pop("origin", SCORE), {"High": index}, float(index), rows=index, **extra)


def four_queries(store: Store, team: str, now: datetime, before: datetime | None):
    """What a card compared with before `card_history`: four queries, each as the store answers it alone."""
    post = store.last_post(team, before) if before else None
    return (
        store.latest_readings(team),
        store.daily_series(team, BERLIN, 14, now),
        post,
        store.reading_near(team, now - timedelta(days=7)),
    )


def one_statement(store: Store, team: str, now: datetime, before: datetime | None):
    found = store.card_history(team, BERLIN, 14, now, now - timedelta(days=7), before)
    return found.latest, found.days, found.post, found.week


class Statements:
    """Counts the statements a store's engine runs."""

    def __init__(self, store: Store) -> None:
        self.count = 0
        sa.event.listen(store.engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args) -> None:
        self.count += 1


@pytest.fixture
def stores(store_url):
    """Two stores on one database: two workers."""
    opened = [Store(store_url), Store(store_url)]
    yield opened
    for store in opened:
        store.engine.dispose()


def history(store: Store) -> None:
    """Three KPIs over 20 days: gaps, a post read twice (a retry), a failed later post, readings every
    10 minutes around 7 days before NOW, and another team's readings in between."""
    week = NOW - timedelta(days=7)
    store.add_readings(
        [reading(k, NOW - timedelta(days=d, hours=h), 10 * d + h) for k in "ab" for d in range(20) for h in (1, 5)]
        + [reading("c", NOW - timedelta(days=d, hours=2), d) for d in range(0, 20, 3)]
        + [reading("a", week + timedelta(minutes=m), 500 + m) for m in range(-30, 31, 10)]
        + [reading("b", week - timedelta(minutes=5), 700), reading("b", week + timedelta(minutes=5), 701)]  # a tie
        + [reading(k, NOW - timedelta(days=d), 900 + d, team="beta") for k in ("a", "b") for d in range(20)]
    )
    posted, failed = NOW - timedelta(days=2, hours=3), NOW - timedelta(hours=4)
    store.add_readings([reading(k, posted + timedelta(seconds=5), 61, origin=POST, slot=posted) for k in "ab"])
    store.add_readings([reading("a", posted + timedelta(minutes=3), 62, origin="retry", slot=posted)])
    store.add_readings([reading("a", failed + timedelta(seconds=5), 63, origin=POST, slot=failed)])
    store.record_delivery("alpha", posted, "log", "delivered", posted + timedelta(seconds=6))
    store.record_delivery("alpha", failed, "log", "error", failed + timedelta(seconds=6))
    store.record_delivery("gamma", posted, "log", "delivered", posted + timedelta(seconds=6))  # a post, no readings


def test_card_history_is_what_the_four_queries_give(stores):
    store, _ = stores
    history(store)
    for minutes in range(-70, 71, 5):  # the moment 7 days ago passes readings on both sides of it
        now = NOW + timedelta(minutes=minutes)
        for team in ("alpha", "beta", "gamma", "nobody"):
            for before in (now, None, NOW - timedelta(days=2, hours=3)):
                expected = four_queries(store, team, now, before)
                assert one_statement(store, team, now, before) == expected, (team, minutes, before)
    latest, days, post, week = one_statement(store, "alpha", NOW, NOW)
    assert set(latest) == {"a", "b", "c"} and set(days) == {"a", "b", "c"}, "each KPI, not one for all"
    assert post is not None and post[1]["a"].index == 62, "the post's last reading of the KPI (the retry)"
    assert week["b"].index == 700, "a tie goes to the reading before"
    assert one_statement(store, "gamma", NOW, NOW)[2] == (NOW - timedelta(days=2, hours=3), {})


def test_known_readings_cost_no_second_statement_and_new_ones_are_loaded(stores):
    store, other = stores
    history(store)
    statements = Statements(store)
    one_statement(store, "alpha", NOW, NOW)
    assert statements.count == 2, "the first time: the ids, then the readings"
    before = statements.count
    one_statement(store, "alpha", NOW + timedelta(seconds=30), NOW)
    assert statements.count - before == 1, "then one statement"
    other.add_readings([reading("a", NOW + timedelta(seconds=40), 77)])
    latest = one_statement(store, "alpha", NOW + timedelta(seconds=50), NOW)[0]
    assert latest["a"].index == 77, "another worker's new reading is seen at once"


def test_readings_another_worker_prunes_are_gone_from_the_card(stores):
    store, other = stores
    history(store)
    warm = one_statement(store, "alpha", NOW, NOW)
    assert warm[3]["a"].index == 500
    other.prune(NOW + timedelta(days=1), keep_days=7, batch=10_000)  # leaves a KPI's last reading of a UTC day
    after = one_statement(store, "alpha", NOW, NOW)
    assert after == four_queries(other, "alpha", NOW, NOW)
    assert after[3]["a"].index == 530, "the reading 7 days ago was thinned: the nearest is the day's last now"


# --- the app: two workers on one store -------------------------------------------------------------------


def write_app_config(folder, certs_url: str) -> None:
    """The demo configuration with request verification on, in ``folder``."""
    for name in ("demo.yaml", "demo-issues.csv"):
        shutil.copy(DEMO_CONFIG.parent / name, folder / name)
    data = yaml.safe_load((folder / "demo.yaml").read_text())
    data["chat"] = {"verify": True, "audience": "42", "certs_url": certs_url}
    (folder / "demo.yaml").write_text(yaml.safe_dump(data))


def send(client, body, auth):
    response = client.post("/", data=json.dumps(body), headers=auth, content_type="application/json")
    assert response.status_code == 200
    return response.get_json()


def index_text(message) -> str:
    """The customer card's index widget (its left column)."""
    left = message["cardsV2"][0]["card"]["sections"][1]["widgets"][0]["columns"]["columnItems"][0]
    return left["widgets"][0]["decoratedText"]["topLabel"] + " " + left["widgets"][0]["decoratedText"]["text"]


@pytest.fixture
def workers(tmp_path, token_factory, store_url):
    """Two app workers (each its own `Services`) on one store holding the demo's 60 days of history."""
    write_app_config(tmp_path, token_factory.certs_url)
    clock = Clock(NOW)
    config = load_config(tmp_path / "demo.yaml")
    built = [build_services(config, clock=clock, store_url=store_url) for _ in range(2)]
    seed_history(built[0].store, config, NOW)
    yield [create_app(services=s).test_client() for s in built], built, clock, tmp_path
    for services in built:
        services.store.engine.dispose()


def test_a_cached_score_of_a_second_worker_shows_the_reading_the_first_wrote_after(workers, auth):
    (first, second), _, clock, folder = workers
    send(first, p.classic_slash(), auth)  # worker 1 reads the CSV and stores the reading
    clock.now += timedelta(seconds=5)
    shown = send(second, p.classic_slash(), auth)  # worker 2 loads the history and shows the stored reading
    assert "read 5 s ago" in index_text(shown) and "<b>85</b>" in index_text(shown)
    csv = folder / "demo-issues.csv"
    lines = csv.read_text().splitlines()
    critical = next(line for line in lines if ",customer," in line and ",Critical," in line and ",Open," in line)
    csv.write_text("\n".join([*lines, critical.replace(critical.split(",")[0], "ISS-9999", 1)]) + "\n")
    clock.now += timedelta(seconds=5)
    refreshed = send(first, p.classic_click("customer"), auth)  # worker 1 reads again: one more critical issue
    assert "<b>95</b>" in json.dumps(refreshed)
    clock.now += timedelta(seconds=5)
    again = send(second, p.classic_slash(), auth)
    assert "read 5 s ago" in index_text(again) and "<b>95</b>" in index_text(again), "the new reading, not 85"


def test_a_cached_card_says_what_the_read_behind_its_reading_found(workers):
    """The oldest item, what is new and what was closed since the team's last post, and the top items: as
    the card of the read itself says them, whichever worker made that read."""
    _, (reader, services), clock, _ = workers
    team = services.config.team("customer")
    fresh = reader.report(team, REFRESH)
    clock.now += timedelta(seconds=5)
    cached = services.report(team, SCORE, cached=True)
    assert cached.kpis[0].cached and not fresh.kpis[0].cached

    def found(report) -> list[str]:
        lines = message_as_text(team_message(report, refresh_function=None)).splitlines()
        start = lines.index("│ Top items")
        return lines[start - 1 : start + 4]

    assert found(cached) == found(fresh)
    assert found(fresh)[0] == "│ oldest: 79 d · 1 new · 2 closed since last post today 09:00"


def test_a_reading_stored_with_an_alerts_new_items_shows_as_one_without(workers):
    """Readings stored before their extras left out an alert's new items (`new_items`, `new_total`) still
    show as the read behind them found it: those keys are ignored."""
    _, (reader, services), clock, _ = workers
    team = services.config.team("customer")
    fresh = reader.report(team, REFRESH)
    item = {"title": "Printer on fire", "category": "Critical", "created": NOW.isoformat(), "link": None}
    with reader.store.engine.begin() as conn:
        row = conn.execute(sa.text("SELECT id, extras FROM readings ORDER BY id DESC LIMIT 1")).one()
        extras = json.loads(row.extras)
        assert extras.keys() == {"items", "oldest", "oldest_among", "created_since", "closed_since"}
        older = json.dumps(extras | {"new_items": [item], "new_total": 1}, sort_keys=True)
        conn.execute(sa.text("UPDATE readings SET extras = :e WHERE id = :i"), {"e": older, "i": row.id})
    clock.now += timedelta(seconds=5)
    cached = services.report(team, SCORE, cached=True)
    assert cached.kpis[0].cached and cached.kpis[0].fetch is not None and cached.kpis[0].fetch.new_items == ()

    def found(report) -> list[str]:
        lines = message_as_text(team_message(report, refresh_function=None)).splitlines()
        start = lines.index("│ Top items")
        return lines[start - 1 : start + 4]

    assert found(cached) == found(fresh) and "Printer on fire" not in "".join(found(cached))


def test_the_card_is_the_same_with_the_history_loaded_before_and_read_cold(workers, auth, store_url):
    (first, second), _, clock, folder = workers
    send(first, p.classic_slash(), auth)
    for seconds in (5, 20, 45):
        clock.now = NOW + timedelta(seconds=seconds)
        for _ in range(2):
            warm = send(second, p.classic_slash(), auth)  # the second time from the readings it loaded
        cold_services = build_services(load_config(folder / "demo.yaml"), clock=clock, store_url=store_url)
        cold = send(create_app(services=cold_services).test_client(), p.classic_slash(), auth)
        cold_services.store.engine.dispose()
        assert warm == cold
        assert "vs last post" in json.dumps(warm) and "vs 7 days ago" in json.dumps(warm), "a card with a history"


def test_a_reading_id_used_again_is_not_taken_for_the_reading_it_named_before(stores):
    store, _ = stores
    store.add_readings([reading("a", NOW - timedelta(hours=1), 1)])
    assert one_statement(store, "alpha", NOW, NOW)[0]["a"].index == 1
    with store.engine.begin() as conn:  # the newest row goes: SQLite gives its id to the next one
        conn.execute(sa.text("DELETE FROM kpi_latest"))
        conn.execute(sa.text("DELETE FROM readings"))
    store.add_readings([reading("a", NOW - timedelta(minutes=30), 2)])
    assert one_statement(store, "alpha", NOW, NOW)[0]["a"].index == 2


def test_a_cached_report_keeps_its_history_and_its_kpis_for_under_a_minute(workers, store_url):
    """From the moment it is read (a second request at that very moment too) to just under `KEEP_HISTORY`,
    a cached report asks the store nothing but the change marker and shows the KPIs it built then; at
    `KEEP_HISTORY` it reads the history again and keeps it from then on. Readings are shown for a day."""
    _, (reader, _), clock, folder = workers
    data = yaml.safe_load((folder / "demo.yaml").read_text())
    data["sources"]["demo"]["cache_seconds"] = 86_400
    (folder / "demo.yaml").write_text(yaml.safe_dump(data))
    services = build_services(load_config(folder / "demo.yaml"), clock=clock, store_url=store_url)
    team = services.config.team("customer")
    zone = services.config.zone(team).key
    reader.report(team, REFRESH)  # another worker reads the CSV and stores the reading
    clock.now += timedelta(seconds=5)
    start = clock.now
    first = services.report(team, SCORE, cached=True)
    assert first.kpis and all(k.cached for k in first.kpis)
    version, until = services.reporter.kept_history(team, zone) or (None, None)
    assert until == start + KEEP_HISTORY
    statements = Statements(services.store)
    for seconds in (0, 1, 30, 59.9):
        clock.now = start + timedelta(seconds=seconds)
        again = services.report(team, SCORE, cached=True)
        assert statements.count == 0, f"{seconds} s: the kept history"
        assert all(a is k for a, k in zip(again.kpis, first.kpis, strict=True)), "each KPI built once"
    clock.now = start + KEEP_HISTORY
    again = services.report(team, SCORE, cached=True)
    assert statements.count > 0, "read again"
    assert again.kpis == first.kpis and again.kpis[0] is not first.kpis[0]
    assert services.reporter.kept_history(team, zone) == (version, clock.now + KEEP_HISTORY)
    services.store.engine.dispose()


def test_a_kept_history_is_read_again_when_the_teams_day_ends(workers, store_url):
    """Midnight in New York (05:00 UTC, no new day there) ends the day a kept history was read for, however
    little of `KEEP_HISTORY` has gone: the card after it moves its days on, as a worker reading cold shows."""
    _, (reader, services), clock, folder = workers
    team = services.config.team("customer")
    zone = services.config.zone(team).key
    midnight = datetime(2026, 11, 27, tzinfo=ZoneInfo(zone))
    clock.now = midnight - timedelta(seconds=10)
    reader.report(team, REFRESH)
    clock.now += timedelta(seconds=5)
    before = services.report(team, SCORE, cached=True)
    clock.now = midnight + timedelta(seconds=5)
    after = services.report(team, SCORE, cached=True)
    assert services.reporter.kept_history(team, zone) == (ANY, clock.now + KEEP_HISTORY), "kept from now on"
    cold = build_services(load_config(folder / "demo.yaml"), clock=clock, store_url=store_url)
    assert after.kpis == cold.report(team, SCORE, cached=True).kpis
    assert after.kpis != before.kpis, "a day on"
    cold.store.engine.dispose()


def test_a_score_whose_change_marker_cannot_be_read_shows_the_stored_reading_and_keeps_nothing(workers, auth):
    """The card is the one a readable marker gives: the same history, read each time, its days the team's
    own (at 22:00 in New York, already the next day in UTC)."""
    (first, second), (reader, services), clock, _ = workers
    team = services.config.team("customer")
    clock.now = datetime(2026, 11, 26, 22, tzinfo=ZoneInfo("America/New_York"))
    reader.report(team, REFRESH)
    clock.now += timedelta(seconds=5)
    kept = send(first, p.classic_slash(), auth)
    assert "vs last post" in json.dumps(kept), "a card with a history"
    with services.store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE team_changes")  # no marker can be read: nothing kept can be trusted
    for _ in range(2):
        shown = send(second, p.classic_slash(), auth)
        assert "read 5 s ago" in index_text(shown) and "<b>85</b>" in index_text(shown)
        assert shown == kept
        assert send(first, p.classic_slash(), auth) == kept
        assert services.reporter.kept_history(team, services.config.zone(team).key) is None
