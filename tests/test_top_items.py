"""Top items, the oldest item and what is new: from every source type, Vtiger through its loopback stand-in."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.__main__ import main
from bot.card_text import message_as_text
from bot.cards import team_message
from bot.config import load_config
from bot.errors import SourceDataError
from bot.schedule.tick import Scheduler
from bot.services import build_services
from bot.sources.base import Deadline, FetchResult, Wanted
from bot.sources.file import FileQuery, FileSettings, FileSource
from bot.sources.http import HttpQuery, HttpSettings, HttpSource
from bot.sources.vtiger import VtigerQuery, VtigerSettings, VtigerSource
from bot.store import SCORE
from tests.fakes.vtiger import FakeVtiger
from tests.test_http_source import JsonServer
from tests.test_readings import Clock

WEIGHTS = {"High": 5, "Medium": 2, "Low": 1}
START = datetime(2026, 9, 1, 9, 0)
"""Records are created from here on, one an hour (CRM-local time)."""
NEW_YORK = ZoneInfo("America/New_York")

MakeSource = Callable[..., VtigerSource]


@pytest.fixture
def fake() -> Iterator[FakeVtiger]:
    server = FakeVtiger()
    yield server
    server.close()


@pytest.fixture
def make_source(fake: FakeVtiger) -> Iterator[MakeSource]:
    made: list[VtigerSource] = []

    def make(**overrides: object) -> VtigerSource:
        block = {"type": "vtiger", "url": fake.url, "username": fake.username, "access_key": fake.access_key}
        source = VtigerSource("crm", VtigerSettings.model_validate({**block, **overrides}), Path())
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


def add_tasks(fake: FakeVtiger, priorities: list[str], start_hour: int = 0, **values: str) -> None:
    """One open task per priority, created an hour apart from ``START`` + ``start_hour`` hours."""
    for hour, priority in enumerate(priorities, start=start_hour):
        created = (START + timedelta(hours=hour)).strftime("%Y-%m-%d %H:%M:%S")
        subject = f"{priority} task {hour}"
        fake.add("Calendar", 1, taskpriority=priority, taskstatus="Not Started", subject=subject, createdtime=created)
        fake.records["Calendar"][-1].update(values)


def tasks(plan: str = "auto", filter: str = "taskstatus != 'Completed'") -> VtigerQuery:
    return VtigerQuery.model_validate({"module": "Calendar", "filter": filter, "plan": plan})


def fetch(source: VtigerSource, query: VtigerQuery, wanted: Wanted | None = None) -> FetchResult:
    if wanted is None:
        return source.fetch(query, "taskpriority", Deadline.after(5))
    return source.fetch(query, "taskpriority", Deadline.after(5), wanted)


def top3(since: datetime | None = None) -> Wanted:
    return Wanted(top=3, weights=WEIGHTS, since=since, oldest=True)


def record_number(fake: FakeVtiger, subject: str) -> str:
    found = [r for r in fake.records["Calendar"] if r["subject"] == subject]
    return str(found[0]["id"]).split("x")[1]


# --- Vtiger ----------------------------------------------------------------------------------


def test_a_counted_kpi_lists_its_heaviest_items_with_one_extra_query(fake: FakeVtiger, make_source: MakeSource) -> None:
    add_tasks(fake, ["Low"] * 150 + ["High"] * 120 + ["Medium"] * 130)  # the Low ones are the oldest
    without = fetch(make_source(), tasks("count"))
    fake.seen.clear()
    result = fetch(make_source(), tasks("count"), top3())

    assert result.counts == without.counts == {"High": 120, "Medium": 130, "Low": 150}
    assert result.calls == without.calls + 1
    assert fake.queries()[-1] == (
        "SELECT id,subject,taskpriority,createdtime FROM Calendar WHERE taskstatus != 'Completed' "
        "AND taskpriority IN ('High') ORDER BY createdtime LIMIT 3;"
    )
    assert [(i.title, i.category) for i in result.items] == [
        ("High task 150", "High"),
        ("High task 151", "High"),
        ("High task 152", "High"),
    ]
    first = result.items[0]
    assert first.created == datetime(2026, 9, 7, 15, 0, tzinfo=UTC)  # START + 150 h, the CRM's zone is UTC
    assert first.link == f"{fake.url}/index.php?module=Calendar&view=Detail&record={record_number(fake, first.title)}"
    assert (result.oldest, result.oldest_among) == (first.created, ("High",))
    assert result.created_since is None


def test_a_paged_kpi_costs_no_extra_query_and_ranks_weight_then_age(fake: FakeVtiger, make_source: MakeSource) -> None:
    add_tasks(fake, ["Low", "Medium", "High", "Medium", "High", "Low"])
    without = fetch(make_source(), tasks("page"))
    fake.seen.clear()
    result = fetch(make_source(), tasks("page"), top3(since=datetime(2026, 9, 1, 12, 30, tzinfo=UTC)))

    assert result.calls == without.calls
    assert fake.queries() == [
        "SELECT id,subject,taskpriority,createdtime FROM Calendar WHERE taskstatus != 'Completed' "
        "ORDER BY id LIMIT 100;"
    ]
    assert [i.title for i in result.items] == ["High task 2", "High task 4", "Medium task 1"]
    assert result.oldest == datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
    assert result.oldest_among == ()
    assert result.created_since == 2  # created 13:00 and 14:00, after 12:30


def test_auto_reads_a_small_kpi_once_and_lists_from_that_page(fake: FakeVtiger, make_source: MakeSource) -> None:
    add_tasks(fake, ["Low", "High"])
    source = make_source()
    fetch(source, tasks(), top3())
    fake.seen.clear()
    again = fetch(source, tasks(), top3(since=START.replace(tzinfo=UTC)))
    assert again.calls == 1
    assert [i.title for i in again.items] == ["High task 1", "Low task 0"]
    assert again.created_since == 1


def test_the_next_weight_joins_when_the_heaviest_has_fewer_than_top(fake: FakeVtiger, make_source: MakeSource) -> None:
    add_tasks(fake, ["Medium"] * 50 + ["High"] + ["Low"] * 400)
    result = fetch(make_source(), tasks("count"), top3())
    assert fake.queries()[-1].endswith("AND taskpriority IN ('High','Medium') ORDER BY createdtime LIMIT 51;")
    assert [i.title for i in result.items] == ["High task 50", "Medium task 0", "Medium task 1"]
    assert result.oldest_among == ("High", "Medium")


def test_over_a_page_only_the_heavier_weights_are_listed(fake: FakeVtiger, make_source: MakeSource) -> None:
    add_tasks(fake, ["Medium"] * 150 + ["High"] + ["Low"] * 300)
    result = fetch(make_source(), tasks("count"), top3())
    assert fake.queries()[-1].endswith("AND taskpriority IN ('High') ORDER BY createdtime LIMIT 3;")
    assert [i.title for i in result.items] == ["High task 150"]


def test_an_or_filter_repeats_the_category_test_in_each_alternative(fake: FakeVtiger, make_source: MakeSource) -> None:
    add_tasks(fake, ["High"] * 200 + ["Low"] * 200)
    add_tasks(fake, ["High"] * 5, start_hour=1000, taskstatus="Planned")
    add_tasks(fake, ["High"] * 5, start_hour=2000, taskstatus="Completed")
    query = tasks("count", "taskstatus = 'Planned' OR taskstatus = 'Not Started'")
    result = fetch(make_source(), query, top3())
    assert fake.queries()[-1] == (
        "SELECT id,subject,taskpriority,createdtime FROM Calendar WHERE taskstatus = 'Planned' "
        "AND taskpriority IN ('High') OR taskstatus = 'Not Started' AND taskpriority IN ('High') "
        "ORDER BY createdtime LIMIT 3;"
    )
    assert [i.title for i in result.items] == ["High task 0", "High task 1", "High task 2"]


@pytest.mark.parametrize("plan", ["count", "page"])
def test_created_since_is_counted_in_the_crm_zone(fake: FakeVtiger, make_source: MakeSource, plan: str) -> None:
    """The CRM keeps New York time; the previous post is given in Kolkata time."""
    add_tasks(fake, ["High"] * 110 + ["Low"] * 110)  # 220 hours from 2026-09-01 09:00 New York time
    post = datetime(2026, 9, 10, 2, 30, tzinfo=ZoneInfo("Asia/Kolkata"))  # 2026-09-09 17:00 in New York (EDT)
    source = make_source(crm_timezone="America/New_York")
    result = fetch(source, tasks(plan), top3(since=post))
    newer = [r for r in fake.records["Calendar"] if str(r["createdtime"]) > "2026-09-09 17:00:00"]
    assert result.created_since == len(newer) == 220 - (8 * 24 + 8 + 1)  # created 200 h after START: not newer
    if plan == "count":
        assert fake.queries()[-1] == (
            "SELECT count(*) FROM Calendar WHERE taskstatus != 'Completed' AND createdtime > '2026-09-09 17:00:00';"
        )
    assert result.oldest == START.replace(tzinfo=NEW_YORK)


def test_a_kpi_with_nothing_open_costs_nothing_more(fake: FakeVtiger, make_source: MakeSource) -> None:
    source = make_source()
    fetch(source, tasks("count"))
    fake.seen.clear()
    result = fetch(source, tasks("count"), top3(since=datetime(2026, 9, 1, tzinfo=UTC)))
    assert (result.counts, result.items, result.created_since, result.calls) == ({}, (), 0, 1)


def test_a_module_whose_label_is_not_a_field_lists_untitled_items(fake: FakeVtiger, make_source: MakeSource) -> None:
    """HelpDesk's labelFields is ``title``, a column name: the KPI names ``ticket_title`` itself."""
    fake.add("HelpDesk", 2, ticketpriorities="Urgent", ticketstatus="Open", ticket_title="Printer on fire")
    weights = Wanted(top=3, weights={"Urgent": 10})
    plain = VtigerQuery.model_validate({"module": "HelpDesk"})
    titled = VtigerQuery.model_validate({"module": "HelpDesk", "title": "ticket_title"})
    source = make_source()
    untitled = source.fetch(plain, "ticketpriorities", Deadline.after(5), weights)
    assert [i.title for i in untitled.items] == ["", ""]
    named = source.fetch(titled, "ticketpriorities", Deadline.after(5), weights)
    assert [i.title for i in named.items] == ["Printer on fire", "Printer on fire"]
    assert named.items[0].link and "module=HelpDesk&view=Detail&record=" in named.items[0].link


# --- file and http -------------------------------------------------------------------------------


CSV = """id,title,priority,status,created,url
A-1,Old low,Low,Open,2026-09-01,https://tracker.example.com/A-1
A-2,Broken login,High,Open,2026-10-01T08:00:00Z,https://tracker.example.com/A-2
A-3,Closed high,High,Closed,2026-08-01,https://tracker.example.com/A-3
A-4,Slow page,Medium,Open,2026-11-20,javascript:alert(1)
A-5,Typo,High,Open,2026-11-25T10:00:00+01:00,
"""


def test_file_lists_dates_and_counts_new_from_its_columns(tmp_path: Path) -> None:
    (tmp_path / "issues.csv").write_text(CSV, encoding="utf-8")
    source = FileSource("demo", FileSettings(type="file", path="issues.csv"), tmp_path)
    query = FileQuery(where={"status": "Open"}, title="title", created="created", link="url")
    result = source.fetch(query, "priority", Deadline.after(5), top3(since=datetime(2026, 10, 15, tzinfo=UTC)))
    assert [(i.title, i.link) for i in result.items] == [
        ("Broken login", "https://tracker.example.com/A-2"),
        ("Typo", None),
        ("Slow page", None),  # only http(s) links are kept
    ]
    assert result.items[1].created == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert result.oldest == datetime(2026, 9, 1, tzinfo=UTC)
    assert result.created_since == 2
    plain = source.fetch(FileQuery(where={"status": "Open"}), "priority", Deadline.after(5), top3(datetime.now(UTC)))
    assert (plain.oldest, plain.created_since) == (None, None)
    assert [i.title for i in plain.items] == ["", "", ""]


def test_file_with_a_bad_date_says_which_record(tmp_path: Path) -> None:
    (tmp_path / "issues.csv").write_text("priority,created\nHigh,2026-13-45\n", encoding="utf-8")
    source = FileSource("demo", FileSettings(type="file", path="issues.csv"), tmp_path)
    with pytest.raises(SourceDataError, match="record 1 has created '2026-13-45', not an ISO 8601 date"):
        source.fetch(FileQuery(created="created"), "priority", Deadline.after(5), top3())


def test_http_picks_title_created_and_link_with_jmespath() -> None:
    document = {
        "items": [
            {"key": "W-1", "fields": {"summary": "Slow", "prio": "Low", "created": "2026-09-01T00:00:00Z"}},
            {"key": "W-2", "fields": {"summary": "Down", "prio": "High", "created": "2026-11-01T00:00:00Z"}},
            {"key": "W-3", "fields": {"summary": "Flaky", "prio": "Medium", "created": "2026-10-01T00:00:00Z"}},
        ]
    }
    server = JsonServer()
    server.body = document
    try:
        source = HttpSource("metrics", HttpSettings(type="http", url=server.url), Path())
        query = HttpQuery(
            path="items[*].fields",
            title="summary",
            created="created",
            link="join('', ['https://issues.example.com/', summary])",
        )
        result = source.fetch(query, "prio", Deadline.after(5), top3(since=datetime(2026, 10, 15, tzinfo=UTC)))
        source.close()
    finally:
        server.close()
    assert [(i.title, i.category, i.link) for i in result.items] == [
        ("Down", "High", "https://issues.example.com/Down"),
        ("Flaky", "Medium", "https://issues.example.com/Flaky"),
        ("Slow", "Low", "https://issues.example.com/Slow"),
    ]
    assert (result.oldest, result.created_since) == (datetime(2026, 9, 1, tzinfo=UTC), 1)


def test_top_zero_lists_nothing(tmp_path: Path) -> None:
    (tmp_path / "issues.csv").write_text(CSV, encoding="utf-8")
    source = FileSource("demo", FileSettings(type="file", path="issues.csv"), tmp_path)
    query = FileQuery(title="title", created="created")
    result = source.fetch(query, "priority", Deadline.after(5), Wanted(top=0, weights=WEIGHTS, oldest=True))
    assert result.items == ()
    assert result.oldest == datetime(2026, 8, 1, tzinfo=UTC)


def file_source(tmp_path: Path, text: str) -> FileSource:
    (tmp_path / "issues.csv").write_text(text, encoding="utf-8")
    return FileSource("demo", FileSettings(type="file", path="issues.csv"), tmp_path)


def test_top_one_lists_the_single_heaviest_oldest_item(tmp_path: Path) -> None:
    source = file_source(tmp_path, CSV)
    query = FileQuery(where={"status": "Open"}, title="title", created="created")
    result = source.fetch(query, "priority", Deadline.after(5), Wanted(top=1, weights=WEIGHTS))
    assert [i.title for i in result.items] == ["Broken login"]  # of the two High ones, the older


def test_items_alike_in_weight_and_age_are_listed_in_the_order_read(tmp_path: Path) -> None:
    rows = ["id,title,priority,created", "1,Low one,Low,2026-09-01"]
    rows += [f"{n},High {n},High,2026-10-01" for n in range(2, 7)]
    source = file_source(tmp_path, "\n".join(rows) + "\n")
    query = FileQuery(title="title", created="created")
    result = source.fetch(query, "priority", Deadline.after(5), Wanted(top=3, weights=WEIGHTS))
    assert [i.title for i in result.items] == ["High 2", "High 3", "High 4"]
    undated = source.fetch(FileQuery(title="title"), "priority", Deadline.after(5), Wanted(top=2, weights=WEIGHTS))
    assert [i.title for i in undated.items] == ["High 2", "High 3"]


def test_unweighted_and_weight_zero_items_are_never_listed(tmp_path: Path) -> None:
    source = file_source(tmp_path, "title,priority\nIgnored,Ignored\nSurprise,Surprise\nHeavy,High\n")
    wanted = Wanted(top=3, weights={"High": 5, "Ignored": 0})
    result = source.fetch(FileQuery(title="title"), "priority", Deadline.after(5), wanted)
    assert [i.title for i in result.items] == ["Heavy"]
    assert result.counts == {"Ignored": 1, "Surprise": 1, "High": 1}


def test_an_item_created_at_the_previous_post_is_not_new(tmp_path: Path) -> None:
    text = "priority,created\nHigh,2026-10-15T09:59:59Z\nHigh,2026-10-15T10:00:00Z\nLow,2026-10-15T10:00:01Z\n"
    source = file_source(tmp_path, text)
    post = datetime(2026, 10, 15, 10, 0, tzinfo=UTC)
    result = source.fetch(FileQuery(created="created"), "priority", Deadline.after(5), Wanted(since=post))
    assert result.created_since == 1
    assert result.oldest == datetime(2026, 10, 15, 9, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    "link", ["ftp://files.example.com/A-1", "http:A-1", "mailto:team@example.com", "tracker.example.com/A-1", " "]
)
def test_only_http_and_https_addresses_become_links(tmp_path: Path, link: str) -> None:
    source = file_source(tmp_path, f"title,priority,url\nBroken,High,{link}\nSlow,High,https://t.example.com/2\n")
    query = FileQuery(title="title", link="url")
    result = source.fetch(query, "priority", Deadline.after(5), Wanted(top=3, weights=WEIGHTS))
    assert [(i.title, i.link) for i in result.items] == [("Broken", None), ("Slow", "https://t.example.com/2")]


def test_vtiger_dates_the_items_when_only_the_top_is_asked(fake: FakeVtiger, make_source: MakeSource) -> None:
    add_tasks(fake, ["Low", "High", "High"])
    result = fetch(make_source(), tasks("page"), Wanted(top=1, weights=WEIGHTS))
    assert [(i.title, i.created) for i in result.items] == [("High task 1", datetime(2026, 9, 1, 10, 0, tzinfo=UTC))]
    assert result.created_since is None


def test_vtiger_finds_the_oldest_when_only_the_oldest_is_asked(fake: FakeVtiger, make_source: MakeSource) -> None:
    add_tasks(fake, ["Low", "High"])
    result = fetch(make_source(), tasks("page"), Wanted(oldest=True))
    assert (result.items, result.oldest) == ((), datetime(2026, 9, 1, 9, 0, tzinfo=UTC))


# --- check ---------------------------------------------------------------------------------------


def test_check_counts_the_top_items_query_and_lists_them(
    fake: FakeVtiger, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    add_tasks(fake, ["Low"] * 150 + ["High"] * 120 + ["Medium"] * 130)
    config = {
        "chat": {"verify": False},
        "sources": {
            "crm": {"type": "vtiger", "url": fake.url, "username": fake.username, "access_key": "${VTIGER_KEY}"}
        },
        "teams": [
            {
                "id": "support",
                "name": "Support",
                "kpis": [
                    {
                        "id": name,
                        "name": name,
                        "source": "crm",
                        "count": {"module": "Calendar", "filter": "taskstatus != 'Completed'", "plan": plan},
                        "category": "taskpriority",
                        "weights": WEIGHTS,
                        "target": 10,
                        "warning": 20,
                        "top": top,
                    }
                    for name, plan, top in [("counted", "count", 3), ("quiet", "count", 0), ("paged", "page", 3)]
                ],
            }
        ],
    }
    (tmp_path / "scorebot.yaml").write_text(json.dumps(config), encoding="utf-8")
    monkeypatch.setenv("VTIGER_KEY", fake.access_key)
    monkeypatch.setenv("SCOREBOT_STORE", f"sqlite:///{tmp_path / 'check.db'}")
    assert main(["--config", str(tmp_path / "scorebot.yaml"), "check"]) == 0
    out = capsys.readouterr().out
    lines = [line.strip() for line in out.splitlines()]
    # signed in by the source check; the first KPI describes Calendar, then counts the total and 3 values
    counted, quiet, paged = (lines[i + 1 : i + 3] for i, line in enumerate(lines) if line.startswith("ok   support/"))
    assert counted[0].startswith("plan: count(*) per category; 6 calls;")  # describe + 4 counts + the top query
    assert counted[1].startswith("top: High task 150 (High, ")
    assert " · oldest High: " in counted[1]  # the count plan read only the High ones
    assert quiet[0].startswith("plan: count(*) per category; 5 calls;")  # top: 0: the oldest item's query
    assert quiet[1].startswith("top: none listed · oldest: ")
    assert paged[0].startswith("plan: page records; 5 calls;")  # 400 rows: 4 full pages and an empty one
    assert paged[1].startswith("top: High task 150 (High, ") and "oldest: " in paged[1]


# --- through the scheduler: what is new since the previous post ---------------------------------


def test_new_items_are_counted_since_the_previous_post_across_zones(fake: FakeVtiger, tmp_path: Path) -> None:
    """The team posts at 09:00 Kolkata time; the CRM keeps New York time. After the post two High tasks
    are created: the next card counts 2 new (one count(*) in New York time) and marks them new."""
    kolkata, new_york = ZoneInfo("Asia/Kolkata"), NEW_YORK

    def crm_time(moment: datetime) -> str:
        return moment.astimezone(new_york).strftime("%Y-%m-%d %H:%M:%S")

    post = datetime(2026, 11, 9, 9, 0, tzinfo=kolkata)  # 2026-11-08 22:30 in New York
    for hours in range(1, 231):  # the old ones: Medium and Low, hours before the post
        priority = "Medium" if hours % 2 else "Low"
        fake.add("Calendar", 1, taskpriority=priority, taskstatus="Open", subject=f"old {hours}")
        fake.records["Calendar"][-1]["createdtime"] = crm_time(post - timedelta(hours=hours))
    config = {
        "chat": {"verify": False},
        "sources": {
            "crm": {
                "type": "vtiger",
                "url": fake.url,
                "username": fake.username,
                "access_key": fake.access_key,
                "crm_timezone": "America/New_York",
            }
        },
        "teams": [
            {
                "id": "ops",
                "name": "Ops",
                "timezone": "Asia/Kolkata",
                "schedule": "0 9 * * *",
                "deliver": [{"type": "log"}],
                "kpis": [
                    {
                        "id": "tasks",
                        "name": "Open tasks",
                        "source": "crm",
                        "count": {"module": "Calendar", "filter": "taskstatus = 'Open'", "plan": "count"},
                        "category": "taskpriority",
                        "weights": WEIGHTS,
                        "target": 100,
                        "warning": 400,
                    }
                ],
            }
        ],
    }
    (tmp_path / "scorebot.yaml").write_text(json.dumps(config), encoding="utf-8")
    clock = Clock(post + timedelta(seconds=20))
    services = build_services(
        load_config(tmp_path / "scorebot.yaml"), clock=clock, store_url=f"sqlite:///{tmp_path / 'store.db'}"
    )
    try:
        assert [o.state for o in Scheduler(services).tick(clock.now).outcomes] == ["delivered"]
        first = services.store.outbox("ops")[0].message["text"]
        assert "Open tasks: 345" in first and " new" not in first, "no post before the first: nothing is new"

        for minutes, subject in [(-5, "before the post"), (30, "Printer on fire"), (90, "Disk full")]:
            fake.add("Calendar", 1, taskpriority="High", taskstatus="Open", subject=subject)
            fake.records["Calendar"][-1]["createdtime"] = crm_time(post + timedelta(minutes=minutes))
        clock.now = post + timedelta(hours=3)
        report = services.report(services.config.teams[0], SCORE)
        clock.now += timedelta(seconds=10)
        cached = services.report(services.config.teams[0], SCORE, cached=True)  # /score shows that reading
    finally:
        for source in services.sources.values():
            source.close()  # type: ignore[attr-defined]
        services.store.engine.dispose()

    assert fake.queries()[-1] == (
        "SELECT count(*) FROM Calendar WHERE taskstatus = 'Open' AND createdtime > '2026-11-08 22:30:00';"
    )
    kpi = report.kpis[0]
    assert kpi.fetch is not None and kpi.fetch.created_since == 2
    text = message_as_text(team_message(report, refresh_function=None))
    assert "oldest High: 3 h · 2 new since last post today 09:00" in text  # the oldest of the heaviest
    assert cached.kpis[0].cached
    cached_text = message_as_text(team_message(cached, refresh_function=None))
    assert "oldest High: 3 h · 2 new since last post today 09:00" in cached_text, "a cached card says it all too"
    assert "Printer on fire" in cached_text and "(High, 2 h, new)" in cached_text
    link = f"{fake.url}/index.php?module=Calendar&view=Detail&record="
    top = [line.strip("│ ") for line in text.splitlines() if "(High, " in line and line.startswith("│")]
    assert top == [
        f"before the post <{link}{record_number(fake, 'before the post')}> (High, 3 h)",
        f"Printer on fire <{link}{record_number(fake, 'Printer on fire')}> (High, 2 h, new)",
        f"Disk full <{link}{record_number(fake, 'Disk full')}> (High, 1 h, new)",
    ]


@pytest.mark.parametrize("plan", ["count", "page"])
def test_an_alert_lists_the_new_items_of_its_categories_in_the_same_read(
    fake: FakeVtiger, make_source: MakeSource, plan: str
) -> None:
    """The count plan lists them with one query more; paging finds them among the rows it reads anyway."""
    add_tasks(fake, ["High", "Low"] * 60)  # 120 hours from 2026-09-01 09:00 (UTC here)
    after = START.replace(tzinfo=UTC) + timedelta(hours=115, minutes=30)
    wanted = Wanted(top=3, weights=WEIGHTS, oldest=True, new_in=("high",), new_after=after)
    source = make_source()
    fetch(source, tasks(plan), top3())  # signed in, the module described, its row count known
    plain = fetch(source, tasks(plan), top3())
    result = fetch(source, tasks(plan), wanted)
    assert [i.title for i in result.new_items] == ["High task 116", "High task 118"]
    assert result.new_total == 2
    assert all(i.link and i.link.startswith(fake.url) for i in result.new_items)
    assert result.calls == plain.calls + (plan == "count")
    if plan == "count":
        assert fake.queries()[-1] == (
            "SELECT id,subject,taskpriority,createdtime FROM Calendar WHERE taskstatus != 'Completed' "
            "AND taskpriority IN ('High') AND createdtime > '2026-09-06 04:30:00' ORDER BY createdtime LIMIT 100;"
        )
    assert fetch(source, tasks(plan), top3()).new_total is None  # not asked: not listed
