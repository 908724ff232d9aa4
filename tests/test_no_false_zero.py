"""No false zero: through the scheduler, every source type tells "read, and it is 0" from "could not read".

Each team posts at 09:05 to a ``log`` target (the store's outbox) with a grace
period of 10 minutes. A source error leaves the slot pending (no post) and, once
the grace period is over, posts the card marked "Could not refresh" with the
reason; a real zero is posted at once as a fresh card with index 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import load_config
from bot.schedule.tick import Scheduler
from bot.services import build_services
from tests.fakes.vtiger import FakeVtiger, error_body
from tests.test_http_source import JsonServer

SLOT_TICK = datetime(2026, 11, 9, 9, 5, 30, tzinfo=UTC)
FINAL_TICK = datetime(2026, 11, 9, 9, 15, 40, tzinfo=UTC)  # the 09:05 slot's grace (10 min) is over


class Clock:
    def __init__(self) -> None:
        self.now = SLOT_TICK

    def __call__(self) -> datetime:
        return self.now


class Team:
    """One team on one source, scheduled at 09:05 UTC, delivering to the outbox."""

    def __init__(self, tmp_path: Path, source: dict[str, Any], kpi: dict[str, Any], env: dict[str, str]) -> None:
        data = {
            "chat": {"verify": False},
            "store": "sqlite:///store.db",
            "timezone": "UTC",
            "schedule": {"grace_minutes": 10, "lease_seconds": 5, "pace_seconds": 0.05, "deadline_seconds": 4},
            "sources": {"data": source},
            "teams": [
                {
                    "id": "alpha",
                    "name": "Alpha",
                    "schedule": "5 9 * * *",
                    "deliver": [{"type": "log"}],
                    "kpis": [
                        {"id": "open", "name": "Open issues", "source": "data", "target": 20, "warning": 40} | kpi
                    ],
                }
            ],
        }
        path = tmp_path / "scorebot.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        self.clock = Clock()
        store_url = f"sqlite:///{tmp_path / 'store.db'}"
        services = build_services(load_config(path, env=env), clock=self.clock, store_url=store_url)
        self.store = services.store
        self.scheduler = Scheduler(services)

    def tick(self, at: datetime) -> list[tuple[str, str | None]]:
        self.clock.now = at
        return [(o.state, o.detail) for o in self.scheduler.tick(at).outcomes]

    def posts(self) -> list[dict[str, Any]]:
        return [entry.message for entry in self.store.outbox("alpha")]


def assert_source_error(team: Team, reason: str) -> None:
    """The slot is retried without a post, then posted marked stale with ``reason``; never a fresh 0."""
    [(state, detail)] = team.tick(SLOT_TICK)
    assert state == "pending"
    assert detail is not None and detail.startswith("could not refresh: Open issues: ")
    assert reason in detail
    assert team.posts() == []

    [(state, detail)] = team.tick(FINAL_TICK)
    assert state == "delivered"
    assert detail is not None and detail.startswith("posted stale: Open issues: ")
    [message] = team.posts()
    assert message["text"].startswith("⚠ Could not refresh: Open issues: ")
    assert reason in message["text"]
    assert "<b>0</b>" not in json.dumps(message, ensure_ascii=False)


def assert_real_zero(team: Team) -> None:
    """The slot is posted at once as a fresh card whose index is 0."""
    assert team.tick(SLOT_TICK) == [("delivered", None)]
    [message] = team.posts()
    assert not message["text"].startswith("⚠")
    assert "<b>0</b>" in json.dumps(message, ensure_ascii=False)


# --- file -----------------------------------------------------------------------------------------

FILE_KPI = {"count": {"where": {"status": "Open"}}, "category": "priority", "weights": {"High": 5, "Low": 1}}


def file_team(tmp_path: Path, name: str, content: bytes | None) -> Team:
    if content is not None:
        (tmp_path / name).write_bytes(content)
    return Team(tmp_path, {"type": "file", "path": name}, FILE_KPI, {})


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("issues.csv", b"", "issues.csv is empty; expected a header row"),
        ("issues.csv", b"\n  \n", "issues.csv is empty; expected a header row"),
        ("issues.json", b"", "issues.json is empty; expected a JSON list of records"),
        ("issues.csv", b"status,team\nOpen,a\n", "issues.csv has no column 'priority' (its header: status, team)"),
        ("issues.csv", b"priority\n", "issues.csv has no column 'status'"),  # a header alone, without the where column
        ("issues.json", b'[{"status": "Open"}]', "issues.json: record 1 has no field 'priority'"),
        ("issues.json", b'[{"priority": "High"}]', "issues.json: record 1 has no field 'status'"),
        ("issues.csv", b"status,priority\nOpen,\xff\n", "issues.csv is not UTF-8 text"),
        ("issues.json", b'{"High": 3}', "issues.json must hold a JSON list of records"),
        ("issues.csv", None, "cannot read issues.csv: No such file or directory"),
    ],
)
def test_a_file_that_cannot_answer_is_a_source_error(
    tmp_path: Path, name: str, content: bytes | None, reason: str
) -> None:
    assert_source_error(file_team(tmp_path, name, content), reason)


def test_an_unreadable_path_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "issues.csv").mkdir()
    assert_source_error(file_team(tmp_path, "issues.csv", None), "cannot read issues.csv: Is a directory")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("issues.csv", b"status,priority\n"),
        ("issues.csv", b"status,priority\nClosed,High\nClosed,Low\n"),
        ("issues.json", b"[]"),
        ("issues.json", b'[{"status": "Closed", "priority": "High"}]'),
    ],
)
def test_a_file_without_matching_records_is_a_real_zero(tmp_path: Path, name: str, content: bytes) -> None:
    assert_real_zero(file_team(tmp_path, name, content))


# --- http -----------------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[JsonServer]:
    running = JsonServer()
    yield running
    running.close()


def http_team(tmp_path: Path, server: JsonServer, path: str) -> Team:
    kpi = {"count": {"path": path}, "category": "priority", "weights": {"High": 5, "Low": 1}}
    return Team(tmp_path, {"type": "http", "url": server.url}, kpi, {})


@pytest.mark.parametrize(
    ("body", "content_type", "path", "reason"),
    [
        (b"", "application/json", "counts", "data answered HTTP 200 with an empty body, not JSON"),
        (b"  \n", "application/json", "counts", "data answered HTTP 200 with an empty body, not JSON"),
        (b"<html>maintenance</html>", "text/html", "counts", "a body that is not JSON (text/html)"),
        ({"data": {}}, "application/json", "data.counts", "path 'data.counts' selected nothing"),
        (b"null", "application/json", "counts", "path 'counts' selected nothing"),
        ({"items": [{"prio": "High"}]}, "application/json", "items", "no record under 'items' has a field 'priority'"),
    ],
)
def test_an_http_answer_without_counts_is_a_source_error(
    tmp_path: Path, server: JsonServer, body: object, content_type: str, path: str, reason: str
) -> None:
    server.body, server.content_type = body, content_type
    assert_source_error(http_team(tmp_path, server, path), reason)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"data": {"counts": {}}}, "data.counts"),
        ({"data": {"counts": {"High": 0, "Low": 0}}}, "data.counts"),
        ({"items": []}, "items"),
        ({"items": [{"priority": "High", "state": "closed"}]}, "items[?state=='open']"),
    ],
)
def test_an_http_answer_of_no_items_is_a_real_zero(tmp_path: Path, server: JsonServer, body: object, path: str) -> None:
    server.body = body
    assert_real_zero(http_team(tmp_path, server, path))


# --- vtiger ---------------------------------------------------------------------------------------

APIS = pytest.mark.parametrize("api", ["webservice", "rest"])


@pytest.fixture
def crm() -> Iterator[FakeVtiger]:
    server = FakeVtiger()
    yield server
    server.close()


def vtiger_team(tmp_path: Path, crm: FakeVtiger, api: str, plan: str = "auto") -> Team:
    source = {"type": "vtiger", "api": api, "url": crm.url, "username": crm.username, "access_key": "${CRM_KEY}"}
    kpi = {
        "count": {"module": "Calendar", "filter": "taskstatus != 'Completed'", "plan": plan},
        "category": "taskpriority",
        "weights": {"High": 5, "Medium": 2, "Low": 1},
    }
    return Team(tmp_path, source, kpi, {"CRM_KEY": crm.access_key})


@APIS
def test_a_vtiger_count_of_zero_is_a_real_zero(tmp_path: Path, crm: FakeVtiger, api: str) -> None:
    crm.add("Calendar", 3, taskpriority="High", taskstatus="Completed")
    assert_real_zero(vtiger_team(tmp_path, crm, api, plan="count"))
    assert crm.queries() == ["SELECT count(*) FROM Calendar WHERE taskstatus != 'Completed';"]


@APIS
def test_a_vtiger_page_of_no_rows_is_a_real_zero(tmp_path: Path, crm: FakeVtiger, api: str) -> None:
    crm.add("Calendar", 3, taskpriority="High", taskstatus="Completed")
    assert_real_zero(vtiger_team(tmp_path, crm, api))  # read for the first time: one page, and it is empty
    assert crm.queries() == [
        "SELECT id,subject,taskpriority,createdtime FROM Calendar WHERE taskstatus != 'Completed' "
        "ORDER BY id LIMIT 100;"
    ]


@APIS
@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"success": True, "result": []}, "Vtiger answered count(*) on Calendar with [], not a count"),
        ({"success": True, "result": [{"count": ""}]}, "not a count"),
        (b"", "Vtiger answered HTTP 200 with an empty body, not JSON"),
        (b"<html>upgrade in progress</html>", "a body that is not JSON"),
        (error_body("QUERY_SYNTAX_ERROR", "Parsing failed"), "QUERY_SYNTAX_ERROR"),
    ],
)
def test_a_vtiger_answer_without_a_count_is_a_source_error(
    tmp_path: Path, crm: FakeVtiger, api: str, answer: dict[str, Any] | bytes, reason: str
) -> None:
    crm.inject("query", answer, status=200, times=2)  # the slot's first try and its last
    assert_source_error(vtiger_team(tmp_path, crm, api, plan="count"), reason)
