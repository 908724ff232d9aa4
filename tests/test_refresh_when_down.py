"""A refresh while Vtiger is down shows the last value marked stale, never 0.

End to end: Flask's test client with a signed token, a Vtiger stand-in on
127.0.0.1, the store in a SQLite file.
"""

import json
import time

import pytest
import yaml

from bot.app import create_app
from bot.config import load_config
from bot.services import build_services
from tests import payloads as p
from tests.chat_schema import validate_message
from tests.fakes.vtiger import FakeVtiger


@pytest.fixture
def fake():
    server = FakeVtiger()
    server.add("HelpDesk", 3, ticketpriorities="Urgent", ticketstatus="Open")
    server.add("HelpDesk", 2, ticketpriorities="Normal", ticketstatus="Open")
    server.add("HelpDesk", 7, ticketpriorities="Low", ticketstatus="Closed")
    yield server
    server.close()


@pytest.fixture
def client(tmp_path, fake, token_factory, monkeypatch):
    monkeypatch.setenv("TEST_VTIGER_KEY", fake.access_key)
    config = {
        "chat": {"audience": "42", "certs_url": token_factory.certs_url},
        "fetch_budget_seconds": 1.5,
        "sources": {
            "crm": {
                "type": "vtiger",
                "api": "webservice",
                "url": fake.url,
                "username": fake.username,
                "access_key": "${TEST_VTIGER_KEY}",
                "read_timeout": 1,
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
                        "weights": {"Urgent": 10, "High": 10, "Normal": 5, "Low": 1},
                        "target": 20,
                        "warning": 40,
                    }
                ],
            }
        ],
    }
    (tmp_path / "scorebot.yaml").write_text(yaml.safe_dump(config))
    services = build_services(load_config(tmp_path / "scorebot.yaml"), store_url="sqlite:///store.db")
    app = create_app(services=services)
    yield app.test_client()
    for source in services.sources.values():
        source.close()


def send(client, body, auth):
    response = client.post("/", data=json.dumps(body), headers=auth, content_type="application/json")
    assert response.status_code == 200
    message = response.get_json()
    assert validate_message(message) == []
    return message


def kpi_widgets(message):
    """The widgets of the card's first KPI (the section after the one explaining the index)."""
    return message["cardsV2"][0]["card"]["sections"][1]["widgets"]


def index_line(message):
    left = kpi_widgets(message)[0]["columns"]["columnItems"][0]
    return left["widgets"][0]["decoratedText"]["text"]


def test_refresh_while_vtiger_answers_500_shows_the_stale_card(client, fake, auth):
    fresh = send(client, p.classic_slash(), auth)
    assert "<b>40</b>" in index_line(fresh)  # 3 × 10 + 2 × 5
    fake.inject("query", b"", status=500, times=50)
    stale = send(client, p.classic_click("support"), auth)
    assert stale["actionResponse"]["type"] == "UPDATE_MESSAGE"
    assert "<b>40</b>" in index_line(stale), "the last known value, not 0"
    warning = kpi_widgets(stale)[1]["decoratedText"]
    assert warning["topLabel"] == "⚠ Could not refresh"
    assert "500" in warning["text"]
    assert "stale" in stale["text"]


def test_refresh_while_vtiger_is_too_slow_answers_within_the_budget(client, fake, auth):
    send(client, p.classic_slash(), auth)
    fake.delay = 5
    started = time.monotonic()
    stale = send(client, p.classic_click("support"), auth)
    assert time.monotonic() - started < 3
    assert "<b>40</b>" in index_line(stale)
    assert "did not answer within" in json.dumps(stale, ensure_ascii=False)


def test_no_data_yet_when_vtiger_was_never_reached(client, fake, auth):
    fake.close()
    message = send(client, p.classic_slash(), auth)
    paragraph = kpi_widgets(message)[0]["textParagraph"]["text"]
    assert paragraph.startswith("<b>No data yet.</b>")
    assert "<b>0</b>" not in json.dumps(message)
    assert message["cardsV2"][0]["card"]["header"]["subtitle"].startswith("No data")
