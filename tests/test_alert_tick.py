"""Alerts worked by the tick on a real store (SQLite and PostgreSQL) against the loopback Chat fake: each check
judged once, each notice posted once, in its incident's thread; quiet hours fold a night into one message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import load_config
from bot.schedule.tick import Scheduler
from bot.services import build_services
from tests.chat_schema import validate_message
from tests.fakes.chat import FakeChat, write_config

T0 = datetime(2026, 11, 9, 9, 0, tzinfo=UTC)
CHECK = timedelta(minutes=15)
GOOD, BAD = 2, 9
"""High rows of a team's CSV: 2 × 5 = 10 is good (target 20), 9 × 5 = 45 is bad (warning 40)."""


@pytest.fixture
def fake():
    chat = FakeChat()
    yield chat
    chat.close()


def alert_config(
    folder: Path,
    fake: FakeChat,
    store_url: str,
    teams: list[str],
    alerts: dict[str, Any] | None = None,
    **settings: Any,
) -> Path:
    """Unscheduled teams with alerts, each posting as the app to ``spaces/TEAM``, read afresh at every check."""
    rules = {"pending": 1, "repeat": 0} | (alerts or {})
    deliver = {team: [{"type": "chat_api", "space": f"spaces/{team.upper()}"}] for team in teams}
    options = {team: {"schedule": None, "alerts": rules} for team in teams}
    path = write_config(folder, fake, deliver, store=store_url, team_options=options, **settings)
    data = yaml.safe_load(path.read_text())
    for source in data["sources"].values():
        source["cache_seconds"] = 0
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def set_rows(folder: Path, team: str, high: int) -> None:
    (folder / f"{team}.csv").write_text("status,priority\n" + "Open,High\n" * high)


def scheduler_for(path: Path, store_url: str) -> Scheduler:
    return Scheduler(build_services(load_config(path), store_url=store_url))


def alerts_posted(fake: FakeChat, space: str) -> list[dict[str, Any]]:
    return [m for m in fake.messages(space) if m["name"].split("/")[-1].startswith("client-alert-")]


def test_a_crossing_alerts_once_in_its_thread_and_the_resolve_follows_there(tmp_path, fake, store_url):
    path = alert_config(tmp_path, fake, store_url, ["alpha"])
    scheduler = scheduler_for(path, store_url)
    set_rows(tmp_path, "alpha", BAD)
    assert [o.state for o in scheduler.tick(T0).alerts] == ["checked"]  # a first reading: no alert, even bad
    set_rows(tmp_path, "alpha", GOOD)
    scheduler.tick(T0 + CHECK)
    set_rows(tmp_path, "alpha", BAD)
    result = scheduler.tick(T0 + 2 * CHECK)
    assert sorted(o.state for o in result.alerts) == ["checked", "sent"]
    assert "alerts: 1 checked, 1 sent" in result.summary()
    [fire] = alerts_posted(fake, "spaces/ALPHA")
    assert validate_message({k: v for k, v in fire.items() if k not in ("name", "thread")}) == []
    assert fire["cardsV2"][0]["card"]["header"]["title"] == "🔴 Alpha · Open issues: Bad"
    assert fire["thread"]["name"] == "spaces/ALPHA/threads/alert-alpha-open-20261109093000"

    scheduler.tick(T0 + 2 * CHECK + timedelta(minutes=1))  # the same check: nothing read, nothing posted
    scheduler.tick(T0 + 3 * CHECK)
    assert len(alerts_posted(fake, "spaces/ALPHA")) == 1
    set_rows(tmp_path, "alpha", GOOD)
    scheduler.tick(T0 + 4 * CHECK)
    fire, resolve = alerts_posted(fake, "spaces/ALPHA")
    assert resolve["cardsV2"][0]["card"]["header"]["subtitle"].startswith("after 30 min")
    assert resolve["thread"] == fire["thread"]
    assert [(r.query["messageReplyOption"], r.status) for r in fake.posts("spaces/ALPHA")] == [
        ("REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD", 0)
    ] * 2
    store = scheduler.services.store
    assert [n.state for n in store.notices("alpha")] == ["sent", "sent"]
    assert [t.after for t in store.transitions("alpha", "open")] == ["normal", "firing", "normal", "firing"]
    store.engine.dispose()


def test_a_check_reads_through_the_readings_and_is_recorded_as_one(tmp_path, fake, store_url):
    path = alert_config(tmp_path, fake, store_url, ["alpha"])
    scheduler = scheduler_for(path, store_url)
    set_rows(tmp_path, "alpha", GOOD)
    scheduler.tick(T0)
    scheduler.tick(T0 + timedelta(minutes=5))  # the same check
    readings = scheduler.services.store.recent_readings("alpha")
    assert [(r.origin, r.index) for r in readings] == [("check", 10.0)]
    scheduler.services.store.engine.dispose()


def test_a_night_under_quiet_hours_is_one_message_at_its_end(tmp_path, fake, store_url):
    alerts = {"quiet_hours": "20:00-08:00", "repeat": "1h"}
    path = alert_config(tmp_path, fake, store_url, ["alpha"], alerts, timezone="Europe/Berlin")
    scheduler = scheduler_for(path, store_url)
    night = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)  # 22:00 in Berlin; the clocks go back at 03:00
    for n, rows in enumerate([GOOD, BAD, BAD, BAD, BAD, BAD, GOOD]):
        set_rows(tmp_path, "alpha", rows)
        scheduler.tick(night + n * timedelta(hours=1))
    assert alerts_posted(fake, "spaces/ALPHA") == []
    scheduler.tick(datetime(2026, 10, 25, 6, 59, tzinfo=UTC))
    assert alerts_posted(fake, "spaces/ALPHA") == []
    scheduler.tick(datetime(2026, 10, 25, 7, 0, tzinfo=UTC))  # 08:00 CET
    [folded] = alerts_posted(fake, "spaces/ALPHA")
    card = folded["cardsV2"][0]["card"]
    assert card["header"]["title"] == "🔕 Alpha: 6 alerts held by quiet hours"  # a fire, 4 reminders, a resolve
    assert "threadKey" not in fake.posts("spaces/ALPHA")[0].body.get("thread", {})
    scheduler.services.store.engine.dispose()
