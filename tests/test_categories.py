"""Categories as the CRM counts them: letter case and surrounding spaces never make a new category.

Vtiger's ``=`` folds case and trailing spaces, so ``plan: count`` counts ``high``
and ``HIGH `` as ``High``; ``plan: page`` (and ``auto``, whichever it picks)
must give the same counts. The file and http sources fold onto the KPI's
weights keys the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from bot.config import load_config
from bot.services import build_services
from bot.sources.base import NO_CATEGORY, CategoryCounts, Deadline, FetchResult, fold_onto
from bot.sources.file import FileQuery, FileSettings, FileSource
from bot.sources.http import HttpQuery, HttpSettings, HttpSource
from bot.sources.vtiger import VtigerQuery, VtigerSettings, VtigerSource
from bot.store import SCORE
from tests.fakes.vtiger import FakeVtiger
from tests.test_http_source import JsonServer

PLANS = ("count", "page", "auto")
APIS = pytest.mark.parametrize("api", ["webservice", "rest"])
OPEN = "taskstatus != 'Completed'"


# --- the one normalising function -----------------------------------------------------------------


def test_known_categories_take_every_spelling_that_differs_only_in_case_or_surrounding_space() -> None:
    counts = CategoryCounts(["High", "Low "])
    for value in ["high", " HIGH ", "High", "low", "LOW", "\tLow\n"]:
        counts.add(value)
    assert counts.counts == {"High": 3, "Low": 3}


def test_other_values_keep_their_first_trimmed_spelling_and_empty_is_none() -> None:
    counts = CategoryCounts(["High"])
    for value in [" Highest", "HIGHEST ", "highest", "", "  ", None, "Hïghest"]:
        counts.add(value)
    counts.add("Blocker", 4)
    assert counts.counts == {"Highest": 4, NO_CATEGORY: 3, "Blocker": 4}


def test_accents_do_not_make_a_new_category_as_in_vtigers_database() -> None:
    counts = CategoryCounts(["Élevé", "High"])
    for value in ["eleve", "ÉLEVÉ", "Hígh", "Elevee"]:
        counts.add(value)
    assert counts.counts == {"Élevé": 2, "High": 1, "Elevee": 1}


# --- file and http: the KPI's weights keys are the category list ----------------------------------


def test_fold_onto_gives_each_category_the_spelling_of_its_weights_key() -> None:
    counts = {"high": 3, "Highest": 2, NO_CATEGORY: 1, "LOW": 4}
    assert fold_onto(counts, ["High", "Low", "Medium"]) == {"High": 3, "Highest": 2, NO_CATEGORY: 1, "Low": 4}


def report_counts(tmp_path: Path, source: dict[str, object], count: dict[str, object]) -> dict[str, int]:
    """The counts a team's report holds for one KPI weighted {High: 5, Low: 1} (the path /score and posts take)."""
    kpi = {"id": "open", "name": "Open", "source": "data", "count": count, "category": "priority"}
    kpi |= {"weights": {"High": 5, "Low": 1}, "target": 10, "warning": 20}
    data = {"chat": {"verify": False}, "store": "sqlite:///store.db", "sources": {"data": source}}
    data["teams"] = [{"id": "alpha", "name": "Alpha", "kpis": [kpi]}]
    (tmp_path / "scorebot.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    config = load_config(tmp_path / "scorebot.yaml", env={})
    services = build_services(config, store_url=f"sqlite:///{tmp_path / 'store.db'}")
    [kpi_report] = services.report(services.config.teams[0], SCORE).kpis
    assert kpi_report.fetch is not None and kpi_report.score is not None
    assert kpi_report.score.index == 5 * kpi_report.fetch.counts.get("High", 0) + kpi_report.fetch.counts.get("Low", 0)
    return kpi_report.fetch.counts


def test_file_merges_spellings_and_names_them_as_the_weights_keys(tmp_path: Path) -> None:
    rows = ["high", "High", " HIGH ", "Highest", "HIGHEST", "", "low"]
    (tmp_path / "issues.csv").write_text("status,priority\n" + "".join(f"Open,{v}\n" for v in rows), encoding="utf-8")
    source = FileSource("issues", FileSettings(type="file", path="issues.csv"), tmp_path)
    query = FileQuery(where={"status": "Open"})
    assert source.fetch(query, "priority", Deadline.after(5)).counts == {
        "high": 3,  # the first spelling seen
        "Highest": 2,
        NO_CATEGORY: 1,
        "low": 1,
    }
    counts = report_counts(tmp_path, {"type": "file", "path": "issues.csv"}, {"where": {"status": "Open"}})
    assert counts == {"High": 3, "Highest": 2, NO_CATEGORY: 1, "Low": 1}


@pytest.fixture
def server() -> Iterator[JsonServer]:
    running = JsonServer()
    yield running
    running.close()


def test_http_merges_the_keys_of_a_counts_object(tmp_path: Path, server: JsonServer) -> None:
    server.body = {"counts": {"high": 2, "HIGH ": 1, "Highest": 1, "highest": 3, "low": 0, " ": 2}}
    counts = report_counts(tmp_path, {"type": "http", "url": server.url}, {"path": "counts"})
    assert counts == {"High": 3, "Highest": 4, "Low": 0, NO_CATEGORY: 2}


def test_http_merges_record_values(tmp_path: Path, server: JsonServer) -> None:
    server.body = [{"priority": v} for v in ["HIGH", "High ", "Highest", "highest", None, "low"]]
    source = HttpSource("metrics", HttpSettings(type="http", url=server.url), Path())
    try:
        assert source.fetch(HttpQuery(path="@"), "priority", Deadline.after(5)).counts == {
            "HIGH": 2,
            "Highest": 2,
            NO_CATEGORY: 1,
            "low": 1,
        }
    finally:
        source.close()
    counts = report_counts(tmp_path, {"type": "http", "url": server.url}, {"path": "@"})
    assert counts == {"High": 2, "Highest": 2, NO_CATEGORY: 1, "Low": 1}


# --- vtiger: the three plans agree, on both APIs -------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeVtiger]:
    server = FakeVtiger()
    yield server
    server.close()


@pytest.fixture
def make_source(fake: FakeVtiger) -> Iterator[Callable[[str], VtigerSource]]:
    made: list[VtigerSource] = []

    def make(api: str) -> VtigerSource:
        block = {"type": "vtiger", "api": api, "url": fake.url, "username": fake.username}
        source = VtigerSource("crm", VtigerSettings.model_validate({**block, "access_key": fake.access_key}), Path())
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


def by_plan(source: VtigerSource, plan: str) -> FetchResult:
    query = VtigerQuery.model_validate({"module": "Calendar", "filter": OPEN, "plan": plan})
    return source.fetch(query, "taskpriority", Deadline.after(10))


MUST_SHOW = ["High", "high", "HIGH ", "Highest", ""]  # Highest is not on the picklist (High, Medium, Low)


@APIS
@pytest.mark.parametrize("each", [1, 30, 100])
def test_the_three_plans_count_high_high_and_high_with_a_space_as_high(
    fake: FakeVtiger, make_source: Callable[[str], VtigerSource], api: str, each: int
) -> None:
    for value in MUST_SHOW:
        fake.add("Calendar", each, taskpriority=value, taskstatus="Not Started")
    fake.add("Calendar", 7, taskpriority="high", taskstatus="Completed")  # filtered out
    counts = {plan: by_plan(make_source(api), plan).counts for plan in PLANS}
    assert counts["count"] == counts["page"] == counts["auto"] == {"High": 3 * each, "Highest": each, NO_CATEGORY: each}


@APIS
def test_auto_switches_plans_as_the_kpi_grows_and_its_counts_stay_those_of_the_other_plans(
    fake: FakeVtiger, make_source: Callable[[str], VtigerSource], api: str
) -> None:
    auto, forced = make_source(api), make_source(api)
    plans = []
    for each in (1, 30, 100, 100):  # 5, then 155, 655 and 1155 records
        for value in MUST_SHOW:
            fake.add("Calendar", each, taskpriority=value, taskstatus="In Progress")
        read = by_plan(auto, "auto")
        plans.append(read.plan)
        assert read.counts == by_plan(forced, "count").counts == by_plan(forced, "page").counts
    assert read.counts == {"High": 3 * 231, "Highest": 231, NO_CATEGORY: 231}
    assert plans == [
        "page records",  # nothing known: count(*) = 5, then one page is cheaper than three counts
        "page records",  # 5 rows last time: paged at once, 155 rows in 2 pages
        "page records",  # 155 last time: 4 full pages (what counting costs), count(*) = 655: 3 pages left, a tie
        "count(*) per category + 5 pages of other values",  # 655 last time: count(*) and 3 values < 7 pages
    ]


@APIS
def test_the_rest_of_the_count_plan_is_folded_like_the_pages(
    fake: FakeVtiger, make_source: Callable[[str], VtigerSource], api: str
) -> None:
    """Values Vtiger's = does not fold (a leading space) and off-list spellings reach the count plan's rest."""
    values = ["URGENT", " high", "Urgent ", "High", "urgent", " Low", None, "", "Medium"]
    for value in values * 60:  # 540 records: auto counts per value (3 < 6 pages)
        fake.add("Calendar", 1, taskpriority=value, taskstatus="Not Started")
    expected = {"URGENT": 180, "High": 120, "Low": 60, NO_CATEGORY: 120, "Medium": 60}
    sources = {plan: make_source(api) for plan in PLANS}
    by_plan(sources["auto"], "auto")  # the first read pages (4 full pages, count(*), 2 pages left); the next counts
    reads = {plan: by_plan(source, plan) for plan, source in sources.items()}
    assert {plan: read.counts for plan, read in reads.items()} == dict.fromkeys(PLANS, expected)
    assert reads["auto"].plan.startswith("count(*) per category + ")
    renamed = {"Urgent": 180, "High": 120, "Low": 60, NO_CATEGORY: 120, "Medium": 60}  # a weights key's spelling
    assert fold_onto(reads["count"].counts, ["High", "Urgent"]) == renamed


@APIS
def test_a_picklist_listing_one_value_in_two_spellings_is_counted_once(
    fake: FakeVtiger, make_source: Callable[[str], VtigerSource], api: str
) -> None:
    fake.picklists["Calendar"]["taskpriority"] = ["High", "HIGH", "Low"]  # Vtiger's = cannot tell them apart
    for value in MUST_SHOW:
        fake.add("Calendar", 2, taskpriority=value, taskstatus="Not Started")
    counts = {plan: by_plan(make_source(api), plan).counts for plan in PLANS}
    assert counts == {plan: {"High": 6, "Highest": 2, NO_CATEGORY: 2} for plan in PLANS}


@APIS
def test_accented_spellings_count_as_the_picklist_value_in_every_plan(
    fake: FakeVtiger, make_source: Callable[[str], VtigerSource], api: str
) -> None:
    for value in ["Hígh", "HÍGH ", " hígh", "Lów", "Highést", "HIGHEST"]:
        fake.add("Calendar", 40, taskpriority=value, taskstatus="Not Started")  # 240 records
    counts = {plan: by_plan(make_source(api), plan).counts for plan in PLANS}
    assert counts == {plan: {"High": 120, "Low": 40, "Highést": 80} for plan in PLANS}
