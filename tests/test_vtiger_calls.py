"""How many data calls the vtiger source spends on KPIs over 100 open items, against the fewest that determine
their counts: seven teams shaped as measured on a real Vtiger 8.2 (150 items, exactly 100, 265 across an OR,
four small), on the loopback stand-in. A data call is a ``query`` operation (sign-in and ``describe`` apart)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.sources.base import Deadline, Wanted
from bot.sources.vtiger import VtigerQuery, VtigerSettings, VtigerSource
from tests.fakes.vtiger import FakeVtiger

WEIGHTS = {"Calendar": {"High": 5, "Medium": 2, "Low": 1}, "HelpDesk": {"Urgent": 10, "High": 5, "Normal": 1}}
CATEGORY = {"Calendar": "taskpriority", "HelpDesk": "ticketpriorities"}
TEAMS = {
    "big": ("Calendar", "taskstatus = 'Not Started'"),
    "hundred": ("Calendar", "taskstatus = 'In Progress'"),
    "either": ("Calendar", "taskstatus = 'Pending Input' OR taskstatus = 'Deferred'"),
    "planned": ("Calendar", "taskstatus = 'Planned'"),
    "open": ("HelpDesk", "ticketstatus = 'Open'"),
    "waiting": ("HelpDesk", "ticketstatus = 'Wait For Response'"),
    "working": ("HelpDesk", "ticketstatus = 'In Progress'"),
}
FEWEST = {"big": 2, "hundred": 2, "either": 3, "planned": 1, "open": 1, "waiting": 1, "working": 1}
"""Per team, the fewest data calls that give its counts, top items and oldest: its pages (150 rows: 2; 100: 2,
the second one empty, to prove the first was the last; 265: 3), each fewer than count(*), 3 values and the
top items' query (5 calls)."""


@pytest.fixture
def fake() -> Iterator[FakeVtiger]:
    server = FakeVtiger()
    tasks = {
        "Not Started": [("High", 40), ("Medium", 50), ("Low", 55), ("high", 3), ("", 2)],
        "Completed": [("High", 20)],
        "In Progress": [("High", 30), ("Medium", 30), ("Low", 40)],
        "Pending Input": [("High", 40), ("Medium", 50), ("Low", 50)],
        "Deferred": [("High", 25), ("Medium", 50), ("Low", 48), ("", 2)],
        "Planned": [("High", 20), ("Medium", 20), ("Low", 20)],
    }
    tickets = {
        "Open": [("Urgent", 5), ("High", 10), ("Normal", 15), ("Low", 10)],
        "Closed": [("Low", 10)],
        "Wait For Response": [("High", 4), ("Normal", 4), ("Low", 4)],
        "In Progress": [("Urgent", 1), ("Normal", 4)],
    }
    day = 0
    for module, statuses in (("Calendar", tasks), ("HelpDesk", tickets)):
        status = "taskstatus" if module == "Calendar" else "ticketstatus"
        for value, priorities in statuses.items():
            for priority, number in priorities:
                day += 1
                created = f"2026-11-{day:02d} 09:00:00"
                server.add(module, number, **{status: value, CATEGORY[module]: priority, "createdtime": created})
    server.add("Calendar", 5, taskstatus="Not Started", taskpriority="Low", activitytype="Call")  # not tasks
    yield server
    server.close()


def source_on(fake: FakeVtiger) -> VtigerSource:
    """A new source, as a new process has."""
    block = {"type": "vtiger", "url": fake.url, "username": fake.username, "access_key": fake.access_key}
    return VtigerSource("crm", VtigerSettings.model_validate(block), Path())


def data_calls(source: VtigerSource, fake: FakeVtiger, team: str, top: int) -> tuple[int, int]:
    """The team's KPI read once by ``source``: its data calls, counted at the stand-in, and its rows."""
    module, where = TEAMS[team]
    before = fake.count("query")
    result = source.fetch(
        VtigerQuery(module=module, filter=where),
        CATEGORY[module],
        Deadline.after(10),
        Wanted(top=top, weights=WEIGHTS[module], oldest=True),
    )
    assert result.oldest is not None  # every read finds the oldest item, counted or paged
    assert result.details["queries"] == fake.count("query") - before
    return fake.count("query") - before, sum(result.counts.values())


@pytest.mark.parametrize("top", [3, 0])
def test_a_first_and_a_later_read_make_the_fewest_data_calls(fake: FakeVtiger, top: int) -> None:
    first, later, rows = {}, {}, {}
    for team in TEAMS:
        source = source_on(fake)  # a fresh process: nothing known, so it pages while that costs no more than counting
        first[team], rows[team] = data_calls(source, fake, team, top)
        source.close()
        again = source_on(fake)  # a later process, given the stored row count: it pages with no count(*) first
        again.seed_rows(VtigerQuery(module=TEAMS[team][0], filter=TEAMS[team][1]), CATEGORY[TEAMS[team][0]], rows[team])
        later[team], _ = data_calls(again, fake, team, top)
        again.close()
    assert rows == {"big": 150, "hundred": 100, "either": 265, "planned": 60, "open": 40, "waiting": 12, "working": 5}
    # before: a full first page thrown away, then count(*) and every page again (big 4, hundred 4, either 5), and
    # later count(*) before the pages (3, 3, 4): 19 and 14 calls against 13 and 11 (with describe's 2 the first time)
    assert first == later == FEWEST
    assert sum(first.values()) == sum(later.values()) == 11


@pytest.mark.parametrize(
    ("stored", "queries"),
    [
        (150, 2),  # as stored: the 2 pages
        (40, 2),  # under a page last time: the pages, no count(*)
        (99, 2),
        (250, 2),  # more last time, still cheaper to page: the pages, no count(*)
        (1000, 1 + 2),  # counting looked cheaper: count(*) = 150, then the 2 pages (fewer than 3 values + 1)
    ],
)
def test_a_stale_stored_row_count_up_or_down_keeps_the_counts_right(
    fake: FakeVtiger, stored: int, queries: int
) -> None:
    fresh = source_on(fake)
    truth, _ = data_calls(fresh, fake, "big", 3)
    expected = fresh.fetch(VtigerQuery(module="Calendar", filter=TEAMS["big"][1]), "taskpriority", Deadline.after(10))
    fresh.close()
    source = source_on(fake)
    source.seed_rows(VtigerQuery(module="Calendar", filter=TEAMS["big"][1]), "taskpriority", stored)
    before = fake.count("query")
    result = source.fetch(VtigerQuery(module="Calendar", filter=TEAMS["big"][1]), "taskpriority", Deadline.after(10))
    source.close()
    assert (fake.count("query") - before, result.counts) == (queries, expected.counts)
    assert truth == 2
    assert expected.counts == {"High": 43, "Medium": 50, "Low": 55, "(none)": 2}


def test_a_kpi_that_grew_past_the_stored_count_pages_only_while_that_pays(fake: FakeVtiger) -> None:
    source = source_on(fake)
    source.seed_rows(VtigerQuery(module="Calendar", filter=TEAMS["big"][1]), "taskpriority", 150)
    fake.add("Calendar", 850, taskstatus="Not Started", taskpriority="Medium", createdtime="2026-12-01 09:00:00")
    queries, rows = data_calls(source, fake, "big", 3)  # 1000 rows now
    # 5 full pages (as many calls as counting), count(*): 6 pages left > 3 values and the top items' query (+ a
    # page of the 2 tasks with no priority, which counting finds only then)
    assert (queries, rows) == (5 + 1 + 3 + 1 + 1, 1000)
    assert data_calls(source, fake, "big", 3) == (6, 1000)  # counted from now on
    source.close()


def test_check_again_prints_a_first_and_a_later_reads_data_calls(
    fake: FakeVtiger, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    teams = [
        {
            "id": team,
            "name": team,
            "schedule": "0 9 * * 1-5",
            "deliver": [{"type": "log"}],
            "kpis": [
                {
                    "id": "open",
                    "name": "Open items",
                    "source": "crm",
                    "count": {"module": module, "filter": where},
                    "category": CATEGORY[module],
                    "weights": WEIGHTS[module],
                    "target": 100,
                    "warning": 200,
                }
            ],
        }
        for team, (module, where) in TEAMS.items()
    ]
    source = {"type": "vtiger", "url": fake.url, "username": fake.username, "access_key": "${VTIGER_KEY}"}
    config = {"chat": {"verify": False}, "sources": {"crm": source}, "teams": teams}
    (tmp_path / "scorebot.yaml").write_text(json.dumps(config), encoding="utf-8")
    monkeypatch.setenv("VTIGER_KEY", fake.access_key)
    monkeypatch.setenv("SCOREBOT_STORE", f"sqlite:///{tmp_path / 'check.db'}")

    assert main(["--config", str(tmp_path / "scorebot.yaml"), "check", "--again"]) == 0

    out = capsys.readouterr().out
    assert fake.count("query") == 22
    assert "data calls source crm: first read: 11 (sign-in and describe not counted)" in out
    assert "data calls source crm: later read: 11 (sign-in and describe not counted)" in out
    later = out.split("later read:\n")[1]
    assert later.count("; 2 data calls") == 2 and later.count("; 3 data calls") == 1  # big, hundred; either
    # a tick reads big and hundred in one scan of 3 pages (250 rows), and the 3 ticket teams in one page
    assert "calls source crm: a tick of every scheduled team: 8 (read one by one: 11)" in out
