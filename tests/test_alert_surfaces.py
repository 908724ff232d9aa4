"""Where alerts are seen besides the Space: `/score alerts`, `python -m bot alerts TEAM`, the status page,
`preview TEAM --alert`, and `check`'s calls a day with the alert checks counted."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from bot.__main__ import main
from bot.app import create_app
from bot.callplan import check_times, daily_calls
from bot.config import load_config
from bot.services import build_services
from tests import payloads as p
from tests.chat_schema import validate_message
from tests.fakes.chat import FakeChat
from tests.test_alert_tick import BAD, GOOD, alert_config, scheduler_for, set_rows

T0 = datetime(2026, 11, 9, 9, 0, tzinfo=UTC)
CHECK = timedelta(minutes=15)


@pytest.fixture
def fake():
    chat = FakeChat()
    yield chat
    chat.close()


@pytest.fixture
def fired(tmp_path, fake, store_url):
    """Team alpha fired at 09:30 after a good first check; bravo has no alerts block."""
    path = alert_config(tmp_path, fake, store_url, ["alpha", "bravo"])
    data = yaml.safe_load(path.read_text())
    del data["teams"][1]["alerts"]
    data["teams"][0]["spaces"] = ["spaces/ALPHA"]
    data["status"] = {"access": "loopback"}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    scheduler = scheduler_for(path, store_url)
    set_rows(tmp_path, "alpha", GOOD)
    scheduler.tick(T0)
    set_rows(tmp_path, "alpha", BAD)
    scheduler.tick(T0 + 2 * CHECK)
    scheduler.services.store.engine.dispose()
    return path


def test_the_alerts_command_prints_each_kpis_state_since_when_and_its_transitions(fired, capsys):
    assert main(["--config", str(fired), "alerts", "alpha"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Alpha: alerts (checked every 15m · on bad · pending 1 · recover at target)"
    assert out[1] == "Open issues: firing (Bad) since Mon 09 Nov 09:30 UTC"
    assert out[2:] == [
        "  Mon 09 Nov 09:30 UTC: normal → firing (45)",
        "  Mon 09 Nov 09:00 UTC: normal → normal (10), first reading",
    ]
    assert main(["--config", str(fired), "alerts", "bravo"]) == 0
    assert capsys.readouterr().out == "Bravo has no alerts: its configuration has no alerts block.\n"
    assert main(["--config", str(fired), "alerts", "nobody"]) == 2


def test_score_alerts_answers_with_the_spaces_team_or_the_named_one(fired, store_url):
    services = build_services(load_config(fired), clock=lambda: T0 + 3 * CHECK, store_url=store_url)
    client = create_app(services=services, allow_unverified=True).test_client()

    def ask(argument, space):
        body = p.classic_slash(argument, space={"name": space, "type": "ROOM", "spaceType": "SPACE"})
        response = client.post("/", data=json.dumps(body), content_type="application/json")
        assert response.status_code == 200
        return response.get_json()

    own = ask(" alerts", "spaces/ALPHA")
    assert validate_message(own) == []
    card = own["cardsV2"][0]["card"]
    assert card["header"]["title"] == "🔔 Alpha: alerts"
    assert card["sections"][0]["widgets"][0]["decoratedText"]["text"] == "firing (Bad) since Mon 09 Nov 09:30 UTC"
    other = ask(" alerts bravo", "spaces/ALPHA")
    assert other["cardsV2"][0]["card"]["header"]["title"] == "🔕 Bravo: no alerts"
    services.store.engine.dispose()


def test_the_status_page_lists_firing_alerts(fired, store_url):
    services = build_services(load_config(fired), clock=lambda: T0 + 3 * CHECK, store_url=store_url)
    client = create_app(services=services, allow_unverified=True).test_client()
    html = client.get("/status", environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_data(as_text=True)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "Firing alerts" in text
    assert "bad Alpha · Open issues: firing since Mon 9 Nov 09:30 UTC" in text
    services.store.engine.dispose()


def test_preview_alert_prints_the_alert_card_the_worst_kpi_would_give(fired, capsys):
    assert main(["--config", str(fired), "preview", "alpha", "--alert", "--format", "json"]) == 0
    message = json.loads(capsys.readouterr().out)
    assert validate_message(message) == []
    assert message["cardsV2"][0]["card"]["header"]["title"] == "🔴 Alpha · Open issues: Bad"


def test_check_counts_the_alert_checks_in_each_sources_calls_a_day(tmp_path, fake):
    path = alert_config(tmp_path, fake, "sqlite:///store.db", ["alpha"])
    config = load_config(path)
    services = build_services(config, store_url=f"sqlite:///{tmp_path / 'c.db'}")
    now = datetime(2026, 11, 9, 0, 0, tzinfo=UTC)
    day = daily_calls(config, services.sources, {("alpha", "open"): 1}, now)["alpha"]
    assert day.calls == 96 and day.average == 96  # a check every 15 minutes, one call each
    assert len(check_times(now, now + timedelta(days=1), CHECK)) == 96
    plain = config.model_copy(update={"teams": [config.teams[0].model_copy(update={"alerts": None})]})
    assert daily_calls(plain, services.sources, {("alpha", "open"): 1}, now) == {}
    services.store.engine.dispose()
