"""``POST /tasks/changed``: a check asked for between the scheduled ones, through Flask's test client, on a real
store against the loopback Chat fake: who may ask (cron, Cloud Scheduler's token, a CRM's HMAC signature),
what a request may name, and that asked-for checks read afresh, are coalesced and held to one a minute per
team across processes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml
from flask import Flask

from bot.alerts.push import SIGNATURE_WINDOW_SECONDS, signature
from bot.config import load_config
from bot.schedule.route import create_tick_blueprint
from bot.schedule.tick import Scheduler
from bot.services import build_services
from tests.fakes.chat import FakeChat
from tests.test_alert_tick import BAD, GOOD, alert_config, alerts_posted, set_rows
from tests.test_tick import Clock

SECRET = "push-signing-key-4f1c9a7e2b"
AUDIENCE = "https://scorebot.example.com/tasks/changed"
SCHEDULER_ACCOUNT = "cron@scorebot-test.iam.gserviceaccount.com"
T0 = datetime(2026, 11, 9, 9, 0, 20, tzinfo=UTC)


@pytest.fixture
def fake():
    chat = FakeChat()
    yield chat
    chat.close()


def make_config(folder: Path, fake: FakeChat, store_url: str, *, cache_seconds: int = 0) -> Path:
    path = alert_config(
        folder,
        fake,
        store_url,
        ["alpha", "beta"],
        changed_secret=SECRET,
        cron_audience=AUDIENCE,
        cron_service_account=SCHEDULER_ACCOUNT,
    )
    data = yaml.safe_load(path.read_text())
    data["teams"].append({**data["teams"][1], "id": "quiet", "name": "Quiet"})
    del data["teams"][-1]["alerts"]
    for source in data["sources"].values():
        source["cache_seconds"] = cache_seconds
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def make_scheduler(path: Path, store_url: str, clock: Clock) -> Scheduler:
    return Scheduler(build_services(load_config(path), clock=clock, store_url=store_url))


def client_for(scheduler: Scheduler, token_factory, env: dict[str, str] | None = None):
    app = Flask(__name__)
    blueprint = create_tick_blueprint(
        scheduler.services, scheduler=scheduler, certs=token_factory.cert_cache(), env=env or {}
    )
    app.register_blueprint(blueprint)
    return app.test_client()


def signed(query: str, at: float | None = None, secret: str = SECRET) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    return {"X-Scorebot-Timestamp": timestamp, "X-Scorebot-Signature": "sha256=" + signature(secret, timestamp, query)}


def push(client, *teams: str, headers: dict[str, str] | None = None):
    query = urlencode([("team", team) for team in teams])
    return client.post(f"/tasks/changed?{query}", headers=signed(query) if headers is None else headers)


def check_readings(scheduler: Scheduler, team: str) -> list[float]:
    return [r.index for r in scheduler.services.store.recent_readings(team) if r.origin == "check"]


@pytest.fixture
def scheduler(tmp_path, fake, store_url):
    made = make_scheduler(make_config(tmp_path, fake, store_url), store_url, Clock(T0))
    yield made
    made.services.store.engine.dispose()


def test_only_cron_cloud_scheduler_and_a_signed_crm_may_ask(scheduler, token_factory, caplog):
    client = client_for(scheduler, token_factory)
    query = "team=alpha"
    assert push(client, "alpha", headers={}).status_code == 403
    assert push(client, "alpha", headers={"X-Appengine-Cron": "true"}).status_code == 403  # not on App Engine
    assert push(client, "alpha", headers=signed(query, secret="another-key-of-enough-length")).status_code == 403
    assert push(client, "alpha", headers=signed("team=beta")).status_code == 403  # signed for other teams
    stale = time.time() - SIGNATURE_WINDOW_SECONDS - 5
    assert push(client, "alpha", headers=signed(query, at=stale)).status_code == 403
    assert push(client, "alpha", headers={**signed(query), "X-Scorebot-Timestamp": "soon"}).status_code == 403
    wrong = token_factory.oidc_token(AUDIENCE, "someone@example.com")
    assert push(client, "alpha", headers={"Authorization": f"Bearer {wrong}"}).status_code == 403
    assert "does not match" in caplog.text
    assert "more than 300 s from now" in caplog.text
    assert SECRET not in caplog.text

    assert push(client, "alpha").status_code == 202
    token = token_factory.oidc_token(AUDIENCE, SCHEDULER_ACCOUNT)
    assert push(client, "alpha", headers={"Authorization": f"Bearer {token}"}).status_code == 202
    on_app_engine = client_for(scheduler, token_factory, {"GAE_ENV": "standard"})
    assert push(on_app_engine, "alpha", headers={"X-Appengine-Cron": "true"}).json == {"queued": ["alpha"]}
    assert scheduler.pushed.wait(30)


@pytest.mark.parametrize(
    ("teams", "error"),
    [
        ((), "name the teams to check: ?team=ID (repeated, or comma-separated)"),
        (("alpha", "nobody"), "unknown teams: 'nobody'"),
        (("quiet",), "teams without alerts: quiet"),
        (tuple(f"t{n}" for n in range(51)), "at most 50 teams a request"),
    ],
    ids=["none", "unknown", "no-alerts", "too-many"],
)
def test_a_request_names_known_teams_with_alerts(scheduler, token_factory, teams, error):
    response = push(client_for(scheduler, token_factory), *teams)
    assert (response.status_code, response.json) == (400, {"error": error})
    assert scheduler.pushed.wait(1)
    assert check_readings(scheduler, "alpha") == []


def test_an_asked_for_check_reads_afresh_and_alerts_at_once(tmp_path, fake, store_url, token_factory):
    clock = Clock(T0)
    scheduler = make_scheduler(make_config(tmp_path, fake, store_url, cache_seconds=3600), store_url, clock)
    client = client_for(scheduler, token_factory)
    set_rows(tmp_path, "alpha", GOOD)
    scheduler.tick(T0)  # the scheduled check: a first reading, good
    set_rows(tmp_path, "alpha", BAD)  # a critical item lands; the cache would still say good for an hour

    clock.now = T0 + timedelta(minutes=2)
    response = push(client, "alpha,alpha", "alpha")
    assert (response.status_code, response.json) == (202, {"queued": ["alpha"]})
    assert scheduler.pushed.wait(30)

    assert check_readings(scheduler, "alpha") == [45.0, 10.0]
    [fired] = alerts_posted(fake, "spaces/ALPHA")
    assert fired["cardsV2"][0]["card"]["header"]["title"] == "🔴 Alpha · Open issues: Bad"
    assert alerts_posted(fake, "spaces/BETA") == []
    scheduler.services.store.engine.dispose()


def test_asked_for_checks_are_coalesced_to_one_a_minute_per_team_across_processes(
    tmp_path, fake, store_url, token_factory
):
    path = make_config(tmp_path, fake, store_url)
    clock = Clock(T0)
    first, second = make_scheduler(path, store_url, clock), make_scheduler(path, store_url, clock)
    clients = [client_for(first, token_factory), client_for(second, token_factory)]
    set_rows(tmp_path, "alpha", GOOD)
    set_rows(tmp_path, "beta", GOOD)

    for n in range(10):
        assert push(clients[n % 2], "alpha", *(["beta"] if n == 3 else [])).status_code == 202
    assert first.pushed.wait(30)
    assert second.pushed.wait(30)
    assert len(check_readings(first, "alpha")) == 1
    assert len(check_readings(first, "beta")) == 1

    clock.now = T0 + timedelta(seconds=30)  # the same minute (09:00:50)
    push(clients[0], "alpha")
    assert first.pushed.wait(30)
    assert [o.state for o in first.pushed.outcomes] == ["coalesced"]
    clock.now = T0 + timedelta(seconds=45)  # the next minute (09:01:05)
    push(clients[1], "alpha")
    assert second.pushed.wait(30)
    assert len(check_readings(first, "alpha")) == 2
    for scheduler in (first, second):
        scheduler.services.store.engine.dispose()
