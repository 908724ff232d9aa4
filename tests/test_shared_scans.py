"""Shared scans: KPIs of a common filter, or of filters that differ only in one field's = / IN value ("team =
X"), read by one scan, with exactly the counts, items and dates that reading them one by one gives.

The Vtiger stand-in on 127.0.0.1 counts every query; the store is a real SQLite file.
"""

from __future__ import annotations

import argparse
import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from bot.__main__ import cmd_check
from bot.config import TeamConfig, load_config
from bot.context import Services
from bot.errors import SourceDataError
from bot.reports import TeamReport
from bot.schedule.tick import Scheduler
from bot.services import build_services
from bot.sources.base import NO_CATEGORY, Deadline, Wanted
from bot.sources.vtiger import VtigerQuery, VtigerSettings, VtigerSource
from tests.fakes.vtiger import FakeVtiger
from tests.test_card_history import Statements
from tests.test_fetcher import wait_for

OPEN = "ticketstatus != 'Closed'"
FILTERS = {
    "alpha": f"{OPEN} AND assigned_user_id = '20x1'",
    "beta": f"{OPEN} AND assigned_user_id = '20x2'",
    "gamma": f"assigned_user_id IN ('20x3', '20x4') AND {OPEN}",  # the same conditions, in another order
}
WEIGHTS = {"Urgent": 10, "High": 5, "Normal": 1}
PRIORITIES = ["High", "high", "HIGH ", "Hígh", "Urgent", "Normal", "Low", "", None, "Legacy", "legacy "]
SEVERITIES = ["Minor", "Major", "Critical", "Feature", "", "Cosmetic"]


def seed(fake: FakeVtiger) -> dict[str, int]:
    """Open tickets of three teams (four groups), with closed ones and another group's besides; the open rows
    of each team. Priorities hold case and accent variants, empty and NULL values and values off the picklist."""
    sizes = {"20x1": 45, "20x2": 70, "20x3": 40, "20x4": 30, "20x9": 50}
    created = itertools.count()
    for group, size in sizes.items():
        for n in range(size):
            spelling = group.upper() if n % 7 == 0 else group  # '20X2' is the same group to Vtiger's =
            minute = next(created)
            fake.add(
                "HelpDesk",
                1,
                assigned_user_id=spelling,
                ticketstatus="Closed" if n % 5 == 4 else "Open",
                ticketpriorities=PRIORITIES[(n * 3) % len(PRIORITIES)],
                ticketseverities=SEVERITIES[n % len(SEVERITIES)],
                ticket_title=f"ticket {group} {n}",
                createdtime=(datetime(2026, 10, 1) + timedelta(minutes=minute * 37)).strftime("%Y-%m-%d %H:%M:%S"),
            )
    return {
        "alpha": sizes["20x1"] - sizes["20x1"] // 5,
        "beta": sizes["20x2"] - sizes["20x2"] // 5,
        "gamma": sizes["20x3"] - sizes["20x3"] // 5 + sizes["20x4"] - sizes["20x4"] // 5,
    }


@pytest.fixture
def fake() -> Iterator[FakeVtiger]:
    server = FakeVtiger()
    yield server
    server.close()


def make_source(fake: FakeVtiger) -> VtigerSource:
    settings = VtigerSettings.model_validate(
        {"type": "vtiger", "url": fake.url, "username": fake.username, "access_key": fake.access_key}
    )
    return VtigerSource("crm", settings, Path())


def query(team: str) -> VtigerQuery:
    return VtigerQuery.model_validate({"module": "HelpDesk", "filter": FILTERS[team]})


READS = [
    (query("alpha"), "ticketpriorities"),
    (query("alpha"), "ticketseverities"),
    (query("beta"), "ticketpriorities"),
    (query("gamma"), "ticketpriorities"),
    (query("gamma"), "ticketseverities"),
]
WANTED = Wanted(top=3, weights=WEIGHTS, since=datetime(2026, 10, 2, 12, tzinfo=UTC), oldest=True)


def test_a_grouped_scan_gives_exactly_the_team_by_team_results_in_fewer_calls(fake: FakeVtiger) -> None:
    rows = seed(fake)
    assert sum(rows.values()) > 100
    alone_source, shared_source = make_source(fake), make_source(fake)
    for q, category in READS:  # both know each read's row count, as a process learns it from the store
        for source in (alone_source, shared_source):
            source.seed_rows(q, category, rows[next(t for t in FILTERS if FILTERS[t] == q.filter)])
    before = fake.count("query")
    alone = [alone_source.fetch(q, category, Deadline.after(5), WANTED) for q, category in READS]
    alone_calls = fake.count("query") - before

    [plan] = shared_source.plan_scans(READS)
    before = fake.count("query")
    finishers = shared_source.scan(plan, READS, Deadline.after(5))
    shared_calls = fake.count("query") - before

    assert plan.members == (0, 1, 2, 3, 4)
    assert (shared_calls, plan.calls) == (sum(rows.values()) // 100 + 1,) * 2
    assert (alone_calls, plan.alone) == (5, 5)
    [scan_query] = fake.queries()[-shared_calls:][:1]
    assert "assigned_user_id IN ('20x1','20x2','20x3','20x4')" in scan_query
    for at, expected in enumerate(alone):
        got = finishers[at](WANTED)
        assert got.counts == expected.counts, READS[at]
        assert (got.items, got.oldest, got.created_since, got.rows) == (
            expected.items,
            expected.oldest,
            expected.created_since,
            expected.rows,
        )
        assert got.plan == "shared scan of 5 KPIs: 2 pages"
    # and they are right: alpha's priorities counted by hand from how seed() makes them
    spelled = {"high": "High", "hígh": "High", "legacy": "Legacy", "": "(none)"}
    by_hand: dict[str, int] = {}
    for n in range(45):
        if n % 5 != 4:
            value = (PRIORITIES[(n * 3) % len(PRIORITIES)] or "").strip()
            name = spelled.get(value.lower(), value)
            by_hand[name] = by_hand.get(name, 0) + 1
    assert alone[0].counts == by_hand
    assert {"High", "Legacy", "(none)"} <= set(by_hand)
    alone_source.close()
    shared_source.close()


def test_reads_are_grouped_only_when_that_takes_fewer_calls(fake: FakeVtiger) -> None:
    source = make_source(fake)
    one_each = [(query("alpha"), "ticketpriorities"), (query("beta"), "ticketpriorities")]
    for q, category in one_each:
        source.seed_rows(q, category, 60)
    assert source.plan_scans(one_each) == []  # 120 rows: 2 pages, as many as two reads of one page

    empty = make_source(fake)
    for q, category in one_each:
        empty.seed_rows(q, category, 0)
    # two empty teams: one call (one short page) for both, against one each
    assert [(p.calls, p.alone) for p in empty.plan_scans(one_each)] == [(1, 2)]
    fresh = make_source(fake)  # a read with no known row count is read alone, to learn it
    assert fresh.plan_scans(one_each) == []
    empty.close()
    source.close()
    fresh.close()


def test_big_groups_are_split_into_scans_of_at_most_three_pages(fake: FakeVtiger) -> None:
    source = make_source(fake)
    reads = []
    for n in range(30):
        q = VtigerQuery.model_validate({"module": "HelpDesk", "filter": f"{OPEN} AND assigned_user_id = '20x{n}'"})
        source.seed_rows(q, "ticketpriorities", 40)
        reads.append((q, "ticketpriorities"))

    plans = source.plan_scans(reads)

    # 7 reads (280 rows) in 3 pages, four times, then the last 2 (80 rows) in 1: 13 calls for 30 reads, and 5
    # scans that run side by side, each taking at most 3 calls' time
    assert [len(p.members) for p in plans] == [7, 7, 7, 7, 2]
    assert [(p.calls, p.alone) for p in plans] == [(3, 7)] * 4 + [(1, 2)]
    assert sorted(at for p in plans for at in p.members) == list(range(30))


def test_reads_a_scan_would_not_make_cheaper_are_read_alone(fake: FakeVtiger) -> None:
    source = make_source(fake)
    reads = []
    for n in range(4):
        q = VtigerQuery.model_validate({"module": "HelpDesk", "filter": f"{OPEN} AND assigned_user_id = '20x{n}'"})
        source.seed_rows(q, "ticketpriorities", 90)
        reads.append((q, "ticketpriorities"))

    assert source.plan_scans(reads) == []  # 3 of them: 270 rows, 3 pages, as many as 3 reads of one page


def write_config(tmp_path: Path, fake: FakeVtiger, **source: object) -> Path:
    def kpi(kpi_id: str, team: str, category: str) -> dict[str, object]:
        return {
            "id": kpi_id,
            "name": kpi_id,
            "source": "crm",
            "count": {"module": "HelpDesk", "filter": FILTERS[team]},
            "category": category,
            "weights": WEIGHTS,
            "top": 3,
            "target": 100,
            "warning": 200,
        }

    teams = [
        {
            "id": team,
            "name": team,
            "schedule": "* 9 * * *",
            "deliver": [{"type": "log"}],
            "kpis": [kpi("priority", team, "ticketpriorities"), kpi("severity", team, "ticketseverities")],
        }
        for team in FILTERS
    ]
    config = {
        "chat": {"audience": "42"},
        "timezone": "UTC",
        "sources": {
            "crm": {
                "type": "vtiger",
                "url": fake.url,
                "username": fake.username,
                "access_key": fake.access_key,
                **source,
            }
        },
        "teams": teams,
    }
    path = tmp_path / "scorebot.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def test_the_tick_reads_teams_together_from_the_first_tick_of_a_fresh_process(tmp_path: Path, fake: FakeVtiger) -> None:
    seed(fake)
    config = load_config(write_config(tmp_path, fake))
    store = f"sqlite:///{tmp_path / 'store.db'}"
    times = iter(datetime(2026, 11, 9, 9, minute, 5, tzinfo=UTC) for minute in range(10))
    now = next(times)

    def clock() -> datetime:
        return now

    def tick(services_: object) -> tuple[list[str], dict[str, dict[str, int]]]:
        before = len(fake.queries())
        result = Scheduler(services_).tick(now)  # type: ignore[arg-type]
        assert [o.state for o in result.outcomes] == ["delivered"] * 3
        counts = {
            f"{r.team_id}/{r.kpi_id}": r.counts
            for team in FILTERS
            for r in services_.store.latest_readings(team).values()  # type: ignore[attr-defined]
        }
        return fake.queries()[before:], counts

    first = build_services(config, clock=clock, store_url=store)
    alone, counts_alone = tick(first)  # nothing known yet: every KPI is read by itself
    now = next(times)
    warm, counts_warm = tick(first)
    now = next(times)
    fresh = build_services(config, clock=clock, store_url=store)  # another process: only the store is shared
    cold, counts_cold = tick(fresh)

    assert len(alone) == 3  # nothing known: a team's two KPIs share a probe, its first page, all there is
    assert len(warm) == 2  # 3 teams, 6 KPIs, 205 open rows: one scan of 2 pages
    assert cold == warm
    assert counts_warm == counts_alone == counts_cold
    readings = first.store.recent_readings("beta", limit=2)
    assert {r.plan for r in readings} == {"shared scan of 6 KPIs: 2 pages"}
    assert {r.rows for r in readings} == {56}


def alpha_alone(tmp_path: Path, fake: FakeVtiger) -> tuple[Services, TeamConfig]:
    """The three teams' services at 09:00 on November 9, on a new store, and team alpha."""
    seed(fake)
    config = load_config(write_config(tmp_path, fake))
    store = f"sqlite:///{tmp_path / 'store.db'}"
    services = build_services(config, clock=lambda: datetime(2026, 11, 9, 9, 0, tzinfo=UTC), store_url=store)
    alpha = config.team("alpha")
    assert alpha is not None
    return services, alpha


def test_a_teams_kpis_of_one_filter_share_a_scan_and_a_failed_scan_leaves_each_to_read_alone(
    tmp_path: Path, fake: FakeVtiger
) -> None:
    services, alpha = alpha_alone(tmp_path, fake)
    services.report(alpha, "score")  # learns the row counts: two reads
    before = len(fake.queries())

    report = services.report(alpha, "score")

    [scan] = fake.queries()[before:]  # both KPIs, one page
    assert "SELECT id,ticketpriorities,ticketseverities,createdtime FROM HelpDesk WHERE" in scan
    assert [k.fetch.plan for k in report.kpis if k.fetch] == ["shared scan of 2 KPIs: 1 page"] * 2

    del fake.picklists["HelpDesk"]["ticketseverities"]  # the field is gone from the CRM: the scan cannot run
    store = f"sqlite:///{tmp_path / 'store.db'}"
    other = build_services(services.config, clock=lambda: datetime(2026, 11, 9, 9, 1, tzinfo=UTC), store_url=store)
    before = len(fake.queries())

    report = other.report(alpha, "score")

    priority, severity = report.kpis
    assert priority.stale_reason is None and priority.fetch is not None
    assert priority.fetch.counts == services.store.latest_readings("alpha")["priority"].counts
    assert severity.stale_reason is not None and "has no field 'ticketseverities'" in severity.stale_reason
    assert len(fake.queries()) - before == 1  # priority read alone, in one page


@pytest.mark.parametrize(("limit", "over"), [(100, True), (120, False)])
def test_check_prints_each_kpis_plan_the_ticks_calls_and_the_busiest_day_against_the_limit(
    tmp_path: Path, fake: FakeVtiger, capsys: pytest.CaptureFixture[str], limit: int, over: bool
) -> None:
    seed(fake)
    config = load_config(write_config(tmp_path, fake, daily_call_limit=limit))
    services = build_services(
        config, clock=lambda: datetime(2026, 11, 9, 8, 0, tzinfo=UTC), store_url=f"sqlite:///{tmp_path / 's.db'}"
    )

    assert cmd_check(argparse.Namespace(again=False), services) == 0  # over the limit is a warning, not a failure

    out = capsys.readouterr().out
    assert out.count("plan: page records;") == 6  # each KPI read by itself, as check always reads
    assert "calls source crm: a tick of every scheduled team: 2 (read one by one: 6)" in out
    assert "shared scan: 6 KPIs (alpha/priority, alpha/severity, beta/priority, ...): 2 calls, 6 alone" in out
    # 60 slots a day ("* 9 * * *" in UTC) of 2 calls
    day = f"busiest of the next 7 days 2026-11-15: 120 calls (average 120); daily_call_limit {limit}"
    assert (f"WARN source crm: {day}: over the limit" in out) is over
    assert (f"     {day} (sign-in and describe not counted)" in out) is not over


def test_kpis_of_one_filter_read_for_the_first_time_share_their_pages_while_paging_pays(fake: FakeVtiger) -> None:
    seed(fake)
    fake.add("HelpDesk", 120, assigned_user_id="20x7", ticketstatus="Open", ticketpriorities="High")
    source = make_source(fake)
    small = [(query("alpha"), "ticketpriorities"), (query("alpha"), "ticketseverities")]
    big_query = VtigerQuery.model_validate({"module": "HelpDesk", "filter": f"{OPEN} AND assigned_user_id = '20x7'"})
    big = [(big_query, "ticketpriorities"), (big_query, "ticketseverities")]

    [probe] = source.plan_scans(small)
    assert (probe.members, probe.calls, probe.alone) == ((0, 1), 1, 2)
    before = fake.count("query")
    finishers = source.scan(probe, small, Deadline.after(5))
    assert fake.count("query") - before == 1
    assert finishers[0](WANTED).counts == make_source(fake).fetch(*small[0], Deadline.after(5), WANTED).counts

    [probe] = source.plan_scans(big)
    before = fake.count("query")
    finishers = source.scan(probe, big, Deadline.after(5))  # the first page is full: the next one ends it
    assert fake.count("query") - before == 2
    assert [finish(WANTED).counts for finish in finishers.values()] == [{"High": 120}, {NO_CATEGORY: 120}]
    # 120 rows known: from now on one scan of 2 pages, against 2 pages for each KPI
    assert [(p.calls, p.alone) for p in source.plan_scans(big)] == [(2, 4)]

    # 1500 rows: paging stops where it has cost what counting both would (2 x (count(*), 4 values, 2 extras))
    fake.add("HelpDesk", 1500, assigned_user_id="20x8", ticketstatus="Open", ticketpriorities="Low")
    huge_query = VtigerQuery.model_validate({"module": "HelpDesk", "filter": f"{OPEN} AND assigned_user_id = '20x8'"})
    huge = [(huge_query, "ticketpriorities"), (huge_query, "ticketseverities")]
    [probe] = source.plan_scans(huge)
    before = fake.count("query")
    with pytest.raises(SourceDataError, match=r"^the records of HelpDesk filled 14 pages$"):
        source.scan(probe, huge, Deadline.after(5))
    assert fake.count("query") - before == 14
    result = source.fetch(*huge[0], Deadline.after(5), WANTED)  # known now to be larger: counted at once
    assert result.counts == {"Low": 1500}
    assert fake.queries()[before + 14].startswith("SELECT count(*) FROM HelpDesk")


def described(fake: FakeVtiger) -> VtigerSource:
    """A source that has described HelpDesk (it knows the picklists, so it prices the count plan), as a
    process has after its first read."""
    source = make_source(fake)
    closed = VtigerQuery.model_validate({"module": "HelpDesk", "filter": "ticketstatus = 'Closed'"})
    source.fetch(closed, "ticketpriorities", Deadline.after(5))
    return source


def team_reads(source: VtigerSource, rows: list[int | tuple[int, str]]) -> list[tuple[VtigerQuery, str]]:
    """One read of ticket priorities per team (user 20xN), with its last row count; a (rows, category) entry
    is another KPI of the previous entry's team."""
    reads = []
    team = -1
    for entry in rows:
        count, category = entry if isinstance(entry, tuple) else (entry, "ticketpriorities")
        team += not isinstance(entry, tuple)
        q = VtigerQuery.model_validate({"module": "HelpDesk", "filter": f"{OPEN} AND assigned_user_id = '20x{team}'"})
        source.seed_rows(q, category, count)
        reads.append((q, category))
    return reads


# Alone, a read costs the cheaper of its pages and counting (count(*), 4 values and the card's 2 extras: 7
# calls): under 100 rows 1 call, 100-199 rows 2, 200-299 rows 3. A scan holds at most 299 rows (3 pages; 300
# rows would take a 4th page to prove the 3rd was the last).
@pytest.mark.parametrize(
    ("rows", "plans"),
    [
        ([40, 40], [((0, 1), 1, 2)]),  # two teams
        ([100, 100, 99], [((0, 1, 2), 3, 5)]),  # 299 rows: one scan
        ([100, 100, 100], [((0, 1), 3, 4)]),  # 300 rows: the third is read alone
        ([299, 0], [((0, 1), 3, 4)]),
        ([400, 40, 40], [((1, 2), 1, 2)]),  # too big for any scan: read alone, the others still shared
        ([200, 200, 99], [((1, 2), 3, 4)]),
        ([200, 200, 100], []),  # 200 + 100 rows: a 4th page; each read alone
        ([90, 90, 90, 40, 40], [((3, 4), 1, 2)]),  # 270 rows cost 3 calls either way; the next scan is worth it
        ([250, 200], []),  # one read is no scan, though its 3 pages cost less than its count plan's 4 calls
        ([250, 40], [((0, 1), 3, 4)]),
        ([40, (250, "ticketseverities"), 40], [((0, 1, 2), 3, 5)]),  # a team's largest row count counts
    ],
)
def test_scans_are_cut_at_299_rows_and_planned_only_where_they_save_calls(
    fake: FakeVtiger, rows: list[int | tuple[int, str]], plans: list[tuple[tuple[int, ...], int, int]]
) -> None:
    source = described(fake)
    reads = team_reads(source, rows)

    assert [(p.members, p.calls, p.alone) for p in source.plan_scans(reads)] == plans
    source.close()


def test_or_filters_and_count_plans_are_read_alone_and_unknown_reads_are_priced_as_one_page(
    fake: FakeVtiger,
) -> None:
    source = described(fake)
    either = VtigerQuery.model_validate(
        {"module": "HelpDesk", "filter": "assigned_user_id = '20x1' OR assigned_user_id = '20x2'"}
    )
    counted = VtigerQuery.model_validate({"module": "HelpDesk", "filter": FILTERS["alpha"], "plan": "count"})
    reads = [(q, category) for q in (either, counted) for category in ("ticketpriorities", "ticketseverities")]
    for q, category in reads:
        source.seed_rows(q, category, 30)

    assert source.plan_scans(reads) == []  # a scan ANDs its filter's conditions; OR would be lost
    # a read never made yet: at least its first page
    assert source.calls_alone(query("beta"), "ticketpriorities") == 1
    source.close()


def test_a_picklist_with_a_value_vtql_cannot_write_is_priced_as_pages(fake: FakeVtiger) -> None:
    fake.picklists["HelpDesk"]["ticketpriorities"].append("Back\\slash")  # no count(*) can name it
    source = described(fake)
    reads = team_reads(source, [100, 100, 99])

    assert [(p.members, p.calls, p.alone) for p in source.plan_scans(reads)] == [((0, 1, 2), 3, 5)]
    source.close()


def test_the_tick_claims_four_teams_a_thread_and_shares_scans_within_each_batch(
    tmp_path: Path, fake: FakeVtiger
) -> None:
    seed(fake)
    groups = ["20x1", "20x2", "20x3", "20x4", "20x9"]  # open rows: 36, 56, 32, 24, 40
    path = write_config(tmp_path, fake)
    data = yaml.safe_load(path.read_text())
    [kpi, _] = data["teams"][0]["kpis"]
    data["teams"] = [
        {
            "id": f"team{n}",
            "name": f"team{n}",
            "schedule": "* 9 * * *",
            "deliver": [{"type": "log"}],
            "kpis": [kpi | {"count": {"module": "HelpDesk", "filter": f"{OPEN} AND assigned_user_id = '{group}'"}}],
        }
        for n, group in enumerate(groups)
    ]
    data["schedule"] = {"concurrency": 1}  # one thread: batches of 4 teams
    path.write_text(yaml.safe_dump(data))
    now = datetime(2026, 11, 9, 9, 0, 5, tzinfo=UTC)
    services = build_services(load_config(path), clock=lambda: now, store_url=f"sqlite:///{tmp_path / 'store.db'}")
    scheduler = Scheduler(services)
    scheduler.tick(now)  # learns each KPI's row count
    now += timedelta(minutes=1)
    before = len(fake.queries())

    result = scheduler.tick(now)

    assert [o.state for o in result.outcomes] == ["delivered"] * 5
    plans = [services.store.latest_readings(f"team{n}")["priority"].plan for n in range(5)]
    # the first 4 teams (148 rows) in one scan of 2 pages; the 5th, claimed after them, reads alone
    assert plans == ["shared scan of 4 KPIs: 2 pages"] * 4 + ["page records"]
    assert len(fake.queries()) - before == 3


def test_a_large_read_alone_is_priced_as_its_count_plan_with_the_cards_two_queries(fake: FakeVtiger) -> None:
    source = described(fake)
    [(q, category)] = team_reads(source, [1000])

    # what `check` adds up for a tick: count(*), 4 values, the top items and the new items; not 11 pages
    assert source.calls_alone(q, category) == 7
    source.close()


def test_a_filter_that_could_join_two_scans_joins_the_larger(fake: FakeVtiger) -> None:
    source = described(fake)
    filters = [
        "ticketstatus = 'Closed' AND assigned_user_id = '20x1'",
        "ticketstatus = 'Open' AND assigned_user_id = '20x1'",  # shares user 20x1 with the first, status with the rest
        "ticketstatus = 'Open' AND assigned_user_id = '20x2'",
        "ticketstatus = 'Open' AND assigned_user_id = '20x3'",
    ]
    reads = [(VtigerQuery.model_validate({"module": "HelpDesk", "filter": f}), "ticketpriorities") for f in filters]
    for q, category in reads:
        source.seed_rows(q, category, 30)

    # open tickets of three users in one scan; the closed ones of 20x1 read alone
    assert [(p.members, p.calls, p.alone) for p in source.plan_scans(reads)] == [((1, 2, 3), 1, 3)]
    source.close()


def test_a_shared_scan_names_each_category_by_its_picklist_spelling(fake: FakeVtiger) -> None:
    for group in ("20x0", "20x1"):
        for priority in ("high", "HIGH ", "High", "normal"):  # the first row read spells it in lower case
            fake.add(
                "HelpDesk",
                1,
                assigned_user_id=group,
                ticketstatus="Open",
                ticketpriorities=priority,
                ticket_title="t",
                createdtime="2026-10-01 10:00:00",
            )
    source = described(fake)
    reads = team_reads(source, [4, 4])

    [plan] = source.plan_scans(reads)
    finishers = source.scan(plan, reads, Deadline.after(5))

    assert [finishers[at](Wanted()).counts for at in plan.members] == [{"High": 3, "Normal": 1}] * 2
    source.close()


def test_a_read_never_made_or_read_alone_does_not_stop_the_others_being_planned(fake: FakeVtiger) -> None:
    source = described(fake)
    unknown = VtigerQuery.model_validate({"module": "HelpDesk", "filter": f"{OPEN} AND assigned_user_id = '20x5'"})
    teams = [(unknown, "ticketpriorities"), *team_reads(source, [0, 40, 40])[1:]]  # 20x1 and 20x2: 40 rows each
    assert [(p.members, p.calls, p.alone) for p in source.plan_scans(teams)] == [((1, 2), 1, 2)]

    closed = VtigerQuery.model_validate({"module": "HelpDesk", "filter": "ticketstatus = 'Closed'"})
    source.seed_rows(closed, "ticketseverities", 40)
    one_team = [(closed, "ticketseverities"), *team_reads(source, [40, (40, "ticketseverities")])]
    assert [(p.members, p.calls, p.alone) for p in source.plan_scans(one_team)] == [((1, 2), 1, 2)]
    source.close()


def test_a_store_that_cannot_give_the_row_counts_leaves_each_team_to_read_alone(
    tmp_path: Path, fake: FakeVtiger, caplog: pytest.LogCaptureFixture
) -> None:
    seed(fake)
    config = load_config(write_config(tmp_path, fake))
    now = datetime(2026, 11, 9, 9, 0, 5, tzinfo=UTC)
    services = build_services(config, clock=lambda: now, store_url=f"sqlite:///{tmp_path / 'store.db'}")
    with services.store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE kpi_latest")  # the index of the latest readings: no row count can be read

    result = Scheduler(services).tick(now)

    assert [o.state for o in result.outcomes] == ["delivered"] * 3
    assert len(fake.queries()) == 3  # nothing known: a team's two KPIs share a probe, its first page
    assert "team alpha: store unavailable (OperationalError); no row counts" in caplog.text
    assert "shared scans not started" not in caplog.text, "a store that fails is no fault of the scans"


def checked_teams(
    tmp_path: Path, fake: FakeVtiger, schedule: str, kpis: int = 2, **source: object
) -> tuple[Scheduler, list[datetime]]:
    """The three teams with their first ``kpis`` KPIs, posting on ``schedule`` and checked every 15 minutes, after
    their first tick at 09:00:05 (row counts known from then on); the scheduler and its clock's moments."""
    seed(fake)
    path = write_config(tmp_path, fake, **source)
    data = yaml.safe_load(path.read_text())
    for team in data["teams"]:
        team["alerts"] = {"check_every": "15m"}
        team["schedule"] = schedule
        team["kpis"] = team["kpis"][:kpis]
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    moments = [datetime(2026, 11, 9, 9, 0, 5, tzinfo=UTC)]
    services = build_services(load_config(path), clock=lambda: moments[-1], store_url=f"sqlite:///{tmp_path / 's.db'}")
    scheduler = Scheduler(services)
    scheduler.tick(moments[-1])
    return scheduler, moments


def test_an_alert_check_in_the_minute_of_a_post_takes_its_readings_and_reads_nothing_more(
    tmp_path: Path, fake: FakeVtiger, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler, moments = checked_teams(tmp_path, fake, "* 9 * * *")
    moments.append(datetime(2026, 11, 9, 9, 15, 5, tzinfo=UTC))
    before = len(fake.queries())

    result = scheduler.tick(moments[-1])

    assert [o.state for o in result.outcomes].count("delivered") == 3  # 09:15 (09:01 to 09:14 superseded)
    assert [o.state for o in result.alerts] == ["checked"] * 3
    assert len(fake.queries()) - before == 2  # the posts' scan of 2 pages; the checks show what it read
    store = scheduler.services.store
    assert {r.origin for team in FILTERS for r in store.recent_readings(team, limit=2)} == {"post"}
    assert "shared scans not started" not in caplog.text
    store.engine.dispose()


def test_an_alert_check_between_posts_reads_its_old_readings_again_in_one_shared_scan(
    tmp_path: Path, fake: FakeVtiger, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler, moments = checked_teams(tmp_path, fake, "0 9 * * *")
    moments.append(datetime(2026, 11, 9, 9, 15, 5, tzinfo=UTC))  # no post due; the readings are 15 minutes old
    before = len(fake.queries())

    result = scheduler.tick(moments[-1])

    assert result.outcomes == []
    assert [o.state for o in result.alerts] == ["checked"] * 3
    assert len(fake.queries()) - before == 2  # one scan of 2 pages for the 6 KPIs, not each team's own reads
    store = scheduler.services.store
    assert {store.recent_readings(team, limit=1)[0].origin for team in FILTERS} == {"check"}
    assert "shared scans not started" not in caplog.text
    store.engine.dispose()


def test_a_process_asks_the_store_for_the_row_counts_once_for_its_teams(tmp_path: Path, fake: FakeVtiger) -> None:
    """A team's first prefetch gives its sources the stored row counts; later ones ask the store nothing."""
    seed(fake)
    config = load_config(write_config(tmp_path, fake))
    store = f"sqlite:///{tmp_path / 'store.db'}"
    now = datetime(2026, 11, 9, 9, 0, 5, tzinfo=UTC)
    Scheduler(build_services(config, clock=lambda: now, store_url=store)).tick(now)  # readings with row counts
    services = build_services(config, clock=lambda: now, store_url=store)  # a fresh process
    statements = Statements(services.store)

    services.reporter.prefetch(config.teams[:2], cached=False)
    assert statements.count == 1, "the two teams' row counts, in one statement"
    services.reporter.prefetch(config.teams, cached=False)
    assert statements.count == 2, "the third team's"
    services.reporter.prefetch(config.teams, cached=False)
    assert statements.count == 2, "nothing more"
    services.store.engine.dispose()


def test_a_shared_scan_that_cannot_start_in_time_names_the_busy_service(tmp_path: Path, fake: FakeVtiger) -> None:
    """One read of the CRM at a time, held by another team's read: a team's scan is called off within the budget."""
    seed(fake)
    config = load_config(write_config(tmp_path, fake, max_concurrent=1))
    now = datetime(2026, 11, 9, 9, 0, tzinfo=UTC)
    services = build_services(config, clock=lambda: now, store_url=f"sqlite:///{tmp_path / 'store.db'}")
    alpha, beta = config.team("alpha"), config.team("beta")
    assert alpha is not None and beta is not None
    services.report(alpha, "score")  # learns the row counts: its next read is a scan
    fake.hold_queries()
    holder = threading.Thread(target=services.report, args=(beta, "refresh"))
    holder.start()
    try:
        wait_for(lambda: fake.holding == 1)
        services.reporter.budget_seconds = 0.3

        report = services.report(alpha, "score")
    finally:
        fake.release()
        holder.join(15)

    reason = "Vtiger is busy: the read did not start within 0.3 s"
    assert [k.stale_reason for k in report.kpis] == [reason] * 2
    services.store.engine.dispose()


def test_teams_whose_scans_failed_at_once_each_read_their_own_kpis_alone(tmp_path: Path, fake: FakeVtiger) -> None:
    """Two views, of two teams, read their priorities alone at the same time: neither is given the other's."""
    seed(fake)
    config = load_config(write_config(tmp_path, fake))
    store = f"sqlite:///{tmp_path / 'store.db'}"
    services = build_services(config, clock=lambda: datetime(2026, 11, 9, 9, 0, tzinfo=UTC), store_url=store)
    teams = [config.team("alpha"), config.team("beta")]
    own = {}
    for team in teams:
        assert team is not None
        own[team.id] = services.report(team, "score").kpis[0].fetch.counts  # type: ignore[union-attr]
    assert own["alpha"] != own["beta"]
    del fake.picklists["HelpDesk"]["ticketseverities"]  # the field is gone from the CRM: the scans cannot run
    store = f"sqlite:///{tmp_path / 'store.db'}"
    other = build_services(services.config, clock=lambda: datetime(2026, 11, 9, 9, 1, tzinfo=UTC), store_url=store)
    reports: dict[str, object] = {}
    fake.hold_queries()
    views = [threading.Thread(target=lambda t=t: reports.update({t.id: other.report(t, "score")})) for t in teams]
    try:
        for held, view in enumerate(views, start=1):
            view.start()
            wait_for(lambda held=held: fake.holding == held, seconds=5)  # each team's priority, read alone
    finally:
        fake.release()
        for view in views:
            view.join(15)

    for team in teams:
        priority = reports[team.id].kpis[0]  # type: ignore[attr-defined]
        assert priority.stale_reason is None and priority.fetch.counts == own[team.id], team.id
        assert not priority.shared
    other.store.engine.dispose()
    services.store.engine.dispose()


def test_two_views_of_a_team_share_its_scan_and_only_the_one_that_started_it_stores_it(
    tmp_path: Path, fake: FakeVtiger
) -> None:
    """A second /score of the team while its scan runs joins that scan: one query for both, its KPIs marked
    shared, and the readings stored once, by the view that started the scan."""
    services, alpha = alpha_alone(tmp_path, fake)
    services.report(alpha, "score")  # learns the row counts: its next read is a scan
    before = len(fake.queries())
    flights = services.reporter.fetcher._flights  # the reads in flight, whatever their keys
    reports: dict[str, TeamReport] = {}
    views = {
        name: threading.Thread(target=lambda name=name: reports.update({name: services.report(alpha, "score")}))
        for name in ("first", "second")
    }
    fake.hold_queries()
    try:
        views["first"].start()
        wait_for(lambda: fake.holding == 1, seconds=5)
        views["second"].start()
        wait_for(lambda: any(flight.readers == 2 for flight in list(flights.values())), seconds=5)
    finally:
        fake.release()
        for view in views.values():
            view.join(15)

    assert len(fake.queries()) - before == 1, "one scan for both views"
    first, second = reports["first"], reports["second"]
    assert [(k.fetch and k.fetch.plan, k.shared) for k in first.kpis] == [("shared scan of 2 KPIs: 1 page", False)] * 2
    assert [(k.fetch and k.fetch.plan, k.shared) for k in second.kpis] == [("shared scan of 2 KPIs: 1 page", True)] * 2
    assert len(services.store.recent_readings("alpha")) == 4, "the first read's two and the scan's two"
    services.store.engine.dispose()


def test_a_fresh_processs_first_view_of_a_team_reads_with_the_scan_a_warm_one_makes(
    tmp_path: Path, fake: FakeVtiger
) -> None:
    """The row counts of the team's last readings, in the store, tell the new process that one scan answers its
    KPIs of two filters that differ in one "=" value; a process that knows no counts reads each filter alone."""
    seed(fake)
    path = write_config(tmp_path, fake)
    data = yaml.safe_load(path.read_text())
    data["teams"][0]["kpis"][1]["count"]["filter"] = FILTERS["beta"]  # alpha's severities: another group's
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    config = load_config(path)
    store = f"sqlite:///{tmp_path / 'store.db'}"
    alpha = config.team("alpha")
    assert alpha is not None
    first = build_services(config, clock=lambda: datetime(2026, 11, 9, 9, 0, tzinfo=UTC), store_url=store)
    first.report(alpha, "score")  # learns the row counts and stores them with its readings
    warm = first.report(alpha, "refresh")
    fresh = build_services(config, clock=lambda: datetime(2026, 11, 9, 9, 1, tzinfo=UTC), store_url=store)
    before = len(fake.queries())

    report = fresh.report(alpha, "score")

    assert len(fake.queries()) - before == 1
    assert [k.fetch and k.fetch.plan for k in report.kpis] == [k.fetch and k.fetch.plan for k in warm.kpis]
    assert [k.fetch and k.fetch.plan for k in report.kpis] == ["shared scan of 2 KPIs: 1 page"] * 2
    first.store.engine.dispose()
    fresh.store.engine.dispose()


def test_a_teams_kpis_of_two_filters_that_cannot_be_joined_are_read_by_two_scans(
    tmp_path: Path, fake: FakeVtiger
) -> None:
    """Open and closed tickets of one group: each filter's two KPIs share a scan, and each KPI gets its own counts."""
    seed(fake)
    path = write_config(tmp_path, fake)
    data = yaml.safe_load(path.read_text())
    alpha = data["teams"][0]
    closed = [dict(kpi, id=f"closed-{kpi['id']}") for kpi in alpha["kpis"]]
    for kpi in closed:
        kpi["count"] = {"module": "HelpDesk", "filter": "ticketstatus = 'Closed' AND assigned_user_id = '20x1'"}
    alpha["kpis"] += closed
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    config = load_config(path)
    team = config.team("alpha")
    assert team is not None
    services = build_services(
        config, clock=lambda: datetime(2026, 11, 9, 9, 0, tzinfo=UTC), store_url=f"sqlite:///{tmp_path / 'store.db'}"
    )
    alone = services.report(team, "score")  # learns the row counts: its next read is two scans
    before = len(fake.queries())

    report = services.report(team, "score")

    assert len(fake.queries()) - before == 2
    assert [k.fetch and k.fetch.plan for k in report.kpis] == ["shared scan of 2 KPIs: 1 page"] * 4
    assert [k.fetch and k.fetch.counts for k in report.kpis] == [k.fetch and k.fetch.counts for k in alone.kpis]
    services.store.engine.dispose()


def test_a_reading_exactly_as_old_as_the_cache_allows_is_read_again_by_the_check(
    tmp_path: Path, fake: FakeVtiger, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler, moments = checked_teams(tmp_path, fake, "0 9 * * *", cache_seconds=900)
    moments.append(datetime(2026, 11, 9, 9, 15, 5, tzinfo=UTC))  # the readings are exactly 900 s old: too old
    before = len(fake.queries())

    result = scheduler.tick(moments[-1])

    assert [o.state for o in result.alerts] == ["checked"] * 3
    assert len(fake.queries()) - before == 2  # one shared scan, not each team's own page
    assert "shared scans not started" not in caplog.text


def test_a_check_whose_store_cannot_say_when_its_kpis_were_read_reads_them_all_in_one_scan(
    tmp_path: Path, fake: FakeVtiger, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler, moments = checked_teams(tmp_path, fake, "0 9 * * *", kpis=1, cache_seconds=3600)
    with scheduler.services.store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE kpi_latest")  # no reading's time can be read
    moments.append(datetime(2026, 11, 9, 9, 15, 5, tzinfo=UTC))  # young readings, if the store could say so
    before = len(fake.queries())

    scheduler.tick(moments[-1])

    assert len(fake.queries()) - before == 2  # every KPI, in one shared scan
    assert "team alpha: store unavailable (OperationalError); no latest readings" in caplog.text
    assert "shared scans not started" not in caplog.text
    scheduler.services.store.engine.dispose()
