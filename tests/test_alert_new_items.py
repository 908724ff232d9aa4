"""New-item alerts worked by the tick on a real store (SQLite and PostgreSQL) against the loopback Chat fake:
each new open item of the ``new_items`` categories is told once ever, with its link, in one message per check
within Chat's limits; what was open before alerts were switched on is never new."""

from __future__ import annotations

import html
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chat_schema import MAX_MESSAGE_BYTES, validate_message
from tests.fakes.chat import FakeChat
from tests.test_alert_processes import round_of_five, settle
from tests.test_alert_tick import alert_config, alerts_posted, scheduler_for

T0 = datetime(2026, 11, 9, 9, 0, tzinfo=UTC)
CHECK = timedelta(minutes=15)
URL = "https://crm.example.com/index.php?module=HelpDesk&view=Detail&record="


def now() -> datetime:
    """The wall clock: readings are taken at it (the checks' times are the tick's)."""
    return datetime.now(UTC)


@pytest.fixture
def fake():
    chat = FakeChat()
    yield chat
    chat.close()


class Issues:
    """A team's issues file (``TEAM.csv``): open items with a title, priority, creation time and link."""

    def __init__(self, folder: Path, team: str) -> None:
        self.path = folder / f"{team}.csv"
        self.rows: list[tuple[str, str, datetime]] = []
        self.write()

    def add(self, count: int, priority: str, created: datetime) -> None:
        for _ in range(count):
            self.rows.append((f"Issue {len(self.rows) + 1}", priority, created))
        self.write()

    def close(self, number: int) -> None:
        self.rows = [row for row in self.rows if row[0] != f"Issue {number}"]
        self.write()

    def write(self) -> None:
        lines = ["status,priority,title,created,link"]
        lines += [
            f"Open,{priority},{title},{created.isoformat()},{URL}{title.split()[-1]}"
            for title, priority, created in self.rows
        ]
        self.path.write_text("\n".join(lines) + "\n")


def new_items_config(folder: Path, fake: FakeChat, store_url: str, teams: list[str], **settings: Any) -> Path:
    """`alert_config`'s teams, whose KPI weighs Critical and lists items, alerting on new Critical items."""
    path = alert_config(folder, fake, store_url, teams, {"new_items": ["Critical"]}, **settings)
    data = yaml.safe_load(path.read_text())
    for team in data["teams"]:
        kpi = team["kpis"][0]
        kpi["count"] |= {"title": "title", "created": "created", "link": "link"}
        kpi["weights"] = {"Critical": 10, "High": 5, "Low": 1}
        kpi["target"], kpi["warning"] = 1000, 2000  # the index never alerts: only new items do
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def new_item_messages(fake: FakeChat, space: str) -> list[dict[str, Any]]:
    return [m for m in alerts_posted(fake, space) if m["cardsV2"][0]["cardId"].endswith("-new")]


def told_links(fake: FakeChat, space: str) -> list[str]:
    """Every record link the new-items messages of ``space`` show."""
    links = []
    for message in new_item_messages(fake, space):
        for section in message["cardsV2"][0]["card"]["sections"]:
            for widget in section["widgets"]:
                text = widget.get("textParagraph", {}).get("text", "")
                links += [html.unescape(part.split('"')[0]) for part in text.split('href="')[1:]]
    return links


def test_fifty_new_critical_items_in_one_check_are_one_message_within_chats_limits(tmp_path, fake, store_url):
    path = new_items_config(tmp_path, fake, store_url, ["alpha"])
    issues = Issues(tmp_path, "alpha")
    issues.add(3, "Critical", now() - timedelta(days=2))  # open before alerts were switched on
    scheduler = scheduler_for(path, store_url)
    scheduler.tick(T0)
    assert alerts_posted(fake, "spaces/ALPHA") == []
    issues.add(50, "Critical", now())
    issues.add(4, "High", now())  # not a new_items category
    result = scheduler.tick(T0 + CHECK)

    assert sorted(o.state for o in result.alerts) == ["checked", "sent"]
    [message] = new_item_messages(fake, "spaces/ALPHA")
    body = {k: v for k, v in message.items() if k not in ("name", "thread")}
    assert validate_message(body) == []
    assert len(json.dumps(body, ensure_ascii=False).encode()) <= MAX_MESSAGE_BYTES
    card = message["cardsV2"][0]["card"]
    assert card["header"]["title"] == "🆕 Alpha: 50 new Critical items"
    assert card["sections"][0]["widgets"][-1]["textParagraph"]["text"] == "… and 40 more"
    assert told_links(fake, "spaces/ALPHA") == [f"{URL}{n}" for n in range(4, 14)]
    assert message["text"].endswith("… and 40 more")
    [notice] = scheduler.services.store.notices("alpha")
    assert notice.kind == "new-items" and len(json.loads(notice.items or "[]")) == 50
    scheduler.services.store.engine.dispose()


def test_no_item_is_told_twice_over_ten_checks_and_none_from_before_alerts(tmp_path, fake, store_url):
    path = new_items_config(tmp_path, fake, store_url, ["alpha"])
    issues = Issues(tmp_path, "alpha")
    issues.add(5, "Critical", now() - timedelta(hours=1))
    scheduler = scheduler_for(path, store_url)
    scheduler.tick(T0)
    for n in range(1, 11):
        at = T0 + n * CHECK
        if n % 3 == 1:
            issues.add(2, "Critical", now())
        if n == 5:
            issues.close(1)  # closed, then open again: not new (it was open before alerts)
            issues.rows.append(("Issue 1", "Critical", now() - timedelta(hours=1)))
            issues.write()
        if n == 8:
            issues.add(1, "Critical", now() - timedelta(days=1))  # created before alerts, recorded only now
        scheduler.tick(at)
        scheduler.tick(at + timedelta(minutes=1))  # the same check again: nothing new

    links = told_links(fake, "spaces/ALPHA")
    assert links == [f"{URL}{n}" for n in (6, 7, 8, 9, 10, 11, 13, 14)]  # 4 checks × 2 new items, each once
    assert len(new_item_messages(fake, "spaces/ALPHA")) == 4
    scheduler.services.store.engine.dispose()


def test_new_items_are_told_once_across_concurrent_tick_processes(tmp_path, fake, store_url):
    teams = ["team-0", "team-1", "team-2"]
    config = new_items_config(tmp_path, fake, store_url, teams, lease_seconds=20, deadline_seconds=15)
    files = {team: Issues(tmp_path, team) for team in teams}
    for n, team in enumerate(teams):
        fake.flaky(f"spaces/{team.upper()}", 0.2, seed=n)
        files[team].add(2, "Critical", now() - timedelta(hours=1))
    scheduler = scheduler_for(config, store_url)
    scheduler.tick(T0)
    for round_number in (1, 2):
        at = T0 + round_number * CHECK
        for team in teams:
            files[team].add(3, "Critical", now())
        round_of_five(config, store_url, at)
        settle(scheduler, at + timedelta(minutes=1))

    notices = scheduler.services.store.notices()
    assert Counter((n.team_id, n.kind) for n in notices) == Counter({(t, "new-items"): 2 for t in teams})
    created = Counter((space, message_id) for space, message_id, status in fake.answered if status == 200)
    assert len(created) == 6 and set(created.values()) == {1}
    for team in teams:
        assert told_links(fake, f"spaces/{team.upper()}") == [f"{URL}{n}" for n in range(3, 9)]
    scheduler.services.store.engine.dispose()
