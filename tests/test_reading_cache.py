"""The reading cache and single flight: /score shows a young stored reading, whichever process took it;
Refresh and posts read fresh; concurrent reads of one KPI make one request to the source.

Flask's test client with signed tokens, the Vtiger stand-in on 127.0.0.1 counting
its queries, the store in a SQLite file shared by two `Services` (two workers).
"""

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from bot.app import create_app
from bot.config import load_config
from bot.services import build_services
from bot.store import POST, REFRESH, SCORE
from tests import payloads as p
from tests.fakes.vtiger import FakeVtiger


class Clock:
    """A settable clock shared by the services of both workers."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def fake():
    server = FakeVtiger()
    server.add("HelpDesk", 3, ticketpriorities="Urgent", ticketstatus="Open")
    server.add("HelpDesk", 2, ticketpriorities="Normal", ticketstatus="Open")
    yield server
    server.close()


def write_config(tmp_path, fake, certs_url="http://127.0.0.1:9/certs", **source):
    config = {
        "chat": {"audience": "42", "certs_url": certs_url},
        "fetch_budget_seconds": 3,
        "sources": {
            "crm": {
                "type": "vtiger",
                "api": "webservice",
                "url": fake.url,
                "username": fake.username,
                "access_key": "${TEST_VTIGER_KEY}",
                "read_timeout": 2,
                **source,
            }
        },
        "teams": [
            {
                "id": "support",
                "name": "Support",
                "spaces": ["spaces/DEMO-CUSTOMER"],
                "kpis": [
                    {
                        "id": "open-tickets",
                        "name": "Open tickets",
                        "source": "crm",
                        "count": {"module": "HelpDesk", "filter": "ticketstatus != 'Closed'"},
                        "category": "ticketpriorities",
                        "weights": {"Urgent": 10, "Normal": 5},
                        "target": 20,
                        "warning": 40,
                    }
                ],
            }
        ],
    }
    path = tmp_path / "scorebot.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def workers(tmp_path, fake, token_factory, monkeypatch):
    """Two app workers (each its own `Services`) over one store, and their shared clock."""
    monkeypatch.setenv("TEST_VTIGER_KEY", fake.access_key)
    path = write_config(tmp_path, fake, certs_url=token_factory.certs_url)
    clock = Clock()
    built = [build_services(load_config(path), clock=clock, store_url="sqlite:///store.db") for _ in range(2)]
    yield [create_app(services=services).test_client() for services in built], built, clock
    for services in built:
        for source in services.sources.values():
            source.close()


def send(client, body, auth):
    response = client.post("/", data=json.dumps(body), headers=auth, content_type="application/json")
    assert response.status_code == 200
    return response.get_json()


def index_widget(message):
    """The first KPI's index (the section after the one explaining the index, its left column)."""
    left = message["cardsV2"][0]["card"]["sections"][1]["widgets"][0]["columns"]["columnItems"][0]
    return left["widgets"][0]["decoratedText"]


def test_a_second_worker_serves_score_from_the_store_without_reading_vtiger(workers, fake, auth):
    (first, second), services, clock = workers
    fresh = send(first, p.classic_slash(), auth)
    assert "<b>40</b>" in index_widget(fresh)["text"]  # 3 × 10 + 2 × 5
    assert "read" not in index_widget(fresh)["topLabel"], "a fresh read says nothing about age"
    calls = fake.count()
    assert fake.count("query") >= 1
    clock.now += timedelta(seconds=35)
    fake.add("HelpDesk", 1, ticketpriorities="Urgent", ticketstatus="Open")
    cached = send(second, p.classic_slash(), auth)
    assert fake.count() == calls, "worker 2 made no request at all to Vtiger"
    assert "<b>40</b>" in index_widget(cached)["text"], "the stored reading, not the CRM's 50"
    assert index_widget(cached)["topLabel"] == "Index · read 35 s ago"
    assert "read 35 s ago" in cached["text"]
    assert [r.origin for r in services[1].store.recent_readings("support")] == [SCORE], "showing writes nothing"


def test_refresh_and_an_old_reading_read_again(workers, fake, auth):
    (first, second), services, clock = workers
    send(first, p.classic_slash(), auth)
    fake.add("HelpDesk", 1, ticketpriorities="Urgent", ticketstatus="Open")
    queries = fake.count("query")
    clock.now += timedelta(seconds=10)
    refreshed = send(second, p.classic_click("support"), auth)
    assert fake.count("query") > queries, "Refresh always reads"
    assert "<b>50</b>" in index_widget(refreshed)["text"]
    assert "read" not in index_widget(refreshed)["topLabel"]
    queries = fake.count("query")
    clock.now += timedelta(seconds=59)
    cached = send(first, p.classic_slash(), auth)
    assert fake.count("query") == queries, "a reading 59 s old is shown at cache_seconds 60 (the default)"
    assert index_widget(cached)["topLabel"] == "Index · read 59 s ago"
    clock.now += timedelta(seconds=1)
    send(first, p.classic_slash(), auth)
    assert fake.count("query") > queries, "a reading 60 s old is not shown at cache_seconds 60"
    origins = [r.origin for r in services[0].store.recent_readings("support")]
    assert origins == [SCORE, REFRESH, SCORE]


def test_a_scheduled_post_reads_fresh_even_with_a_young_reading(workers, fake, auth):
    (first, _), services, clock = workers
    send(first, p.classic_slash(), auth)
    queries = fake.count("query")
    clock.now += timedelta(seconds=5)
    team = services[1].config.team("support")
    report = services[1].report(team, POST, slot=clock.now)
    assert fake.count("query") > queries
    assert report.fresh and not report.kpis[0].cached


def test_cache_seconds_zero_always_reads(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("TEST_VTIGER_KEY", fake.access_key)
    clock = Clock()
    services = build_services(load_config(write_config(tmp_path, fake, cache_seconds=0)), clock=clock)
    team = services.config.team("support")
    services.report(team, SCORE, cached=True)
    queries = fake.count("query")
    clock.now += timedelta(seconds=1)
    assert not services.report(team, SCORE, cached=True).kpis[0].cached
    assert fake.count("query") > queries
    for source in services.sources.values():
        source.close()


def wait_for(condition, seconds=10.0):
    """Wait until ``condition()`` holds (checked on each state change we can observe), at most ``seconds``."""
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "condition not reached"
        threading.Event().wait(0.005)


def test_ten_concurrent_reads_of_one_kpi_make_one_fetch(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("TEST_VTIGER_KEY", fake.access_key)
    path = write_config(tmp_path, fake)
    alone = build_services(load_config(path), store_url="sqlite:///alone.db")
    alone.report(alone.config.team("support"), REFRESH)
    one_read = fake.count("query")  # what one read of a fresh process asks
    services = build_services(load_config(path), store_url="sqlite:///store.db")
    team = services.config.team("support")
    fake.hold_queries()
    before = fake.count("query")
    reports = []

    def click():
        reports.append(services.report(team, REFRESH))

    threads = [threading.Thread(target=click) for _ in range(10)]
    for thread in threads:
        thread.start()
    assert fake.held.wait(5), "the read reached the CRM"
    wait_for(lambda: services.reporter.fetcher.readers(("support", "open-tickets")) == 10)
    fake.release()
    for thread in threads:
        thread.join(10)
    assert len(reports) == 10
    assert fake.count("query") - before == one_read, "ten reads ask what one read asks"
    assert {r.kpis[0].score.index for r in reports} == {40}
    assert len(services.store.recent_readings("support")) == 1, "the read is stored once"
    for source in [*services.sources.values(), *alone.sources.values()]:
        source.close()


def test_every_worker_shows_the_top_items_and_the_oldest_of_a_reading_whichever_took_it(workers, fake, auth):
    (first, second), _, clock = workers
    fake.add("HelpDesk", 1, ticketpriorities="Urgent", ticketstatus="Open", createdtime="2026-11-20 09:00:00")
    fresh = send(first, p.classic_slash(), auth)
    assert "index.php?module=HelpDesk&view=Detail" in fresh["text"] and "oldest: 6 d" in fresh["text"]
    calls = fake.count()
    clock.now += timedelta(seconds=20)
    again = send(first, p.classic_slash(), auth)
    other = send(second, p.classic_slash(), auth)  # another process: it never read, the store has it all
    assert fake.count() == calls
    assert "read 20 s ago" in again["text"] and "oldest: 6 d" in again["text"]
    assert other == again, "every worker shows a reading alike"
    listed = [line for line in fresh["text"].splitlines() if "index.php" in line]
    assert listed and listed == [line for line in other["text"].splitlines() if "index.php" in line]
