"""A cached `/score` keeps the team's history between requests while the team's change marker says
nothing changed, and shows what another worker or process wrote on the very next request.

Each check compares the kept card with the card a cold worker (new services, nothing loaded) answers
at the same moment: equal means nothing stale was served. Real SQLite files and PostgreSQL, the app
through Flask's test client with signed tokens, and `python -m bot send` as a second process.
"""

import gc
import json
import os
import subprocess
import sys
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bot.app import create_app
from bot.config import load_config
from bot.demo import seed_history
from bot.services import build_services
from bot.store import POST, SEND, Reading, Store
from tests import payloads as p
from tests.test_card_history import Clock, Statements, write_app_config

REPO = Path(__file__).resolve().parent.parent
NEW_YORK = ZoneInfo("America/New_York")  # the demo's customer team
NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


class Worker:
    """One app worker: its own services (store, reporter) and test client, on the shared store."""

    def __init__(self, folder: Path, clock: Clock, store_url: str, auth: dict[str, str]) -> None:
        self.services = build_services(load_config(folder / "demo.yaml"), clock=clock, store_url=store_url)
        self.client = create_app(services=self.services).test_client()
        self.auth = auth

    def post(self, body: dict) -> dict:
        response = self.client.post("/", data=json.dumps(body), headers=self.auth, content_type="application/json")
        assert response.status_code == 200
        return response.get_json()

    def score(self) -> dict:
        return self.post(p.classic_slash())

    def close(self) -> None:
        self.services.store.engine.dispose()


@pytest.fixture
def setup(tmp_path, token_factory, store_url, auth):
    """The demo's configuration and 60 days of history on one store; a clock; a way to start workers."""
    write_app_config(tmp_path, token_factory.certs_url)
    clock = Clock(NOW)
    started: list[Worker] = []

    def worker() -> Worker:
        started.append(Worker(tmp_path, clock, store_url, auth))
        return started[-1]

    seed_history(worker().services.store, load_config(tmp_path / "demo.yaml"), NOW)
    yield worker, clock, tmp_path
    for each in started:
        each.close()


def cold(worker) -> dict:
    """The card a worker that has loaded nothing answers now."""
    fresh = worker()
    try:
        return fresh.score()
    finally:
        fresh.close()


def add_critical_issue(folder: Path) -> None:
    """One more open critical issue for the customer team in the demo's CSV (its index goes up by 10)."""
    csv = folder / "demo-issues.csv"
    lines = csv.read_text().splitlines()
    critical = next(line for line in lines if ",customer," in line and ",Critical," in line and ",Open," in line)
    csv.write_text("\n".join([*lines, critical.replace(critical.split(",")[0], "ISS-9999", 1)]) + "\n")


def test_an_unchanged_team_is_shown_without_store_statements_and_as_a_cold_worker_shows_it(setup):
    worker, clock, _ = setup
    first = worker()
    worker().score()  # another worker reads the CSV and stores the reading
    clock.now += timedelta(seconds=5)
    first.score()  # shows that reading; its history is kept from here on
    statements = Statements(first.services.store)
    for seconds in (6, 20, 45):
        clock.now = NOW + timedelta(seconds=seconds)
        kept = first.score()
        assert statements.count == 0, "only the change marker was read, on its own connection"
        assert kept == cold(worker)
    assert f"read {45} s ago" in json.dumps(kept)


def test_another_workers_reading_post_and_pruning_show_on_the_next_request(setup):
    worker, clock, folder = setup
    first, second = worker(), worker()
    second.score()  # the second worker reads and stores; the first only shows what is stored
    clock.now += timedelta(seconds=5)
    before = first.score()  # kept from here on

    add_critical_issue(folder)
    clock.now += timedelta(seconds=1)
    second.post(p.classic_click("customer"))  # the second worker reads again: one more critical issue
    clock.now += timedelta(seconds=1)
    after_reading = first.score()
    assert after_reading == cold(worker) != before
    assert "<b>95</b>" in json.dumps(after_reading) and "<b>85</b>" not in json.dumps(after_reading)

    clock.now += timedelta(seconds=1)
    posted_at = clock.now
    reading = second.services.store.latest_readings("customer")["open-issues"]
    second.services.store.add_readings([Reading("customer", "open-issues", posted_at, POST, reading.counts,
                                                 reading.index, slot=posted_at)])  # fmt: skip
    assert first.score() == cold(worker), "the post's reading, kept before its delivery is recorded"
    second.services.store.record_delivery("customer", posted_at, "log", "delivered", posted_at)
    clock.now += timedelta(seconds=1)
    after_post = first.score()
    assert after_post == cold(worker) != after_reading
    assert f"vs last post today {posted_at.astimezone(NEW_YORK):%H:%M}" in json.dumps(after_post)

    old = NOW - timedelta(days=20)  # two readings of one old day: retention keeps the later one
    store = second.services.store
    store.add_readings([Reading("customer", "open-issues", old + timedelta(minutes=m), POST, {}, 0.0) for m in (1, 2)])
    first.score()
    marker = store.team_version("customer")
    clock.now += timedelta(seconds=1)
    assert store.prune(clock.now, keep_days=7, batch=5000)["readings"] > 0
    assert store.team_version("customer") > marker, "pruning moves every team's marker"
    assert first.score() == cold(worker)


def test_a_post_sent_by_another_process_shows_on_the_next_request(tmp_path, token_factory, store_url, auth):
    """`python -m bot send` in a process of its own (on the real clock) reads and posts; the next cached
    `/score` of a worker that kept the history shows that reading and that post."""
    write_app_config(tmp_path, token_factory.certs_url)
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    worker = Worker(tmp_path, clock, store_url, auth)
    seed_history(worker.services.store, worker.services.config, clock.now)
    try:
        worker.score()
        clock.now += timedelta(seconds=1)
        before = worker.score()  # kept

        env = {**os.environ, "PYTHONPATH": str(REPO), "SCOREBOT_STORE": store_url}
        command = [sys.executable, "-m", "bot", "--config", str(tmp_path / "demo.yaml"), "send", "customer"]
        sent = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert sent.returncode == 0, sent.stderr
        clock.now = datetime.now(UTC)

        after = worker.score()
        slot = worker.services.store.deliveries("customer")[0].slot
        assert f"vs last post today {slot.astimezone(NEW_YORK):%H:%M}" in json.dumps(after)
        sent_reading = worker.services.store.latest_readings("customer")["open-issues"]
        assert sent_reading.origin == SEND
        assert f"read {int((clock.now - sent_reading.taken_at).total_seconds())} s ago" in json.dumps(after)
        assert after != before
        fresh = Worker(tmp_path, clock, store_url, auth)
        assert after == fresh.score()
        fresh.close()
    finally:
        worker.close()


def test_the_local_day_turning_reads_the_history_again(setup):
    """Nothing changed, but the sparkline's days moved on at the team's midnight."""
    worker, clock, _ = setup
    first = worker()
    clock.now = datetime(2026, 11, 26, 23, 59, 40, tzinfo=NEW_YORK).astimezone(UTC)
    worker().score()
    clock.now += timedelta(seconds=5)
    first.score()  # kept
    clock.now += timedelta(seconds=20)  # 00:00:05 the next day in New York
    assert first.score() == cold(worker)


@pytest.mark.postgres
def test_a_broken_marker_connection_falls_back_to_reading_and_reconnects(tmp_path, token_factory, pg_url, auth):
    write_app_config(tmp_path, token_factory.certs_url)
    clock = Clock(NOW)
    first = Worker(tmp_path, clock, pg_url, auth)
    seed_history(first.services.store, first.services.config, NOW)
    try:
        reader = Worker(tmp_path, clock, pg_url, auth)
        reader.score()
        reader.close()
        clock.now += timedelta(seconds=5)
        first.score()
        marker = first.services.store._marks._conn  # the marker's own connection (psycopg)
        admin = Store(pg_url)
        with admin.engine.connect() as conn:  # the server ends that session, as a restart or a proxy would
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": marker.info.backend_pid})
        admin.engine.dispose()
        for seconds in (6, 7):
            clock.now = NOW + timedelta(seconds=seconds)
            fresh = Worker(tmp_path, clock, pg_url, auth)
            assert first.score() == fresh.score()
            fresh.close()
    finally:
        first.close()


@pytest.mark.postgres
def test_a_store_dropped_without_dispose_closes_its_marker_connection(pg_url):
    """The marker's connection is detached from the pool, so the pool never closes it: its reader does."""
    store = Store(pg_url)
    store.team_version("customer")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        del store
        gc.collect()
    assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == []
