"""The vtiger source against a stand-in Vtiger 8.2 on 127.0.0.1 (real HTTP, no mocks)."""

from __future__ import annotations

import hashlib
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from pydantic import ValidationError

from bot.config import load_config
from bot.errors import (
    ConfigError,
    SourceAuthError,
    SourceDataError,
    SourceError,
    SourceQueryError,
    SourceUnavailable,
)
from bot.secrets import MAX_ISSUED, register, scrub
from bot.sources import SOURCE_TYPES
from bot.sources.base import NO_CATEGORY, Deadline, FetchResult, Wanted
from bot.sources.vtiger import VtigerQuery, VtigerSettings, VtigerSource
from bot.sources.vtiger_vtql import Condition
from tests.fakes.vtiger import SESSION_ERRORS, FakeVtiger, error_body

MakeSource = Callable[..., VtigerSource]


@pytest.fixture
def fake() -> Iterator[FakeVtiger]:
    server = FakeVtiger()
    yield server
    server.close()


@pytest.fixture
def make_source(fake: FakeVtiger) -> Iterator[MakeSource]:
    made: list[VtigerSource] = []

    def make(api: str = "webservice", **overrides: object) -> VtigerSource:
        block = {"type": "vtiger", "api": api, "url": fake.url, "username": fake.username}
        settings = VtigerSettings.model_validate({**block, "access_key": fake.access_key, **overrides})
        source = VtigerSource("crm", settings, Path())
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


def tasks(filter: str = "", plan: str = "auto") -> VtigerQuery:
    return VtigerQuery.model_validate({"module": "Calendar", "filter": filter, "plan": plan})


def keyset(select: str, alternatives: Sequence[str], ids: Sequence[str]) -> list[str]:
    """The queries that page through records with ``ids`` (in id order): 100 a page, each after the last id of
    the page before, ANDed to each of the filter's ``alternatives`` (joined by OR)."""
    queries = []
    for page in range(len(ids) // 100 + 1):
        after = [f"id > '{ids[page * 100 - 1]}'"] if page else []
        parts = [" AND ".join([alternative, *after]) for alternative in alternatives] or after
        queries.append(f"{select}{' WHERE ' + ' OR '.join(parts) if parts else ''} ORDER BY id LIMIT 100;")
    return queries


def ids_of(fake: FakeVtiger, keep: Callable[[dict[str, str | None]], bool] = lambda _: True) -> list[str]:
    """The ids of the tasks ``keep`` keeps, in id order."""
    return [str(r["id"]) for r in fake.records["Calendar"] if r.get("activitytype") == "Task" and keep(r)]


def fetch(source: VtigerSource, query: VtigerQuery | None = None, category: str = "taskpriority", seconds: float = 5):
    return source.fetch(query or tasks(), category, Deadline.after(seconds))


def seed_tasks(fake: FakeVtiger, high: int = 0, low: int = 0, empty: int = 0, done: int = 0) -> None:
    fake.add("Calendar", high, taskpriority="High", taskstatus="Not Started")
    fake.add("Calendar", low, taskpriority="Low", taskstatus="In Progress")
    fake.add("Calendar", empty, taskpriority="", taskstatus="Not Started")
    fake.add("Calendar", done, taskpriority="High", taskstatus="Completed")


# --- configuration --------------------------------------------------------------------


def test_both_types_are_registered() -> None:
    assert SOURCE_TYPES["vtiger"] is VtigerSource
    assert SOURCE_TYPES["http"].__name__ == "HttpSource"


def test_settings_normalise_url_and_hide_the_key() -> None:
    settings = VtigerSettings.model_validate(
        {"type": "vtiger", "url": "https://crm.example.com/webservice.php", "username": "u", "access_key": "k3y"}
    )
    assert settings.url == "https://crm.example.com"
    assert settings.api == "webservice"
    assert "k3y" not in repr(settings)
    with pytest.raises(ValidationError, match="url\n  Value error, must be an http:// or https:// address"):
        VtigerSettings.model_validate({"type": "vtiger", "url": "crm.example.com", "username": "u", "access_key": "k"})
    with pytest.raises(ValidationError, match="api\n  Input should be 'webservice' or 'rest'"):
        VtigerSettings.model_validate(
            {"type": "vtiger", "api": "soap", "url": "https://x", "username": "u", "access_key": "k"}
        )


def test_settings_default_to_the_documented_values_and_are_bounded() -> None:
    url = "https://crm.example.com/restapi/v1/vtiger/default/"
    base = {"type": "vtiger", "url": url, "username": "u", "access_key": "k"}  # one character each is enough
    settings = VtigerSettings.model_validate(base)
    assert settings.url == "https://crm.example.com"
    assert (settings.connect_timeout, settings.read_timeout, settings.requests_per_minute) == (3.05, 10, None)
    assert (settings.throttle_retries, settings.describe_cache_seconds, settings.zone) == (3, 600, ZoneInfo("UTC"))
    edges = {"connect_timeout": 60, "read_timeout": 120, "throttle_retries": 10, "requests_per_minute": 0.5}
    assert VtigerSettings.model_validate(base | edges).model_dump(include=set(edges)) == edges
    low = {"connect_timeout": 0.5, "read_timeout": 0.5, "throttle_retries": 0, "describe_cache_seconds": 0}
    assert VtigerSettings.model_validate(base | low).model_dump(include=set(low)) == low
    new_york = VtigerSettings.model_validate(base | {"crm_timezone": "America/New_York"})
    assert (new_york.crm_timezone, new_york.zone) == ("America/New_York", ZoneInfo("America/New_York"))
    for key, value, problem in [
        ("username", "", "String should have at least 1 character"),
        ("access_key", "", "Value should have at least 1 item after validation"),
        ("connect_timeout", 0, "Input should be greater than 0"),
        ("connect_timeout", 60.5, "Input should be less than or equal to 60"),
        ("read_timeout", 0, "Input should be greater than 0"),
        ("read_timeout", 120.5, "Input should be less than or equal to 120"),
        ("requests_per_minute", 0, "Input should be greater than 0"),
        ("throttle_retries", -1, "Input should be greater than or equal to 0"),
        ("throttle_retries", 11, "Input should be less than or equal to 10"),
        ("describe_cache_seconds", -1, "Input should be greater than or equal to 0"),
        ("crm_timezone", "Mars/Olympus", "Value error, unknown IANA time zone 'Mars/Olympus'"),
    ]:
        with pytest.raises(ValidationError, match=f"{key}\n  {re.escape(problem)}"):
            VtigerSettings.model_validate(base | {key: value})


@pytest.mark.parametrize(
    ("filter", "hint"),
    [
        ("(taskstatus = 'Open')", "parentheses are not supported"),
        ("NOT taskstatus = 'Completed'", "use != for one value"),
        ("taskstatus NOT IN ('Completed')", "list the values you want with taskstatus IN"),
        ("taskpriority IS NULL", "IS NULL / IS NOT NULL are not supported"),
        ("taskstatus <> 'Completed'", "use != instead of <>"),
        ("taskpriority = ''", "does not work on Vtiger 8.2"),
        ("taskstatus = 'Open';", "leave out the ';'"),
        ("taskstatus = 'A' AND taskpriority = 'High' OR taskpriority = 'Low'", "AND or with OR, not both"),
        ('taskstatus = "Open"', "single quotes"),
        ("taskstatus = Open", "quote the value: taskstatus = 'Open'"),
        ("taskstatus = 'Open", "not closed"),
        ("SELECT * FROM Calendar", "only the condition after WHERE"),
        ("taskstatus IN 'Open'", "list in parentheses"),
        ("taskstatus = 'a\\b'", "backslash"),
        ("taskstatus = 'Open' AND", "ends in the middle"),
        ("1st = 'x'", "unexpected '1'"),
        ("taskstatus = 'Open' taskpriority = 'High'", "expected AND or OR after a condition, found 'taskpriority'"),
        ("taskstatus = 'Open', taskpriority = 'High'", "expected AND or OR after a condition, found ','"),
        ("AND taskstatus = 'Open'", "expected a field name, found 'AND'"),
        ("5 = 'x'", "expected a field name, found '5'"),
        ("taskpriority = NULL", "NULL is not a value VTQL can compare with; use a quoted value"),
    ],
)
def test_filter_outside_the_subset_is_rejected_with_a_hint(filter: str, hint: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(hint)) as caught:
        tasks(filter)
    assert hint in str(caught.value)


def test_filter_in_the_subset_is_parsed_and_re_emitted() -> None:
    query = tasks("taskstatus != 'Completed' and taskpriority in ('High','Medium') AND subject LIKE '%O''Brien%'")
    assert query.condition.fields == ("taskstatus", "taskpriority", "subject")
    assert query.condition.where() == (
        " WHERE taskstatus != 'Completed' AND taskpriority IN ('High','Medium') AND subject LIKE '%O''Brien%'"
    )


def test_extra_conditions_are_anded_to_each_alternative() -> None:
    high, low = Condition("taskpriority", "!=", ("High",)), Condition("taskpriority", "!=", ("Low",))
    assert tasks("taskstatus = 'A'").condition.where(high, low) == (
        " WHERE taskstatus = 'A' AND taskpriority != 'High' AND taskpriority != 'Low'"
    )
    assert tasks("taskstatus = 'A' OR taskstatus = 'B'").condition.where(high, low) == (
        " WHERE taskstatus = 'A' AND taskpriority != 'High' AND taskpriority != 'Low'"
        " OR taskstatus = 'B' AND taskpriority != 'High' AND taskpriority != 'Low'"
    )
    assert tasks().condition.where(high) == " WHERE taskpriority != 'High'"


@pytest.mark.parametrize("module", ["Help Desk", "Calendar;", "", "1Calendar"])
def test_module_must_be_an_identifier(module: str) -> None:
    with pytest.raises(ValidationError, match=r"module\n  String should match pattern"):
        VtigerQuery.model_validate({"module": module})


def write_config(tmp_path: Path, count_block: str) -> Path:
    path = tmp_path / "scorebot.yaml"
    path.write_text(
        f"""
chat: {{verify: false}}
sources:
  crm:
    type: vtiger
    api: webservice
    url: https://crm.example.com
    username: scorebot
    access_key: ${{VTIGER_ACCESS_KEY}}
teams:
  - id: support
    name: Support
    kpis:
      - id: open-tasks
        name: Open tasks
        source: crm
        category: taskpriority
        count:
{count_block}
        weights: {{High: 3, Medium: 2, Low: 1, "(none)": 1}}
        target: 10
        warning: 20
""",
        encoding="utf-8",
    )
    return path


def test_config_validates_the_filter_at_start(tmp_path: Path) -> None:
    good = write_config(tmp_path, "          module: Calendar\n          filter: taskstatus != 'Completed'")
    config = load_config(good, env={"VTIGER_ACCESS_KEY": "from-env"})
    assert isinstance(config.teams[0].kpis[0].count, VtigerQuery)
    assert config.sources["crm"].access_key.get_secret_value() == "from-env"

    bad = write_config(tmp_path, "          module: Calendar\n          filter: taskstatus <> 'Completed'")
    with pytest.raises(ConfigError, match=r"teams\[0\]\.kpis\[0\]\.count\.filter: use != instead of <>") as caught:
        load_config(bad, env={"VTIGER_ACCESS_KEY": "from-env"})
    assert "teams[0].kpis[0].count.filter: use != instead of <>" in str(caught.value)


# --- the happy path, both APIs --------------------------------------------------------


@pytest.mark.parametrize("api", ["webservice", "rest"])
def test_counts_per_priority_with_empty_as_none(fake: FakeVtiger, make_source: MakeSource, api: str) -> None:
    seed_tasks(fake, high=3, low=2, empty=4, done=5)
    fake.add("Calendar", 2, taskpriority="High", taskstatus="Not Started", activitytype="Call")  # not a task
    result = fetch(make_source(api), tasks("taskstatus != 'Completed'"))
    assert result.counts == {"High": 3, "Low": 2, NO_CATEGORY: 4}
    assert result.details["rows"] == 9


def test_webservice_uses_the_right_method_per_operation_and_never_logs_out(
    fake: FakeVtiger, make_source: MakeSource
) -> None:
    seed_tasks(fake, high=1)
    result = fetch(make_source())
    methods = [(s.operation, s.method) for s in fake.seen]
    assert methods == [
        ("getchallenge", "GET"),
        ("login", "POST"),
        ("describe", "GET"),
        ("query", "GET"),
    ]
    assert result.calls == 4
    assert fake.count("logout") == 0


def test_rest_uses_basic_auth_and_no_session(fake: FakeVtiger, make_source: MakeSource) -> None:
    seed_tasks(fake, high=1)
    fetch(make_source("rest"))
    assert {s.api for s in fake.seen} == {"rest"}
    assert [s.operation for s in fake.seen] == ["describe", "query"]


def test_session_and_describe_are_reused(fake: FakeVtiger, make_source: MakeSource) -> None:
    seed_tasks(fake, high=2)
    source = make_source()
    first, second = fetch(source), fetch(source)
    assert first.counts == second.counts == {"High": 2}
    assert (fake.count("getchallenge"), fake.count("login"), fake.count("describe")) == (1, 1, 1)
    assert second.calls == 1  # 2 rows last time: one page answers, no count(*) first


def test_auto_pages_first_after_a_small_result_and_stays_right_when_it_grows(
    fake: FakeVtiger, make_source: MakeSource
) -> None:
    seed_tasks(fake, high=30, low=20)
    source = make_source()
    first = fetch(source)  # nothing known yet: the first page, which is short, so all there is
    assert (first.plan, first.calls - 3) == ("page records", 1)  # less getchallenge, login, describe
    small = fetch(source)
    assert (small.plan, small.calls, small.counts) == ("page records", 1, {"High": 30, "Low": 20})
    seed_tasks(fake, high=400)
    # expected one page, found 450 rows: 4 full pages cost what counting would (count(*) + 3 values), so it
    # counts them all, and reads the one page left (cheaper than 3 counts per value), the counts still right
    grown = fetch(source)
    assert (grown.plan, grown.calls, grown.counts) == ("page records", 6, {"High": 430, "Low": 20})
    assert [q.split(" WHERE ")[0].split(" ORDER")[0] for q in fake.queries()[-6:]] == [
        *["SELECT taskpriority FROM Calendar"] * 4,
        "SELECT count(*) FROM Calendar;",
        "SELECT taskpriority FROM Calendar",
    ]
    again = fetch(source)  # 450 rows last time: count first, then per value (3 values < 5 pages)
    assert (again.plan, again.calls, again.counts) == ("count(*) per category", 4, {"High": 430, "Low": 20})


def test_describe_is_asked_again_after_its_ttl(fake: FakeVtiger, make_source: MakeSource) -> None:
    source = make_source(describe_cache_seconds=0)
    fetch(source)
    fetch(source)
    assert fake.count("describe") == 2


# --- plans and their calls --------------------------------------------------------------


SETUP_CALLS = {"webservice": 3, "rest": 1}  # getchallenge, login, describe / describe
APIS = pytest.mark.parametrize("api", ["webservice", "rest"])


@APIS
@pytest.mark.parametrize(("rows", "pages"), [(0, 1), (100, 2), (101, 2), (250, 3)])
def test_paging_is_exact_at_page_boundaries(
    fake: FakeVtiger, make_source: MakeSource, api: str, rows: int, pages: int
) -> None:
    fake.add("Calendar", rows - rows // 3, taskpriority="Medium")
    fake.add("Calendar", rows // 3, taskpriority="")
    result = fetch(make_source(api), tasks(plan="page"))
    expected = {k: v for k, v in {"Medium": rows - rows // 3, NO_CATEGORY: rows // 3}.items() if v}
    assert result.counts == expected
    assert result.plan == "page records"
    assert result.details["rows"] == rows
    assert fake.queries() == keyset("SELECT taskpriority FROM Calendar", [], ids_of(fake))
    assert len(fake.queries()) == pages
    assert result.calls == SETUP_CALLS[api] + pages


@APIS
@pytest.mark.parametrize(("rows", "queries"), [(0, 1), (100, 2), (101, 2), (250, 3), (399, 4)])
def test_auto_pages_without_counting_when_the_stored_row_count_says_paging_is_cheaper(
    fake: FakeVtiger, make_source: MakeSource, api: str, rows: int, queries: int
) -> None:
    fake.add("Calendar", rows, taskpriority="Low")
    source = make_source(api)
    source.seed_rows(tasks(), "taskpriority", 150)  # 2 pages last time, against count(*) and 3 values
    result = fetch(source)
    assert result.counts == ({"Low": rows} if rows else {})
    assert (result.details["rows"], result.plan) == (rows, "page records")
    assert fake.queries() == keyset("SELECT taskpriority FROM Calendar", [], ids_of(fake))
    assert fake.count("query") == result.details["queries"] == queries  # no count(*): the pages are all it takes
    assert result.calls == SETUP_CALLS[api] + queries


@pytest.mark.parametrize(
    ("stored", "rows", "plan", "queries"),
    [
        (150, 150, "page records", 2),  # as stored: 2 pages, the fewest
        (150, 40, "page records", 1),  # fewer since: one short page
        (150, 399, "page records", 4),  # more since, still cheaper to page: 4 pages, as many as counting takes
        # more than paging pays for: 4 full pages, count(*), then 3 values (fewer than the 6 pages left)
        (150, 1000, "count(*) per category", 4 + 1 + 3),
        (20, 1000, "count(*) per category", 4 + 1 + 3),  # from under a page: the same
        (150, 450, "page records", 4 + 1 + 1),  # 4 full pages, count(*): 1 page left beats 3 values
        (1000, 1000, "count(*) per category", 1 + 3),  # as stored: count(*) and 3 values, the fewest
        (1000, 150, "page records", 1 + 2),  # fewer since: count(*) says 2 pages beat 3 values
        (1000, 0, "count(*) per category", 1),  # emptied: count(*) says 0
        (1000, 3000, "count(*) per category", 1 + 3),  # more since: counting stays the cheaper
    ],
)
def test_a_stale_stored_row_count_costs_calls_but_never_correctness(
    fake: FakeVtiger, make_source: MakeSource, stored: int, rows: int, plan: str, queries: int
) -> None:
    fake.add("Calendar", rows - rows // 3, taskpriority="Low")
    fake.add("Calendar", rows // 3, taskpriority="high")
    source = make_source()
    source.seed_rows(tasks(), "taskpriority", stored)
    result = fetch(source)
    assert result.counts == {k: v for k, v in {"Low": rows - rows // 3, "High": rows // 3}.items() if v}
    assert (result.plan, result.details["rows"], fake.count("query")) == (plan, rows, queries)
    again = fetch(source)  # planned from the row count just read
    assert again.counts == result.counts
    assert fake.count("query") - queries == min(rows // 100 + 1, 1 + 3)


@APIS
@pytest.mark.parametrize(("rows", "queries"), [(0, 1), (100, 4), (101, 4), (250, 4)])
def test_count_plan_spends_the_total_and_one_call_per_value(
    fake: FakeVtiger, make_source: MakeSource, api: str, rows: int, queries: int
) -> None:
    fake.add("Calendar", rows, taskpriority="Low")
    result = fetch(make_source(api), tasks(plan="count"))
    assert result.counts == ({"Low": rows} if rows else {})
    assert result.plan == "count(*) per category"
    assert fake.count("query") == queries
    assert result.calls == SETUP_CALLS[api] + queries


def test_auto_counts_per_value_when_that_is_cheaper(fake: FakeVtiger, make_source: MakeSource) -> None:
    seed_tasks(fake, high=300, low=150, empty=50)
    source = make_source()
    source.seed_rows(tasks(), "taskpriority", 500)  # 6 pages last time > count(*) and 3 picklist values
    result = fetch(source)
    assert result.plan == "count(*) per category + 1 page of other values"
    assert result.counts == {"High": 300, "Low": 150, NO_CATEGORY: 50}
    assert fake.queries() == [
        "SELECT count(*) FROM Calendar;",
        "SELECT count(*) FROM Calendar WHERE taskpriority = 'High';",
        "SELECT count(*) FROM Calendar WHERE taskpriority = 'Medium';",
        "SELECT count(*) FROM Calendar WHERE taskpriority = 'Low';",
        "SELECT taskpriority FROM Calendar WHERE taskpriority != 'High' AND taskpriority != 'Medium' "
        "AND taskpriority != 'Low' ORDER BY id LIMIT 100;",
    ]


def test_auto_pages_helpdesk_when_pages_are_fewer_than_values(fake: FakeVtiger, make_source: MakeSource) -> None:
    fake.add("HelpDesk", 250, ticketpriorities="Urgent", ticketstatus="Open")
    query = VtigerQuery.model_validate({"module": "HelpDesk", "filter": "ticketstatus != 'Closed'"})
    result = fetch(make_source(), query, category="ticketpriorities")
    assert result.plan == "page records"  # 3 pages < the total and 4 values (Low, Normal, High, Urgent)
    assert result.counts == {"Urgent": 250}
    assert fake.count("query") == 3  # nothing known: the pages, while they cost no more than counting


@pytest.mark.parametrize(
    ("filter", "plan"),
    [
        ("taskstatus != 'Completed'", "count(*) per category + 1 page of other values"),
        ("taskstatus = 'Not Started' OR taskstatus = 'In Progress'", "count(*) per category + 2 pages of all records"),
    ],
)
def test_both_plans_agree(fake: FakeVtiger, make_source: MakeSource, filter: str, plan: str) -> None:
    seed_tasks(fake, high=120, low=30, empty=7, done=40)
    source = make_source()
    by_count = fetch(source, tasks(filter, plan="count"))
    by_page = fetch(source, tasks(filter, plan="page"))
    assert by_count.counts == by_page.counts == {"High": 120, "Low": 30, NO_CATEGORY: 7}
    assert by_count.plan == plan
    assert by_page.plan == "page records"


def seed_renamed(fake: FakeVtiger, off: int = 40) -> dict[str, int]:
    """Medium renamed to Normal and Urgent removed from the picklist; old records keep them. The expected counts."""
    fake.picklists["Calendar"]["taskpriority"] = ["High", "Normal", "Low"]
    seed_tasks(fake, high=150, low=60, empty=5, done=10)
    fake.add("Calendar", off, taskpriority="Medium", taskstatus="Not Started")
    fake.add("Calendar", 2, taskpriority="Urgent", taskstatus="In Progress")
    fake.add("Calendar", 3, taskpriority=None, taskstatus="Not Started")  # NULL: no != matches it
    fake.add("Calendar", 4, taskpriority="Urgent", taskstatus="Completed")
    return {k: v for k, v in {"High": 150, "Low": 60, "Medium": off, "Urgent": 2, NO_CATEGORY: 8}.items() if v}


@APIS
@pytest.mark.parametrize(("off", "pages"), [(0, 1), (92, 1), (93, 2), (250, 3)])
def test_count_plan_reads_values_outside_the_picklist(
    fake: FakeVtiger, make_source: MakeSource, api: str, off: int, pages: int
) -> None:
    expected = seed_renamed(fake, off)  # the rest is off + 2 Urgent + 5 empty (the 3 NULL are never read)
    source = make_source(api)
    by_count = fetch(source, tasks("taskstatus != 'Completed'", plan="count"))
    by_page = fetch(source, tasks("taskstatus != 'Completed'", plan="page"))
    assert by_count.counts == by_page.counts == expected
    assert by_count.plan == f"count(*) per category + {pages} page{'s' if pages > 1 else ''} of other values"
    assert by_count.details["rows"] == sum(expected.values())
    assert by_count.calls == SETUP_CALLS[api] + 4 + pages
    others = (
        "taskstatus != 'Completed' AND taskpriority != 'High' AND taskpriority != 'Normal' AND taskpriority != 'Low'"
    )
    off_list = ids_of(fake, lambda r: r["taskstatus"] != "Completed" and r["taskpriority"] in ("", "Medium", "Urgent"))
    assert fake.queries()[4 : 4 + pages] == keyset("SELECT taskpriority FROM Calendar", [others], off_list)


def test_auto_reads_values_outside_the_picklist(fake: FakeVtiger, make_source: MakeSource) -> None:
    expected = seed_renamed(fake, off=340)  # 560 rows: 6 pages > count(*) and 3 values
    source = make_source()
    first = fetch(source, tasks("taskstatus != 'Completed'"))  # 4 full pages, count(*): 2 pages left < 3 values
    assert (first.counts, first.plan, first.details["queries"]) == (expected, "page records", 4 + 1 + 2)
    later = fetch(source, tasks("taskstatus != 'Completed'"))  # 560 rows known: counting looks cheaper
    assert later.counts == expected
    assert later.plan == "count(*) per category + 4 pages of other values"


def test_count_plan_with_an_or_filter_pages_every_record(fake: FakeVtiger, make_source: MakeSource) -> None:
    expected = seed_renamed(fake)
    result = fetch(make_source(), tasks("taskstatus = 'Not Started' OR taskstatus = 'In Progress'", plan="count"))
    assert result.counts == expected
    assert result.plan == "count(*) per category + 3 pages of all records"
    alternatives = ["taskstatus = 'Not Started'", "taskstatus = 'In Progress'"]  # the id bound joins each
    listed = ids_of(fake, lambda r: r["taskstatus"] != "Completed")
    assert fake.queries()[4:] == keyset("SELECT taskpriority FROM Calendar", alternatives, listed)
    assert len(fake.queries()) == 4 + 3


@pytest.mark.parametrize("plan", ["auto", "count", "page"])
def test_an_empty_picklist_pages(fake: FakeVtiger, make_source: MakeSource, plan: str) -> None:
    fake.picklists["Calendar"]["taskpriority"] = []
    seed_tasks(fake, high=2, low=1, empty=1)
    result = fetch(make_source(), tasks(plan=plan))
    assert result.counts == {"High": 2, "Low": 1, NO_CATEGORY: 1}
    assert result.plan == "page records"
    assert fake.count("query") == 1


def test_values_are_quoted_never_pasted(fake: FakeVtiger, make_source: MakeSource) -> None:
    fake.add("Calendar", 1, taskpriority="High", subject="O'Brien's task")
    fake.add("Calendar", 3, taskpriority="High", subject="other")
    source = make_source()
    assert fetch(source, tasks("subject = 'O''Brien''s task'")).counts == {"High": 1}
    assert fetch(source, tasks("subject = 'x'' OR subject != ''y'")).counts == {}


def test_count_plan_needs_a_picklist_category(fake: FakeVtiger, make_source: MakeSource) -> None:
    fake.add("Calendar", 2, subject="a")
    source = make_source()
    with pytest.raises(SourceQueryError, match="needs 'subject' to be a picklist field"):
        fetch(source, tasks(plan="count"), category="subject")
    assert fetch(source, category="subject").counts == {"a": 2}


def test_a_picklist_value_vtql_cannot_write_rules_out_the_count_plan(fake: FakeVtiger, make_source: MakeSource) -> None:
    fake.picklists["Calendar"]["taskpriority"] = ["High", "Low\\Medium"]
    fake.add("Calendar", 2, taskpriority="High")
    fake.add("Calendar", 1, taskpriority="Low\\Medium")
    source = make_source()
    problem = (
        "plan count needs 'taskpriority' to be a picklist field of Calendar with plain values; use plan auto or page"
    )
    with pytest.raises(SourceQueryError, match=f"^{re.escape(problem)}$"):
        fetch(source, tasks(plan="count"))
    result = fetch(source, tasks(plan="auto"))
    assert (result.counts, result.plan) == ({"High": 2, "Low\\Medium": 1}, "page records")


# --- unknown names ----------------------------------------------------------------------


@pytest.mark.parametrize("api", ["webservice", "rest"])
def test_unknown_module_names_it(fake: FakeVtiger, make_source: MakeSource, api: str) -> None:
    with pytest.raises(SourceQueryError, match=r"^Vtiger has no module 'Calender'") as caught:
        fetch(make_source(api), VtigerQuery.model_validate({"module": "Calender"}))
    message = str(caught.value)
    assert "no module 'Calender'" in message
    assert "ACCESS_DENIED" in message
    assert "similar modules: Calendar" in message


@pytest.mark.parametrize(
    ("filter", "category", "field"),
    [("taskstatuss = 'x'", "taskpriority", "taskstatuss"), ("", "priority", "priority")],
)
def test_unknown_field_names_it(
    fake: FakeVtiger, make_source: MakeSource, filter: str, category: str, field: str
) -> None:
    with pytest.raises(SourceQueryError, match=f"Vtiger module 'Calendar' has no field '{field}'"):
        fetch(make_source(), tasks(filter), category=category)
    assert fake.count("query") == 0


def test_a_picklist_option_without_a_value_is_no_category(fake: FakeVtiger, make_source: MakeSource) -> None:
    fake.picklists["Calendar"]["taskpriority"] = ["High", None, " ", "Low"]
    seed_tasks(fake, high=2, low=1)
    result = fetch(make_source(), tasks(plan="count"))
    assert result.counts == {"High": 2, "Low": 1}
    assert fake.queries()[1:] == [
        "SELECT count(*) FROM Calendar WHERE taskpriority = 'High';",
        "SELECT count(*) FROM Calendar WHERE taskpriority = 'Low';",
    ]


def test_an_unknown_module_suggests_the_three_closest(fake: FakeVtiger, make_source: MakeSource) -> None:
    for number in range(1, 5):
        fake.records[f"Tickets{number}"] = []
    with pytest.raises(SourceQueryError, match=r"\(similar modules: Tickets4, Tickets3, Tickets2\)$"):
        fetch(make_source(), VtigerQuery.model_validate({"module": "Tickets"}))


def test_an_unknown_field_suggests_the_three_closest(fake: FakeVtiger, make_source: MakeSource) -> None:
    for number in range(901, 905):  # Vtiger names custom fields cf_NNN
        fake.picklists["Calendar"][f"cf_{number}"] = ["A", "B"]
    with pytest.raises(SourceQueryError, match=r"has no field 'cf_900' \(did you mean cf_904, cf_903, cf_902\?\)$"):
        fetch(make_source(), category="cf_900")


def test_a_row_count_from_the_store_plans_a_fresh_process_read(fake: FakeVtiger, make_source: MakeSource) -> None:
    seed_tasks(fake, high=30)
    source = make_source()
    source.seed_rows(tasks(), "taskpriority", 30)  # the last reading, stored by an earlier process
    result = fetch(source)
    assert result.plan == "page records"
    assert fake.queries() == ["SELECT taskpriority FROM Calendar ORDER BY id LIMIT 100;"]
    source.seed_rows(tasks(), "taskpriority", 500)  # this process has read it since: its own count stands
    fetch(source)
    assert fake.queries()[1:] == ["SELECT taskpriority FROM Calendar ORDER BY id LIMIT 100;"]


def test_close_releases_the_kept_alive_connection() -> None:
    fake = FakeVtiger(keep_alive=True)
    seed_tasks(fake, high=1)
    settings = {"type": "vtiger", "url": fake.url, "username": fake.username, "access_key": fake.access_key}
    source = VtigerSource("crm", VtigerSettings.model_validate(settings), Path())
    try:
        assert fetch(source).counts == {"High": 1}
        assert not fake.connections_closed.acquire(timeout=0.2), "the connection is kept between calls"
        source.close()
        assert fake.connections_closed.acquire(timeout=5), "close() closed it"
    finally:
        fake.close()


def test_up_to_32_connections_are_kept_for_the_next_calls() -> None:
    """40 reads at once open 40 connections; when they end, 32 stay open for the next calls, 8 are closed."""
    fake = FakeVtiger(keep_alive=True)
    seed_tasks(fake, high=1)
    settings = {"type": "vtiger", "api": "rest", "url": fake.url, "username": fake.username}
    source = VtigerSource("crm", VtigerSettings.model_validate({**settings, "access_key": fake.access_key}), Path())
    try:
        fetch(source)  # describe is cached: each read below is queries only
        fake.hold_queries()
        reads = [threading.Thread(target=fetch, args=(source,)) for _ in range(40)]
        for read in reads:
            read.start()
        end = time.monotonic() + 10
        while fake.holding < 40:
            assert time.monotonic() < end, f"only {fake.holding} reads reached Vtiger"
            threading.Event().wait(0.005)
        fake.release()
        for read in reads:
            read.join(10)
        for number in range(8):
            assert fake.connections_closed.acquire(timeout=5), f"only {number} connections were closed"
        assert not fake.connections_closed.acquire(timeout=0.5), "more than 8 connections were closed"
    finally:
        source.close()
        fake.close()


def test_category_must_be_a_field_name(make_source: MakeSource) -> None:
    with pytest.raises(SourceQueryError, match="not a Vtiger field name"):
        fetch(make_source(), category="taskpriority FROM Users;")


# --- check: sign in without a KPI ----------------------------------------------------------


def test_service_names_vtiger() -> None:
    assert VtigerSource.service == "Vtiger"


@pytest.mark.parametrize(
    ("api", "seen"), [("webservice", ["getchallenge", "login", "listtypes"]), ("rest", ["listtypes"])]
)
def test_check_signs_in_and_lists_modules(fake: FakeVtiger, make_source: MakeSource, api: str, seen: list[str]) -> None:
    source = make_source(api)
    assert source.check(Deadline.after(5)) == f"signed in as scorebot ({api} API); 2 modules"
    assert [s.operation for s in fake.seen] == seen
    fetch(source)
    assert fake.count("login") == (1 if api == "webservice" else 0)  # the fetch reuses the session


@pytest.mark.parametrize("api", ["webservice", "rest"])
def test_check_with_a_wrong_key(fake: FakeVtiger, make_source: MakeSource, api: str) -> None:
    with pytest.raises(SourceAuthError, match="refused the access key for user 'scorebot'"):
        make_source(api, access_key="not-the-key").check(Deadline.after(5))


def test_check_of_an_unknown_user(make_source: MakeSource) -> None:
    with pytest.raises(SourceAuthError, match="does not know user 'nobody'"):
        make_source(username="nobody").check(Deadline.after(5))


def test_check_of_a_malformed_listtypes(fake: FakeVtiger, make_source: MakeSource) -> None:
    fake.inject("listtypes", {"success": True, "result": {"information": {}}})
    with pytest.raises(SourceDataError, match="listtypes answer has no module list"):
        make_source("rest").check(Deadline.after(5))


def test_check_of_a_slow_vtiger(fake: FakeVtiger, make_source: MakeSource) -> None:
    fake.delay = 3
    with pytest.raises(SourceUnavailable, match=r"^Vtiger did not answer within 0\.3 s$"):
        make_source().check(Deadline.after(0.3))


# --- credentials and sessions -------------------------------------------------------------


@pytest.mark.parametrize("api", ["webservice", "rest"])
def test_wrong_access_key(fake: FakeVtiger, make_source: MakeSource, api: str) -> None:
    with pytest.raises(SourceAuthError, match=r"^Vtiger refused the access key for user 'scorebot'") as caught:
        fetch(make_source(api, access_key="not-the-key"))
    assert "refused the access key for user 'scorebot'" in str(caught.value)
    assert "not-the-key" not in str(caught.value)
    if api == "webservice":
        assert str(caught.value).endswith("(INVALID_USER_CREDENTIALS)")
        assert (fake.count("getchallenge"), fake.count("login")) == (3, 3)  # a wrong key is refused every time


def test_a_login_whose_challenge_another_client_replaced_is_tried_again(
    fake: FakeVtiger, make_source: MakeSource
) -> None:
    """Vtiger 8.2 keeps one challenge token a user: two processes logging in at once as one user can make
    the first one's key wrong. A fresh challenge and login then succeed."""
    seed_tasks(fake, high=2)
    source, other = make_source(), make_source()
    fake.rival_challenges = 1

    assert fetch(source).counts == {"High": 2}
    assert (fake.count("getchallenge"), fake.count("login")) == (2, 2)
    assert fetch(other).counts == {"High": 2}


def test_unknown_user(fake: FakeVtiger, make_source: MakeSource) -> None:
    with pytest.raises(SourceAuthError, match="does not know user 'nobody'"):
        fetch(make_source(username="nobody"))


def test_expired_challenge_token(fake: FakeVtiger, make_source: MakeSource) -> None:
    fake.token_ttl = 0
    with pytest.raises(SourceAuthError, match="INVALID_AUTH_TOKEN"):
        fetch(make_source())


@pytest.mark.parametrize("code", SESSION_ERRORS)
def test_refused_session_logs_in_again_once(fake: FakeVtiger, make_source: MakeSource, code: str) -> None:
    seed_tasks(fake, high=1)
    source = make_source()
    fetch(source)
    fake.inject("query", error_body(code))
    assert fetch(source).counts == {"High": 1}
    assert fake.count("login") == 2


@pytest.mark.parametrize("code", SESSION_ERRORS)
def test_refused_fresh_session_does_not_loop(fake: FakeVtiger, make_source: MakeSource, code: str) -> None:
    fake.inject("describe", error_body(code), times=5)
    with pytest.raises(SourceAuthError, match=f"refused a fresh session for user 'scorebot' \\({code}\\)"):
        fetch(make_source())
    assert (fake.count("login"), fake.count("describe")) == (2, 2)


def test_sessions_expiring_mid_run(fake: FakeVtiger, make_source: MakeSource) -> None:
    seed_tasks(fake, high=1, low=1)
    source = make_source()
    fetch(source)
    fake.expire_sessions()
    assert fetch(source).counts == {"High": 1, "Low": 1}
    assert fake.count("login") == 2


def fetch_in_threads(source: VtigerSource, threads: int = 8) -> list[FetchResult | SourceError]:
    """Fetch from ``threads`` threads released at the same moment."""
    start = threading.Barrier(threads)
    results: list[FetchResult | SourceError] = []

    def run() -> None:
        start.wait()
        try:
            results.append(fetch(source))
        except SourceError as exc:
            results.append(exc)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


def test_eight_threads_share_one_login(fake: FakeVtiger, make_source: MakeSource) -> None:
    seed_tasks(fake, high=5, low=3)
    fake.delay = 0.05
    results = fetch_in_threads(make_source())
    assert [r.counts for r in results if isinstance(r, FetchResult)] == [{"High": 5, "Low": 3}] * 8
    assert (fake.count("getchallenge"), fake.count("login"), fake.count("describe")) == (1, 1, 1)


def test_eight_threads_renew_an_expired_session_once(fake: FakeVtiger, make_source: MakeSource) -> None:
    seed_tasks(fake, high=5, low=3)
    source = make_source()
    fetch(source)
    fake.expire_sessions()
    fake.delay = 0.05
    results = fetch_in_threads(source)
    assert [r.counts for r in results if isinstance(r, FetchResult)] == [{"High": 5, "Low": 3}] * 8
    assert (fake.count("getchallenge"), fake.count("login")) == (2, 2)


# --- transport failures ---------------------------------------------------------------------


def test_slow_answer_is_cut_at_the_deadline(fake: FakeVtiger, make_source: MakeSource) -> None:
    fake.delay = 3
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match=r"^Vtiger did not answer within 0\.4 s$"):
        fetch(make_source(), seconds=0.4)
    assert time.monotonic() - started < 1.5


def test_slow_answer_is_cut_at_the_read_timeout(fake: FakeVtiger, make_source: MakeSource) -> None:
    fake.delay = 3
    with pytest.raises(SourceUnavailable, match=r"^Vtiger did not answer within 0\.3 s$"):
        fetch(make_source(read_timeout=0.3), seconds=5)


def test_spent_deadline_makes_no_call(fake: FakeVtiger, make_source: MakeSource) -> None:
    with pytest.raises(SourceUnavailable, match="did not answer within"):
        fetch(make_source(), seconds=0)
    assert fake.count() == 0


def test_connection_refused(make_source: MakeSource) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SourceUnavailable, match=f"cannot reach Vtiger at 127.0.0.1:{port} \\(connection refused\\)"):
        fetch(make_source(url=f"http://127.0.0.1:{port}"))


@pytest.mark.parametrize("status", [500, 502, 503])
def test_http_5xx(fake: FakeVtiger, make_source: MakeSource, status: int) -> None:
    fake.inject("describe", b"", status=status)
    with pytest.raises(SourceUnavailable, match=f"Vtiger answered HTTP {status} to describe"):
        fetch(make_source())


def test_wrong_url_path(fake: FakeVtiger, make_source: MakeSource) -> None:
    with pytest.raises(SourceQueryError, match="HTTP 404; check the url and api settings"):
        fetch(make_source(url=f"{fake.url}/crm"))


def test_rest_403_without_envelope_is_an_auth_error(fake: FakeVtiger, make_source: MakeSource) -> None:
    fake.inject("describe", b"Forbidden", status=403)
    with pytest.raises(SourceAuthError, match=r"refused describe for user 'scorebot' \(HTTP 403\)"):
        fetch(make_source("rest"))


@pytest.mark.parametrize(
    ("status", "body", "error", "problem"),
    [
        (299, b"", SourceDataError, "Vtiger answered describe with HTTP 299 and no error envelope"),
        (
            300,
            b"",
            SourceQueryError,
            "Vtiger answered describe with a redirect (HTTP 300); set url to its final address",
        ),
        (
            399,
            b"",
            SourceQueryError,
            "Vtiger answered describe with a redirect (HTTP 399); set url to its final address",
        ),
        (400, b"", SourceDataError, "Vtiger answered describe with HTTP 400 and no error envelope"),
        (401, b"Unauthorized", SourceAuthError, "Vtiger refused the access key for user 'scorebot' (HTTP 401)"),
        (403, b'{"message": "Forbidden"}', SourceAuthError, "Vtiger refused describe for user 'scorebot' (HTTP 403)"),
        (499, b"", SourceDataError, "Vtiger answered describe with HTTP 499 and no error envelope"),
        (500, b"", SourceUnavailable, "Vtiger answered HTTP 500 to describe; try again later"),
        (
            201,
            b'{"success": true, "result": {}}',
            SourceDataError,
            "Vtiger answered describe with HTTP 201 and no error code",
        ),
    ],
)
def test_each_http_status_has_its_error(
    fake: FakeVtiger, make_source: MakeSource, status: int, body: bytes, error: type[SourceError], problem: str
) -> None:
    fake.inject("describe", body, status=status)
    with pytest.raises(error, match=f"^{re.escape(problem)}$"):
        fetch(make_source("rest"))


def test_a_rest_error_answered_with_http_400_is_the_query_error_it_names(
    fake: FakeVtiger, make_source: MakeSource
) -> None:
    fake.inject("query", error_body("QUERY_SYNTAX_ERROR"), status=400)
    with pytest.raises(SourceQueryError, match=r"^Vtiger refused the query on Calendar \(QUERY_SYNTAX_ERROR\)$"):
        fetch(make_source("rest"))


def test_unknown_operation_is_an_empty_500_on_the_fake(fake: FakeVtiger) -> None:
    answer = requests.get(f"{fake.url}/webservice.php", params={"operation": "frobnicate"}, timeout=5)
    assert (answer.status_code, answer.content) == (500, b"")


@pytest.mark.parametrize(
    ("operation", "body", "error", "text"),
    [
        ("getchallenge", b"<html>Under maintenance</html>", SourceDataError, "not JSON"),
        ("getchallenge", {"result": {}}, SourceDataError, "envelope"),
        ("getchallenge", {"success": False}, SourceDataError, "no error code"),
        ("getchallenge", {"success": True, "result": {}}, SourceDataError, "no token"),
        ("getchallenge", {"success": True, "result": {"token": ""}}, SourceDataError, "no token"),
        ("getchallenge", {"success": True, "result": {"token": 7}}, SourceDataError, "no token"),
        ("getchallenge", [{"success": True}], SourceDataError, r"^Vtiger answered getchallenge \(HTTP 200\) without"),
        ("getchallenge", {"result": {}}, SourceDataError, r"^Vtiger answered getchallenge \(HTTP 200\) without"),
        ("login", error_body("ACCESSKEY_UNDEFINED"), SourceAuthError, "ACCESSKEY_UNDEFINED"),
        ("login", error_body("INVALID_AUTH_TOKEN"), SourceAuthError, "INVALID_AUTH_TOKEN"),
        ("login", {"success": True, "result": {"userId": "19x1"}}, SourceDataError, "no session"),
        ("login", {"success": True, "result": {"sessionName": ""}}, SourceDataError, "no session"),
        ("login", {"success": True, "result": {"sessionName": 7}}, SourceDataError, "no session"),
        ("login", error_body("INVALID_SESSIONID"), SourceAuthError, r"refused the session for user 'scorebot' \("),
        (
            "query",
            error_body("QUERY_SYNTAX_ERROR", "Parsing failed"),
            SourceQueryError,
            r"refused the query on Calendar \(QUERY_SYNTAX_ERROR\)$",  # the failure kind, not Vtiger's own text
        ),
        ("query", error_body("ACCESS_DENIED", "denied"), SourceQueryError, "ACCESS_DENIED"),
        ("query", error_body("INVALID_ID_ATTRIBUTE"), SourceQueryError, "INVALID_ID_ATTRIBUTE"),
        ("query", error_body("RECORD_NOT_FOUND"), SourceQueryError, "RECORD_NOT_FOUND"),
        ("query", error_body("MANDATORY_FIELDS_MISSING"), SourceQueryError, "MANDATORY_FIELDS_MISSING"),
        ("query", error_body("INTERNAL_SERVER_ERROR"), SourceUnavailable, "failed internally"),
        ("query", {"success": True, "result": [{"count": "many"}]}, SourceDataError, "not a count"),
        ("query", {"success": True, "result": {"count": "1"}}, SourceDataError, "list of rows"),
        ("query", {"success": True, "result": [{"count": "1"}, "row"]}, SourceDataError, "other than a list of rows"),
        ("query", {"success": True, "result": [{"count": "-1"}]}, SourceDataError, r"'-1'\}\], not a count"),
        ("query", {"success": True, "result": [{"count": "1"}, {"count": "1"}]}, SourceDataError, "not a count"),
        ("query", {"success": True, "result": []}, SourceDataError, "not a count"),
        ("query", {"success": True, "result": [{"count": "1"}] * 101}, SourceDataError, "101 rows .* more than 100"),
        ("describe", {"success": True, "result": {"name": "Calendar"}}, SourceDataError, "no field list"),
        (
            "describe",
            error_body("RECORD_NOT_FOUND"),
            SourceQueryError,
            r"^Vtiger refused the describe on Calendar \(RECORD_NOT_FOUND\)$",  # not "has no module": not ACCESS_DENIED
        ),
    ],
)
def test_each_failure_has_its_type(
    fake: FakeVtiger, make_source: MakeSource, operation: str, body: object, error: type[SourceError], text: str
) -> None:
    fake.inject(operation, body)
    with pytest.raises(error, match=text):
        fetch(make_source(), tasks(plan="count"))  # its first query is count(*)


@pytest.mark.parametrize("api", ["webservice", "rest"])
def test_records_with_a_null_category_count_as_none_when_no_blank_row_is_read(
    fake: FakeVtiger, make_source: MakeSource, api: str
) -> None:
    fake.add("Calendar", 3, taskpriority="High", taskstatus="Not Started")
    fake.add("Calendar", 2, taskpriority=None, taskstatus="Not Started")  # NULL: no != matches it
    result = fetch(make_source(api), tasks(plan="count"))
    assert result.counts == {"High": 3, NO_CATEGORY: 2}
    assert result.details["rows"] == 5
    assert result.plan == "count(*) per category + 1 page of other values"


def test_counts_per_value_above_the_total_do_not_add_up(fake: FakeVtiger, make_source: MakeSource) -> None:
    seed_tasks(fake, high=3)
    fake.inject("query", {"success": True, "result": [{"count": "2"}]})  # the total, read before a record was added
    with pytest.raises(SourceDataError, match=r"^Vtiger's counts for Calendar do not add up \(3 by taskpriority > 2 "):
        fetch(make_source(), tasks(plan="count"))


def test_more_records_outside_the_picklist_than_left_do_not_add_up(fake: FakeVtiger, make_source: MakeSource) -> None:
    seed_tasks(fake, high=3, empty=2)
    fake.inject("query", {"success": True, "result": [{"count": "4"}]})  # one record fewer than there are
    with pytest.raises(SourceDataError, match=r"do not add up \(2 outside the picklist > 1 left\)"):
        fetch(make_source(), tasks(plan="count"))


def test_a_page_without_the_category_column_is_a_data_error(fake: FakeVtiger, make_source: MakeSource) -> None:
    fake.inject("query", {"success": True, "result": [{"id": "9x1"}]})
    with pytest.raises(SourceDataError, match="lack the 'taskpriority' column"):
        fetch(make_source(), tasks(plan="page"))


# --- throttling ---------------------------------------------------------------------------------


def test_429_then_success_within_the_deadline(fake: FakeVtiger, make_source: MakeSource) -> None:
    seed_tasks(fake, high=1)
    fake.throttle, fake.retry_after = 1, "1"
    started = time.monotonic()
    result = fetch(make_source("rest"))
    assert result.counts == {"High": 1}
    assert time.monotonic() - started >= 0.95
    assert result.calls == 3  # describe twice (429, then 200), one query (one short page)
    assert fake.count("describe") == 2


def test_a_429_wait_is_logged_for_the_operator(
    fake: FakeVtiger, make_source: MakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    seed_tasks(fake, high=1)
    fake.throttle, fake.retry_after = 1, "1"
    with caplog.at_level(logging.INFO, logger="bot.sources.vtiger_api"):
        assert fetch(make_source("rest")).counts == {"High": 1}
    assert "Vtiger throttled a request (HTTP 429); retrying in 1.0 s" in caplog.messages


def test_429_without_retry_after_backs_off_half_a_second_then_doubling(
    fake: FakeVtiger, make_source: MakeSource
) -> None:
    fake.throttle = 100  # waits of 0.5 s and 1 s fit in 2 s; the next, 2 s, would not
    problem = "Vtiger is throttling requests (HTTP 429); gave up after 3 tries within the 2 s budget"
    with pytest.raises(SourceUnavailable, match=f"^{re.escape(problem)}$"):
        fetch(make_source("rest"), seconds=2)
    assert fake.count() == 3


def test_429_asking_for_more_than_the_deadline_fails_at_once(fake: FakeVtiger, make_source: MakeSource) -> None:
    fake.throttle, fake.retry_after = 100, "30"
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match=r"throttling requests \(HTTP 429, asked to wait 30 s\)"):
        fetch(make_source("rest"), seconds=3)
    assert time.monotonic() - started < 1
    assert fake.count() == 1


def test_429_retries_are_bounded(fake: FakeVtiger, make_source: MakeSource) -> None:
    fake.throttle = 100  # no Retry-After: back off 0.5 s, 1 s, ...
    with pytest.raises(SourceUnavailable, match="gave up after 2 tries"):
        fetch(make_source("rest", throttle_retries=1), seconds=5)
    assert fake.count() == 2


def test_flood_control_headers_pace_the_calls(fake: FakeVtiger, make_source: MakeSource) -> None:
    seed_tasks(fake, high=1)
    fake.flood = (0, int(time.time()) + 2)
    started = time.monotonic()
    assert fetch(make_source("rest")).counts == {"High": 1}
    assert time.monotonic() - started >= 0.9


def test_flood_control_beyond_the_deadline_fails_without_waiting(fake: FakeVtiger, make_source: MakeSource) -> None:
    fake.flood = (0, time.time() + 60)
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match="request quota allows the next call in"):
        fetch(make_source("rest"), seconds=2)
    assert time.monotonic() - started < 1


def test_requests_per_minute_spaces_the_calls(fake: FakeVtiger, make_source: MakeSource) -> None:
    source = make_source("rest", requests_per_minute=300)  # one call per 0.2 s
    started = time.monotonic()
    fetch(source)  # describe + count
    fetch(source)  # count
    assert time.monotonic() - started >= 0.38


def test_requests_per_minute_beyond_the_deadline_names_the_wait(fake: FakeVtiger, make_source: MakeSource) -> None:
    source = make_source("rest", requests_per_minute=2)  # one call per 30 s: the count waits for describe's slot
    problem = "Vtiger's request quota allows the next call in 30 s, beyond the 5 s budget"
    with pytest.raises(SourceUnavailable, match=f"^{re.escape(problem)}$"):
        fetch(source, seconds=5)
    assert fake.count() == 1


def test_without_requests_per_minute_calls_go_back_to_back(fake: FakeVtiger, make_source: MakeSource) -> None:
    seed_tasks(fake, high=1)
    source = make_source("rest")
    fetch(source)
    for _ in range(3):  # each a call that would not fit in its budget after a pause of a second
        assert fetch(source, seconds=0.9).counts == {"High": 1}


@pytest.mark.parametrize("flood", [(1, 60.0), (0, -10.0)], ids=["one call left", "reset passed"])
def test_flood_control_waits_only_when_the_quota_is_used_up(
    fake: FakeVtiger, make_source: MakeSource, flood: tuple[int, float]
) -> None:
    seed_tasks(fake, high=1)
    fake.flood = (flood[0], time.time() + flood[1])
    source = make_source("rest")
    for _ in range(3):
        assert fetch(source, seconds=0.9).counts == {"High": 1}


@pytest.mark.parametrize(
    ("reset", "wait"),
    [(7200.0, 3600), (1e9, 3600)],
    ids=["an hour at most", "up to 1e9 the reset is in seconds, not a time"],
)
def test_flood_control_waits_an_hour_at_most(
    fake: FakeVtiger, make_source: MakeSource, reset: float, wait: int
) -> None:
    fake.flood = (0, reset + time.time() if reset < 1e9 else reset)
    problem = f"Vtiger's request quota allows the next call in {wait} s, beyond the 2 s budget"
    with pytest.raises(SourceUnavailable, match=f"^{re.escape(problem)}$"):
        fetch(make_source("rest"), seconds=2)


def test_flood_control_reset_just_above_1e9_is_a_time_long_past(fake: FakeVtiger, make_source: MakeSource) -> None:
    seed_tasks(fake, high=1)
    fake.flood = (0, 1e9 + 1)  # 2001-09-09: no wait
    assert fetch(make_source("rest"), seconds=2).counts == {"High": 1}


# --- secrets ------------------------------------------------------------------------------------


def test_no_secret_reaches_logs_or_messages(
    fake: FakeVtiger, make_source: MakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seed_tasks(fake, high=1)
    source = make_source()
    fetch(source)
    fake.expire_sessions()
    fetch(source)
    messages = []
    for failing in (make_source(access_key="wrong-key-123456"), make_source("rest", access_key="wrong-key-123456")):
        with pytest.raises(SourceAuthError, match=r"^Vtiger refused the access key for user 'scorebot'") as caught:
            fetch(failing)
        messages.append(str(caught.value))
    sessions = {s.session for s in fake.seen if s.session}
    assert len(sessions) == 2
    assert "sessionName=[redacted]" in caplog.text  # urllib3's request lines were captured, then redacted
    secrets = {fake.access_key, "wrong-key-123456", *sessions}
    for text in (caplog.text, *messages):
        for secret in secrets:
            assert secret not in text


def test_a_session_is_hidden_until_enough_newer_sessions_are_issued(fake: FakeVtiger, make_source: MakeSource) -> None:
    """Sessions come and go in a long-running process: each is hidden like a secret, but only the latest
    `MAX_ISSUED` issued values are kept, so the list of hidden values stays bounded."""
    fetch(make_source())
    (session,) = {s.session for s in fake.seen if s.session}
    assert scrub(f"session {session}") == "session ***"
    for number in range(MAX_ISSUED):  # sessions issued since, by this source or another
        register(f"a-later-session-{number:04d}", issued=True)
    assert scrub(f"session {session}") == f"session {session}"


def test_md5_login_key_is_what_the_fake_checks(fake: FakeVtiger) -> None:
    token = requests.get(
        f"{fake.url}/webservice.php", params={"operation": "getchallenge", "username": "scorebot"}, timeout=5
    ).json()["result"]["token"]
    as_get = requests.get(
        f"{fake.url}/webservice.php", params={"operation": "login", "username": "scorebot", "accessKey": "x"}, timeout=5
    ).json()
    assert as_get["error"]["code"] == "INVALID_AUTH_TOKEN"
    key = hashlib.md5((token + fake.access_key).encode(), usedforsecurity=False).hexdigest()
    login = requests.post(
        f"{fake.url}/webservice.php", data={"operation": "login", "username": "scorebot", "accessKey": key}, timeout=5
    ).json()
    session = login["result"]["sessionName"]
    as_post = requests.post(
        f"{fake.url}/webservice.php",
        data={"operation": "query", "sessionName": session, "query": "SELECT count(*) FROM Calendar;"},
        timeout=5,
    ).json()
    assert as_post["error"]["code"] == "ACCESS_DENIED"


# --- the fake's VTQL, as the reference describes it ------------------------------------------


def fake_query(fake: FakeVtiger, vtql: str) -> dict[str, object]:
    token = requests.get(
        f"{fake.url}/webservice.php", params={"operation": "getchallenge", "username": fake.username}, timeout=5
    ).json()["result"]["token"]
    key = hashlib.md5((token + fake.access_key).encode(), usedforsecurity=False).hexdigest()
    session = requests.post(
        f"{fake.url}/webservice.php",
        data={"operation": "login", "username": fake.username, "accessKey": key},
        timeout=5,
    ).json()["result"]["sessionName"]
    answer: dict[str, object] = requests.get(
        f"{fake.url}/webservice.php", params={"operation": "query", "sessionName": session, "query": vtql}, timeout=5
    ).json()
    return answer


@pytest.mark.parametrize(
    ("vtql", "code"),
    [
        ("SELECT * FROM Calendar WHERE (taskpriority = 'High');", "QUERY_SYNTAX_ERROR"),
        ("SELECT * FROM Calendar WHERE NOT taskpriority = 'High';", "QUERY_SYNTAX_ERROR"),
        ("SELECT * FROM Calendar WHERE taskpriority NOT IN ('High');", "QUERY_SYNTAX_ERROR"),
        ("SELECT * FROM Calendar WHERE taskpriority IS NULL;", "QUERY_SYNTAX_ERROR"),
        ("SELECT * FROM Calendar WHERE taskpriority <> 'High';", "QUERY_SYNTAX_ERROR"),
        ("SELECT * FROM Calendar", "QUERY_SYNTAX_ERROR"),
        ("SELECT * FROM Calendar WHERE taskpriority = '';", "INTERNAL_SERVER_ERROR"),
        ("SELECT * FROM Tasks;", "ACCESS_DENIED"),
        ("SELECT priority FROM Calendar;", "ACCESS_DENIED"),
    ],
)
def test_fake_rejects_what_vtiger_rejects(fake: FakeVtiger, vtql: str, code: str) -> None:
    answer = fake_query(fake, vtql)
    assert answer["success"] is False
    assert answer["error"]["code"] == code


def test_fake_chains_not_equal_and_never_matches_null(fake: FakeVtiger) -> None:
    seed_tasks(fake, high=1, low=1, empty=1, done=1)
    fake.add("Calendar", 1, taskpriority="Urgent", taskstatus="Not Started")
    fake.add("Calendar", 1, taskpriority=None, taskstatus="Not Started")
    vtql = (
        "SELECT taskpriority FROM Calendar WHERE taskstatus != 'Completed' AND taskpriority != 'high' "
        "AND taskpriority != 'Low' ORDER BY id;"
    )
    assert [r["taskpriority"] for r in fake_query(fake, vtql)["result"]] == ["", "Urgent"]
    assert fake_query(fake, "SELECT count(*) FROM Calendar WHERE taskpriority != 'x';")["result"] == [{"count": "5"}]
    assert fake_query(fake, "SELECT count(*) FROM Calendar;")["result"] == [{"count": "6"}]


def test_fake_compares_like_the_database_case_and_trailing_spaces_do_not_count(fake: FakeVtiger) -> None:
    for value in ["High", "high", "HIGH ", " High", "Highest", "", None]:
        fake.add("Calendar", 1, taskpriority=value, taskstatus="Not Started")

    def count(condition: str) -> object:
        return fake_query(fake, f"SELECT count(*) FROM Calendar WHERE {condition};")["result"]  # noqa: S608

    assert count("taskpriority = 'High'") == [{"count": "3"}]  # High, high, "HIGH "; not " High"
    assert count("taskpriority = 'high  '") == [{"count": "3"}]
    assert count("taskpriority IN ('HIGH', 'x')") == [{"count": "3"}]
    assert count("taskpriority != 'High'") == [{"count": "3"}]  # " High", Highest, ""; NULL never
    assert count("taskpriority LIKE 'high'") == [{"count": "2"}]  # LIKE does not pad: "HIGH " is not 'high'
    assert count("taskpriority LIKE 'high%'") == [{"count": "4"}]
    assert count("taskpriority = 'Hígh'") == [{"count": "3"}]  # accents do not count either
    assert count("taskpriority LIKE 'hÍgh%'") == [{"count": "4"}]


def test_fake_binds_and_tighter_than_or(fake: FakeVtiger) -> None:
    fake.add("Calendar", 1, taskpriority="Low", taskstatus="Completed")
    fake.add("Calendar", 2, taskpriority="High", taskstatus="Completed")
    fake.add("Calendar", 4, taskpriority="High", taskstatus="Not Started")
    where = "taskpriority = 'Low' OR taskpriority = 'High' AND taskstatus = 'Completed'"
    assert fake_query(fake, f"SELECT count(*) FROM Calendar WHERE {where};")["result"] == [{"count": "3"}]  # noqa: S608
    where = "taskstatus = 'Completed' AND taskpriority = 'Low' OR taskpriority = 'High'"
    assert fake_query(fake, f"SELECT count(*) FROM Calendar WHERE {where};")["result"] == [{"count": "7"}]  # noqa: S608


def test_fake_clamps_to_100_rows_and_counts_as_a_string(fake: FakeVtiger) -> None:
    fake.add("Calendar", 119, taskpriority="High")
    assert len(fake_query(fake, "SELECT * FROM Calendar;")["result"]) == 100
    assert len(fake_query(fake, "SELECT id FROM Calendar LIMIT 100,500;")["result"]) == 19
    assert len(fake_query(fake, "SELECT id FROM Calendar LIMIT 500;")["result"]) == 100
    assert fake_query(fake, "SELECT count(*) FROM Calendar;")["result"] == [{"count": "119"}]


def test_fake_challenge_tokens_expire_after_five_minutes() -> None:
    now = [1000.0]
    fake = FakeVtiger(clock=lambda: now[0])
    try:
        endpoint = f"{fake.url}/webservice.php"

        def login_after(seconds: float) -> dict[str, object]:
            params = {"operation": "getchallenge", "username": fake.username}
            token = requests.get(endpoint, params=params, timeout=5).json()["result"]["token"]
            now[0] += seconds
            key = hashlib.md5((token + fake.access_key).encode(), usedforsecurity=False).hexdigest()
            data = {"operation": "login", "username": fake.username, "accessKey": key}
            answer: dict[str, object] = requests.post(endpoint, data=data, timeout=5).json()
            return answer

        assert login_after(299)["success"] is True
        assert login_after(301)["error"] == {
            "code": "INVALID_AUTH_TOKEN",
            "message": "Specified token is invalid or expired",
        }
    finally:
        fake.close()


def test_a_kpi_that_outgrew_its_pages_is_paged_only_while_that_pays(fake: FakeVtiger, make_source: MakeSource) -> None:
    seed_tasks(fake, high=30)
    source = make_source()
    fetch(source)
    fake.inject("query", b"", status=500)
    with pytest.raises(SourceError, match=r"^Vtiger answered HTTP 500 to query"):
        fetch(source)
    seed_tasks(fake, high=4000)
    after = fetch(source)  # one page expected: 4 pages (what counting costs), count(*), then 3 values, not 41 pages
    assert [q.split(" FROM")[0] for q in fake.queries()[-after.details["queries"] :]] == [
        *["SELECT taskpriority"] * 4,
        *["SELECT count(*)"] * 4,
    ]
    assert after.counts == {"High": 4030}


@APIS
@pytest.mark.parametrize(
    ("rows", "queries", "plan", "later"),
    [(0, 1, "page", 1), (99, 1, "page", 1), (100, 2, "page", 2), (350, 4, "page", 4), (500, 4 + 1 + 2, "page", 4)],
)
def test_a_kpi_read_for_the_first_time_pages_while_that_costs_no_more_than_counting(
    fake: FakeVtiger, make_source: MakeSource, api: str, rows: int, queries: int, plan: str, later: int
) -> None:
    seed_tasks(fake, high=rows - rows // 3, low=rows // 3)
    source = make_source(api)

    result = fetch(source)

    assert result.counts == {k: v for k, v in {"High": rows - rows // 3, "Low": rows // 3}.items() if v}
    assert (result.plan.split(" +")[0], fake.count("query")) == (
        {"page": "page records", "count": "count(*) per category"}[plan],
        queries,  # up to 4 pages (as many calls as count(*) and 3 values); 500: + count(*) + the 2 pages left
    )
    assert fake.queries()[: min(queries, 4)] == keyset("SELECT taskpriority FROM Calendar", [], ids_of(fake))[:4]
    again = fetch(source)  # the row count is known now: 500 rows are counted (4 calls against 6 pages)
    assert again.counts == result.counts
    assert fake.count("query") - queries == later


@pytest.mark.parametrize(
    ("top", "since", "rows", "plan", "queries"),
    [
        (3, True, 450, "page records", 5),  # count(*), 3 values, the top and the new items' queries: 6 > 5 pages
        (1, False, 350, "page records", 4),  # count(*), 3 values and the top query: 5 > 4 pages
        (1, False, 450, "page records", 5),  # 5 against 5 pages: a tie pages
        (1, False, 550, "count(*) per category", 5),  # 5 against 6 pages: count(*), 3 values, the top query
        (3, True, 550, "page records", 6),  # 6 against 6 pages
    ],
)
def test_auto_counts_what_a_cards_extra_queries_cost_against_the_pages(
    fake: FakeVtiger, make_source: MakeSource, top: int, since: bool, rows: int, plan: str, queries: int
) -> None:
    fake.add("Calendar", rows, taskpriority="Low")
    source = make_source()
    source.seed_rows(tasks(), "taskpriority", rows)  # as the last read found it
    wanted = Wanted(top=top, weights={"Low": 1}, since=datetime(2020, 1, 1, tzinfo=UTC) if since else None)

    result = source.fetch(tasks(), "taskpriority", Deadline.after(5), wanted)

    assert (result.plan, result.counts, fake.count("query")) == (plan, {"Low": rows}, queries)


@pytest.mark.parametrize(("since", "created_since"), [(datetime(2020, 1, 1, tzinfo=UTC), 0), (None, None)])
def test_a_kpi_that_emptied_counts_no_new_items_only_when_asked(
    fake: FakeVtiger, make_source: MakeSource, since: datetime | None, created_since: int | None
) -> None:
    source = make_source()
    source.seed_rows(tasks(), "taskpriority", 150)  # it had more than a page; now there is nothing

    result = source.fetch(tasks(), "taskpriority", Deadline.after(5), Wanted(since=since))

    assert (result.counts, result.created_since, fake.count("query")) == ({}, created_since, 1)


@pytest.mark.parametrize(("top", "listed"), [(2, ["High", "High"]), (0, [])])
def test_the_count_plan_lists_the_heaviest_items_only_when_the_card_asks(
    fake: FakeVtiger, make_source: MakeSource, top: int, listed: list[str]
) -> None:
    seed_tasks(fake, high=150, low=150)
    wanted = Wanted(top=top, weights={"High": 5, "Low": 1})

    result = make_source().fetch(tasks(plan="count"), "taskpriority", Deadline.after(5), wanted)

    assert result.counts == {"High": 150, "Low": 150}
    assert [item.category for item in result.items] == listed
    assert fake.count("query") == 4 + (top > 0)  # count(*), 3 values, and the top items' query when asked


def test_the_count_plan_lists_no_items_of_a_weighted_empty_category(fake: FakeVtiger, make_source: MakeSource) -> None:
    seed_tasks(fake, high=150, empty=150)  # VTQL cannot select the empty ones by their category
    wanted = Wanted(top=2, weights={NO_CATEGORY: 10, "High": 5})

    result = make_source().fetch(tasks(plan="count"), "taskpriority", Deadline.after(5), wanted)

    assert result.counts == {"High": 150, NO_CATEGORY: 150}
    assert [item.category for item in result.items] == ["High", "High"]


@pytest.mark.parametrize(
    ("weights", "high", "low", "asked"),
    [
        # one High item, fewer than top: still the unweighted Low ones are never asked for
        ({"High": 5}, 1, 50, "taskpriority IN ('High') ORDER BY createdtime LIMIT 3;"),
        ({"High": 5, "Low": 5}, 150, 150, "taskpriority IN ('High','Low') ORDER BY createdtime LIMIT 3;"),  # one weight
        # High holds exactly top: no other weight joins
        ({"High": 5, "Low": 1}, 3, 10, "taskpriority IN ('High') ORDER BY createdtime LIMIT 3;"),
        # High holds fewer than top: Low joins, and both are read (4 rows) to rank them here
        ({"High": 5, "Low": 1}, 2, 2, "taskpriority IN ('High','Low') ORDER BY createdtime LIMIT 4;"),
    ],
)
def test_the_top_items_query_asks_for_the_heaviest_weighted_categories(
    fake: FakeVtiger, make_source: MakeSource, weights: dict[str, float], high: int, low: int, asked: str
) -> None:
    seed_tasks(fake, high=high, low=low)

    make_source().fetch(tasks(plan="count"), "taskpriority", Deadline.after(5), Wanted(top=3, weights=weights))

    assert fake.queries()[-1].endswith(f" WHERE {asked}")


# --- the count plan's top items at their boundaries -------------------------------------------------


def top_items(source: VtigerSource, top: int = 3) -> FetchResult:
    wanted = Wanted(top=top, weights={"High": 10, "Low": 5}, oldest=True)
    return source.fetch(tasks(plan="count"), "taskpriority", Deadline.after(5), wanted)


def test_heavier_tiers_of_exactly_100_items_are_all_listed_with_the_next(
    fake: FakeVtiger, make_source: MakeSource
) -> None:
    fake.add("Calendar", 2, taskpriority="High", createdtime="2026-11-02 10:00:00")
    fake.add("Calendar", 98, taskpriority="Low", createdtime="2026-11-01 10:00:00")

    result = top_items(make_source())  # 2 High < top 3: Low joins; 100 items in all, one query can list them

    assert [item.category for item in result.items] == ["High", "High", "Low"]
    assert fake.queries()[-1].endswith("taskpriority IN ('High','Low') ORDER BY createdtime LIMIT 100;")


def test_over_100_items_only_the_heavier_tiers_are_listed_and_asked_for(
    fake: FakeVtiger, make_source: MakeSource
) -> None:
    fake.add("Calendar", 1, taskpriority="High", createdtime="2026-11-02 10:00:00")
    fake.add("Calendar", 1, taskpriority="Medium", createdtime="2026-11-03 10:00:00")
    fake.add("Calendar", 150, taskpriority="Low", createdtime="2026-11-01 10:00:00")
    wanted = Wanted(top=3, weights={"High": 10, "Medium": 7, "Low": 5}, oldest=True)

    result = make_source().fetch(tasks(plan="count"), "taskpriority", Deadline.after(5), wanted)

    # High and Medium hold 2 < top 3, Low would make 152 > 100: the two heavier tiers' 2 items, all of them
    assert [item.category for item in result.items] == ["High", "Medium"]
    assert fake.queries()[-1].endswith("taskpriority IN ('High','Medium') ORDER BY createdtime LIMIT 2;")
    assert result.oldest_among == ("High", "Medium")


def test_the_oldest_among_every_category_is_named_as_the_oldest_of_all(
    fake: FakeVtiger, make_source: MakeSource
) -> None:
    fake.add("Calendar", 120, taskpriority="High", createdtime="2026-11-02 10:00:00")

    result = top_items(make_source())  # every category with items is among those listed

    assert result.oldest_among == ()
    assert result.oldest is not None


def test_an_item_whose_creation_time_is_not_a_time_is_a_data_error_quoting_40_characters(
    fake: FakeVtiger, make_source: MakeSource
) -> None:
    fake.add("Calendar", 1, taskpriority="High", createdtime="not a time " * 5)
    wanted = Wanted(oldest=True)
    with pytest.raises(
        SourceDataError,
        match=r"^Vtiger's Calendar\.createdtime holds 'not a time not a time not a time not a t', not a date and time$",
    ):
        make_source().fetch(tasks(plan="page"), "taskpriority", Deadline.after(5), wanted)
