"""KPI kinds (count, closed, aged, value) in both directions on every source type: the file source, a JSON
endpoint and the Vtiger stand-in, all read through the services as `/score` reads them (real HTTP on 127.0.0.1,
a real SQLite store); a value that is not a number is a stale card with the reason, never 0."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.cards import plain_text, team_message
from bot.config import KpiConfig, load_config
from bot.errors import ConfigError
from bot.reports import KpiReport, TeamReport, score_reading, wanted_of
from bot.services import build_services
from bot.sources.base import Deadline, FetchResult, Wanted
from bot.store import SCORE
from scoring import Status
from tests.fakes.vtiger import FakeVtiger
from tests.test_http_source import JsonServer

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
CRM_ZONE = ZoneInfo("America/New_York")
WEIGHTS = {"High": 5, "Low": 1}
EXPECTED = {"count": 6.0, "closed": 5.0, "aged": 5.0, "value": 245.0}
"""Every source holds the same data: open High (40 days old) and Low (2 days); High closed 3 days ago and Low
closed 10 days ago; and a p95 of 245 ms."""


def ago(days: float, hours: float = 0) -> datetime:
    return NOW - timedelta(days=days, hours=hours)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def crm(moment: datetime) -> str:
    """A time as Vtiger keeps it: its server's zone, no offset."""
    return moment.astimezone(CRM_ZONE).strftime("%Y-%m-%d %H:%M:%S")


RECORDS = [
    {"status": "open", "priority": "High", "created": ago(40), "closed": None, "title": "old high"},
    {"status": "open", "priority": "Low", "created": ago(2), "closed": None, "title": "new low"},
    {"status": "closed", "priority": "High", "created": ago(20), "closed": ago(3), "title": "fixed high"},
    {"status": "closed", "priority": "Low", "created": ago(20), "closed": ago(10), "title": "fixed long ago"},
]


def write_files(folder: Path) -> None:
    rows = ["status,priority,created,closed_at,title"]
    rows += [
        f"{r['status']},{r['priority']},{iso(r['created'])},{iso(r['closed']) if r['closed'] else ''},{r['title']}"
        for r in RECORDS
    ]
    (folder / "issues.csv").write_text("\n".join(rows) + "\n")
    (folder / "latency.csv").write_text("service,p95\nsearch,250\nother,9\nsearch,245\n")


def http_body() -> dict:
    items = [
        {"state": r["status"], "priority": r["priority"], "created_at": iso(r["created"]), "closed_at": None}
        | ({"closed_at": iso(r["closed"])} if r["closed"] else {})
        for r in RECORDS
    ]
    return {"items": items, "search": {"p95_ms": 245, "text": "245", "nothing": None}}


def seed_vtiger(fake: FakeVtiger) -> None:
    for r in RECORDS:
        status = "Closed" if r["status"] == "closed" else "Open"
        closed = r["closed"] or r["created"]
        fake.add(
            "HelpDesk",
            1,
            ticketstatus=status,
            ticketpriorities=r["priority"],
            ticket_title=r["title"],
            createdtime=crm(r["created"]),
            modifiedtime=crm(closed),
        )
    # Either side of the 7-day window, in the CRM's zone: only the one inside counts (Urgent weighs 0 here).
    fake.add("HelpDesk", 1, ticketstatus="Closed", ticketpriorities="Urgent", modifiedtime=crm(ago(7, -2)))
    fake.add("HelpDesk", 1, ticketstatus="Closed", ticketpriorities="Urgent", modifiedtime=crm(ago(7, 2)))


QUERIES = {
    "file": {
        "count": {"where": {"status": "open"}, "created": "created", "title": "title"},
        "closed": {"where": {"status": "closed"}, "created": "created", "closed_at": "closed_at"},
        "aged": {"where": {"status": "open"}, "created": "created", "title": "title"},
        "value": {"where": {"service": "search"}, "value": "p95"},
    },
    "http": {
        "count": {"path": "items[?state=='open']", "created": "created_at"},
        "closed": {"path": "items[?state=='closed']", "closed_at": "closed_at"},
        "aged": {"path": "items[?state=='open']", "created": "created_at"},
        "value": {"path": "search.p95_ms"},
    },
    "vtiger": {
        "count": {"module": "HelpDesk", "filter": "ticketstatus != 'Closed'", "title": "ticket_title"},
        "closed": {"module": "HelpDesk", "filter": "ticketstatus = 'Closed'"},
        "aged": {"module": "HelpDesk", "filter": "ticketstatus != 'Closed'", "title": "ticket_title"},
    },
}
CATEGORY = {"file": "priority", "http": "priority", "vtiger": "ticketpriorities"}
COMBINATIONS = [(source, kind) for source, kinds in QUERIES.items() for kind in kinds]


def kpi_block(source: str, kind: str, lower_is_better: bool, **extra: object) -> dict:
    expected = EXPECTED[kind]
    # the same value is good one way and bad the other: target and warning on the far side of it
    levels = (
        {"target": expected + 1, "warning": expected + 2}
        if lower_is_better
        else {"target": expected + 2, "warning": expected + 1}
    )
    block: dict = {
        "id": "k",
        "name": f"{source} {kind}",
        "source": "metrics-file" if (source, kind) == ("file", "value") else source,
        "kind": kind,
        "count": QUERIES[source][kind],
        "lower_is_better": lower_is_better,
        **levels,
    }
    if kind == "value":
        block["unit"] = "ms"
    else:
        block |= {"category": CATEGORY[source], "weights": WEIGHTS}
    if kind in ("closed", "aged"):
        block["days"] = 7 if kind == "closed" else 30
    return block | extra


@pytest.fixture(scope="module")
def peers() -> Iterator[tuple[JsonServer, FakeVtiger]]:
    server, fake = JsonServer(), FakeVtiger()
    server.body = http_body()
    seed_vtiger(fake)
    yield server, fake
    server.close()
    fake.close()


def write_config(folder: Path, peers: tuple[JsonServer, FakeVtiger], teams: list[dict]) -> Path:
    server, fake = peers
    write_files(folder)
    data = {
        "chat": {"verify": False},
        "sources": {
            "file": {"type": "file", "path": "issues.csv"},
            "metrics-file": {"type": "file", "path": "latency.csv"},
            "http": {"type": "http", "url": server.url},
            "vtiger": {
                "type": "vtiger",
                "url": fake.url,
                "username": fake.username,
                "access_key": fake.access_key,
                "crm_timezone": CRM_ZONE.key,
            },
        },
        "teams": teams,
    }
    path = folder / "scorebot.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def services_for(folder: Path, peers: tuple[JsonServer, FakeVtiger], kpis: list[dict]):
    path = write_config(folder, peers, [{"id": "team", "name": "Team", "kpis": kpis}])
    config = load_config(path)
    return config, build_services(config, clock=lambda: NOW, store_url=f"sqlite:///{folder / 'store.db'}")


@pytest.mark.parametrize("lower_is_better", [True, False], ids=["lower-better", "higher-better"])
@pytest.mark.parametrize(("source", "kind"), COMBINATIONS, ids=[f"{s}-{k}" for s, k in COMBINATIONS])
def test_every_kind_on_every_source_in_both_directions(tmp_path, peers, source, kind, lower_is_better):
    config, services = services_for(tmp_path, peers, [kpi_block(source, kind, lower_is_better)])
    report = services.report(config.teams[0], SCORE)
    [kpi] = report.kpis
    assert kpi.stale_reason is None, kpi.stale_reason
    assert kpi.score.index == EXPECTED[kind]
    assert kpi.score.status is (Status.GOOD if lower_is_better else Status.BAD)
    stored = services.store.latest_readings("team")["k"]
    assert stored.index == EXPECTED[kind]


def test_closed_on_vtiger_counts_the_window_in_the_crms_zone_with_one_count_each(tmp_path, peers):
    _, fake = peers
    weights = {"High": 5, "Low": 1, "Urgent": 100}
    kpi = kpi_block("vtiger", "closed", False, weights=weights, top=0)
    config, services = services_for(tmp_path, peers, [kpi])
    before = len(fake.queries())
    [report] = services.report(config.teams[0], SCORE).kpis
    assert report.score.index == 105, "High closed 3 days ago, and the Urgent closed 2 hours inside the window"
    window = [q for q in fake.queries()[before:] if "modifiedtime >= " in q]
    cutoff = crm(ago(7))
    assert window and all(f"modifiedtime >= '{cutoff}'" in q for q in window), window
    assert report.fetch.plan == "page records", "5 rows: one page"


def test_aged_lists_the_oldest_first_whatever_its_weight(tmp_path, peers):
    rows = "status,priority,created,closed_at,title\n" + "\n".join(
        [
            f"open,High,{iso(ago(35))},,high 35 days",
            f"open,Low,{iso(ago(90))},,low 90 days",
            f"open,High,{iso(ago(31))},,high 31 days",
            f"open,High,{iso(ago(3))},,high 3 days",
        ]
    )
    config, services = services_for(tmp_path, peers, [kpi_block("file", "aged", True)])
    (tmp_path / "issues.csv").write_text(rows + "\n")
    [report] = services.report(config.teams[0], SCORE).kpis
    assert report.score.index == 11
    assert [item.title for item in report.fetch.items] == ["low 90 days", "high 35 days", "high 31 days"]


def test_a_card_mixes_kinds_each_with_its_own_words_unit_and_direction(tmp_path, peers):
    kpis = [
        kpi_block("vtiger", "count", True) | {"id": "open", "name": "Open"},
        kpi_block("vtiger", "closed", False) | {"id": "fixed", "name": "Fixed"},
        kpi_block("http", "aged", True) | {"id": "sla", "name": "SLA"},
        kpi_block("http", "value", True) | {"id": "p95", "name": "p95"},
    ]
    config, services = services_for(tmp_path, peers, kpis)
    report = services.report(config.teams[0], SCORE)
    card = json.dumps(team_message(report, refresh_function="refresh"), ensure_ascii=False)
    assert "Index = Σ weight × items, as each KPI says · each KPI says which way is better" in card
    assert "<i>Closed in the last 7 days</i>" in card and "<i>Open over 30 days</i>" in card
    assert "<b>245 ms</b> 🟢 Good" in card and "<b>246 ms</b>" in card, "a value with its unit, its target too"
    assert '"topLabel": "Value"' in card
    text = plain_text(report)
    assert "• p95 (in ms): 245 ms (target 246 ms) 🟢 Good" in text
    assert "• Fixed (closed in the last 7 days): 5 (target 7) 🔴 Bad" in text


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"search": {"p95_ms": "245"}}, "selected the text '245', not a number"),
        ({"search": {"p95_ms": None}}, "selected nothing (null or missing), not a number"),
        ({"search": {}}, "selected nothing (null or missing), not a number"),
        ({"search": {"p95_ms": True}}, "selected True, not a number"),
        (b"", "with an empty body, not JSON"),
    ],
    ids=["string", "null", "missing", "boolean", "empty body"],
)
def test_a_value_that_is_not_a_number_is_a_stale_card_never_zero(tmp_path, body, reason):
    server, fake = JsonServer(), FakeVtiger()
    try:
        server.body = {"search": {"p95_ms": 180}}
        config, services = services_for(tmp_path, (server, fake), [kpi_block("http", "value", True)])
        first = services.report(config.teams[0], SCORE, record=True)
        assert first.kpis[0].score.index == 180
        server.body = body
        [kpi] = services.report(config.teams[0], SCORE, record=True).kpis
        assert reason in kpi.stale_reason, kpi.stale_reason
        assert kpi.score.index == 180, "the last known value, marked stale"
        assert services.store.latest_readings("team")["k"].index == 180, "nothing new stored"
    finally:
        server.close()
        fake.close()


def test_a_value_without_any_reading_says_no_data_not_zero(tmp_path, peers):
    block = kpi_block("http", "value", True) | {"count": {"path": "search.text"}}
    config, services = services_for(tmp_path, peers, [block])
    [kpi] = services.report(config.teams[0], SCORE).kpis
    assert kpi.score is None and "the text '245'" in kpi.stale_reason
    assert "No data yet." in json.dumps(team_message(services.report(config.teams[0], SCORE), refresh_function=None))


@pytest.mark.parametrize(
    ("cell", "reason"),
    [("n/a", "is the text 'n/a', not a number"), ("", "is nothing (null or missing), not a number")],
)
def test_a_csv_value_cell_must_read_as_a_number(tmp_path, peers, cell, reason):
    config, services = services_for(tmp_path, peers, [kpi_block("file", "value", True)])
    (tmp_path / "latency.csv").write_text(f"service,p95\nsearch,250\nsearch,{cell}\n")
    [kpi] = services.report(config.teams[0], SCORE).kpis
    assert reason in kpi.stale_reason


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"kind": "closed", "days": None}, "a closed KPI needs days (items closed within the last N days)"),
        ({"days": 7}, "days is for closed and aged KPIs, not count"),
        ({"unit": "ms"}, "unit is for value KPIs; a count KPI counts items"),
        ({"kind": "sideways"}, "Input should be 'count', 'closed', 'aged' or 'value'"),
    ],
)
def test_kind_mistakes_are_named(tmp_path, peers, change, problem):
    block = {key: value for key, value in (kpi_block("file", "count", True) | change).items() if value is not None}
    path = write_config(tmp_path, peers, [{"id": "team", "name": "Team", "kpis": [block]}])
    with pytest.raises(ConfigError, match=r"teams\[0\]\.kpis\[0\]") as caught:
        load_config(path)
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("source", "kind", "drop", "problem"),
    [
        ("file", "closed", "closed_at", "a closed KPI on a file needs count.closed_at"),
        ("file", "aged", "created", "an aged KPI on a file needs count.created"),
        ("http", "closed", "closed_at", "a closed KPI on an http source needs count.closed_at"),
        ("http", "aged", "created", "an aged KPI on an http source needs count.created"),
    ],
)
def test_a_kind_needs_its_time_column(tmp_path, peers, source, kind, drop, problem):
    block = kpi_block(source, kind, True)
    block["count"] = {k: v for k, v in block["count"].items() if k != drop}
    path = write_config(tmp_path, peers, [{"id": "team", "name": "Team", "kpis": [block]}])
    with pytest.raises(ConfigError, match=r"teams\[0\]\.kpis\[0\]\.kind: ") as caught:
        load_config(path)
    assert problem in str(caught.value)


def test_vtiger_refuses_a_value_kpi_and_a_window_on_an_or_filter(tmp_path, peers):
    value = kpi_block("http", "value", True) | {"source": "vtiger", "count": {"module": "HelpDesk"}}
    path = write_config(tmp_path, peers, [{"id": "team", "name": "Team", "kpis": [value]}])
    with pytest.raises(ConfigError, match="a value KPI reads an http or file source"):
        load_config(path)
    closed = kpi_block("vtiger", "closed", False)
    closed["count"] = {"module": "HelpDesk", "filter": "ticketstatus = 'Closed' OR ticketstatus = 'Done'"}
    path = write_config(tmp_path, peers, [{"id": "team", "name": "Team", "kpis": [closed]}])
    with pytest.raises(ConfigError, match=r"joins its conditions with AND \(use IN"):
        load_config(path)


def test_a_closed_kpi_is_higher_is_better_unless_told(tmp_path, peers):
    block = kpi_block("file", "closed", False)
    del block["lower_is_better"]
    path = write_config(tmp_path, peers, [{"id": "team", "name": "Team", "kpis": [block]}])
    assert load_config(path).teams[0].kpis[0].lower_is_better is False


SINCE = ago(5)
"""The team's previous post, for what is new and what was closed since."""


def test_a_count_kpi_says_how_many_were_closed_since_the_last_post_from_a_file(tmp_path, peers):
    block = kpi_block("file", "count", True)
    block["count"] = QUERIES["file"]["count"] | {"closed_at": "closed_at", "left": {"status": "closed"}}
    config, services = services_for(tmp_path, peers, [block])
    kpi = config.teams[0].kpis[0]
    wanted = Wanted(top=3, weights=kpi.weights, since=SINCE, kind="count")
    result = services.sources["file"].fetch(kpi.count, kpi.category, Deadline.after(5), wanted)
    assert (result.created_since, result.closed_since) == (1, 1), "new: the Low of 2 days; closed: 3 days ago"
    unasked = services.sources["file"].fetch(kpi.count, kpi.category, Deadline.after(5), Wanted(kind="count"))
    assert unasked.closed_since is None


def test_a_count_kpi_says_how_many_were_closed_since_the_last_post_from_vtiger(tmp_path, peers):
    _, fake = peers
    block = kpi_block("vtiger", "count", True)
    block["count"] = QUERIES["vtiger"]["count"] | {"left": "ticketstatus = 'Closed'"}
    config, services = services_for(tmp_path, peers, [block])
    kpi = config.teams[0].kpis[0]
    before = len(fake.queries())
    wanted = Wanted(top=3, weights=kpi.weights, since=SINCE, kind="count")
    result = services.sources["vtiger"].fetch(kpi.count, kpi.category, Deadline.after(5), wanted)
    assert result.closed_since == 1, "the High closed 3 days ago (the others were closed before the post)"
    asked = [q for q in fake.queries()[before:] if "modifiedtime > " in q]
    expected = f"SELECT count(*) FROM HelpDesk WHERE ticketstatus = 'Closed' AND modifiedtime > '{crm(SINCE)}';"  # noqa: S608
    assert asked == [expected], "one count(*), in the CRM's zone"


def test_the_card_says_what_is_new_and_what_was_closed_since_the_last_post(tmp_path, peers):
    config, _ = services_for(tmp_path, peers, [kpi_block("file", "count", True)])
    team, kpi = config.teams[0], config.teams[0].kpis[0]
    score = score_reading(kpi, {"High": 1, "Low": 1})
    fetch = FetchResult(counts={"High": 1, "Low": 1}, plan="read file", calls=1, created_since=2, closed_since=5)
    report = KpiReport(kpi=kpi, score=score, as_of=NOW, fetch=fetch, new_since=NOW - timedelta(days=1))
    card = json.dumps(team_message(TeamReport(team, (report,), NOW, "UTC"), refresh_function=None))
    assert "2 new \\u00b7 5 closed since last post Wed 15:00" in card


def test_a_count_kpi_says_how_many_were_closed_since_the_last_post_from_a_json_endpoint(tmp_path, peers):
    block = kpi_block("http", "count", True)
    block["count"] = QUERIES["http"]["count"] | {"closed_at": "closed_at", "left": "items[?state=='closed']"}
    config, services = services_for(tmp_path, peers, [block])
    kpi = config.teams[0].kpis[0]
    wanted = Wanted(top=3, weights=kpi.weights, since=SINCE, kind="count")
    result = services.sources["http"].fetch(kpi.count, kpi.category, Deadline.after(5), wanted)
    assert result.closed_since == 1, "the High closed 3 days ago; the Low 10 days ago is before the post"
    assert result.created_since == 1


def test_an_aged_kpi_shares_the_scan_of_a_count_kpi_of_the_same_filter(tmp_path, peers):
    _, fake = peers
    kpis = [
        kpi_block("vtiger", "count", True) | {"id": "open", "name": "Open", "count": QUERIES["vtiger"]["count"]},
        kpi_block("vtiger", "aged", True) | {"id": "sla", "name": "Past 30 days"},
    ]
    config, services = services_for(tmp_path, peers, kpis)
    services.report(config.teams[0], SCORE, record=False)  # signs in and describes HelpDesk
    before = len(fake.queries())
    shared = services.report(config.teams[0], SCORE, record=False)
    queries = fake.queries()[before:]
    assert len(queries) == 1 and queries[0].endswith("ORDER BY id LIMIT 100;"), queries
    assert [k.score.index for k in shared.kpis] == [EXPECTED["count"], EXPECTED["aged"]]
    assert shared.kpis[1].fetch.plan.startswith("shared scan of 2 KPIs")
    assert [i.title for i in shared.kpis[1].fetch.items] == ["old high"], "only the item past 30 days"
    (tmp_path / "alone").mkdir()
    alone = services_for(tmp_path / "alone", peers, [kpis[1]])
    [by_itself] = alone[1].report(alone[0].teams[0], SCORE, record=False).kpis
    assert by_itself.fetch.counts == shared.kpis[1].fetch.counts


def test_history_prints_a_value_kpi_as_its_value_and_unit_and_a_count_as_its_index(
    tmp_path, peers, capsys, monkeypatch
):
    from bot.__main__ import main

    kpis = [kpi_block("file", "value", True, id="latency"), kpi_block("file", "count", True, id="open")]
    config, services = services_for(tmp_path, peers, kpis)
    services.report(config.teams[0], SCORE)
    services.store.engine.dispose()

    monkeypatch.setenv("SCOREBOT_STORE", f"sqlite:///{tmp_path / 'store.db'}")
    assert main(["--config", str(tmp_path / "scorebot.yaml"), "history", "team"]) == 0
    lines = capsys.readouterr().out.splitlines()
    [value] = [line for line in lines if "  latency  " in line]
    [count] = [line for line in lines if "  open  " in line]
    assert "  latency  value 245 ms  score" in value
    assert "  open  index 6  (High=1, Low=1)  score" in count


def test_a_window_kpi_asks_its_source_only_what_its_card_shows() -> None:
    weights = {"High": 5}

    def kpi(kind: str) -> KpiConfig:
        return KpiConfig.model_validate(
            {"id": kind, "name": kind, "source": "crm", "kind": kind, "days": 7, "category": "p", "weights": weights}
            | {"target": 1, "warning": 2, "lower_is_better": True}
        )

    post = ago(1)
    closed, aged = wanted_of(kpi("closed"), post, NOW), wanted_of(kpi("aged"), post, NOW)
    assert (closed.since, closed.oldest) == (None, False), "a closed item is neither new nor open: no such queries"
    assert (aged.since, aged.oldest, aged.cutoff) == (None, True, ago(7)), "aged: the oldest, never what is new"


def test_an_alerts_new_items_are_asked_for_only_with_both_categories_and_a_moment() -> None:
    levels = {"target": 1, "warning": 2}
    count = KpiConfig.model_validate(
        {"id": "k", "name": "k", "source": "crm", "category": "p", "weights": {"H": 5}} | levels
    )
    asked = wanted_of(count, ago(1), NOW, ["High"], ago(2))
    assert (asked.new_in, asked.new_after, asked.lists_new) == (("High",), ago(2), True)
    no_moment = wanted_of(count, ago(1), NOW, ["High"], None)
    no_categories = wanted_of(count, ago(1), NOW, [], ago(2))
    assert (no_moment.new_in, no_moment.new_after) == ((), None), "without a moment, nothing is half asked for"
    assert (no_categories.new_in, no_categories.new_after) == ((), None)
