"""Readings: the store's series API, what a card compares with, views that write nothing, and a
reading that outlives its process. Real SQLite files and PostgreSQL, injected clocks."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import yaml

from bot.__main__ import main
from bot.app import create_app
from bot.card_text import message_as_text
from bot.cards import team_message
from bot.config import DEMO_CONFIG, load_config
from bot.errors import ConfigError
from bot.schedule.tick import Scheduler
from bot.services import build_services
from bot.store import POST, SCHEMA_VERSION, SCORE, Reading, Store, metadata, schema_info
from tests import payloads as p
from tests.fakes.chat import FakeChat, write_config
from tests.fakes.vtiger import FakeVtiger

REPO = Path(__file__).resolve().parent.parent
BERLIN = ZoneInfo("Europe/Berlin")


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def berlin(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A moment of November 2026 in Berlin (CET, UTC+1), in UTC."""
    return datetime(2026, 11, day, hour, minute, second, tzinfo=BERLIN).astimezone(UTC)


def table_rows(store: Store) -> dict[str, list[tuple]]:
    """Every row of every table, sorted: equal before and after means the store did not change."""
    with store.engine.connect() as conn:
        return {t.name: sorted(map(tuple, conn.execute(sa.select(t))), key=repr) for t in metadata.sorted_tables}


@pytest.fixture
def store(store_url):
    opened = Store(store_url)
    yield opened
    opened.engine.dispose()


def reading(kpi: str, at: datetime, index: int, origin: str = SCORE, slot: datetime | None = None) -> Reading:
    return Reading("alpha", kpi, at, origin, {"High": index}, float(index), rows=index, plan="page records", slot=slot)


# --- the store's series API ---------------------------------------------------------------------------


def test_latest_readings_is_each_kpis_newest_whatever_order_they_were_written_in(store):
    newer, older = reading("a", berlin(10, 12), 5), reading("a", berlin(10, 11), 4)
    store.add_readings([newer, reading("b", berlin(9, 9), 7)])
    store.add_readings([older])  # written late (another process's clock): not the latest
    store.add_readings([reading("a", berlin(10, 12, 30), 6, origin=POST, slot=berlin(10, 12))])

    latest = store.latest_readings("alpha")

    assert {k: (r.index, r.origin) for k, r in latest.items()} == {"a": (6, "post"), "b": (7, "score")}
    assert latest["a"] == reading("a", berlin(10, 12, 30), 6, origin=POST, slot=berlin(10, 12))
    assert store.latest_readings("beta") == {}
    assert [r.index for r in store.recent_readings("alpha", limit=3)] == [6, 5, 4]


def test_the_daily_series_has_one_point_per_local_day_and_gaps_for_days_without_one(store):
    store.add_readings(
        [
            reading("a", berlin(6, 9), 1),  # before the window
            reading("a", berlin(8, 9), 2),
            reading("a", berlin(8, 23, 59), 3),  # 22:59 UTC: still the 8th in Berlin
            reading("a", berlin(9, 0, 1), 4),  # 23:01 UTC on the 8th: the 9th in Berlin
            reading("b", berlin(10, 8), 9),
            reading("a", berlin(11, 10), 5),
            reading("a", berlin(11, 10), 6),  # the same instant: the last one written wins
        ]
    )

    series = store.daily_series("alpha", BERLIN, 5, berlin(11, 14))

    dates = [f"{d:%m-%d}" for d, _ in series["a"]]
    assert dates == ["11-07", "11-08", "11-09", "11-10", "11-11"]
    assert [r.index if r else None for _, r in series["a"]] == [None, 3, 4, None, 6]
    assert [r.index if r else None for _, r in series["b"]] == [None, None, None, 9, None]
    assert set(series) == {"a", "b"}
    assert store.daily_series("alpha", BERLIN, 2, berlin(20, 14)) == {}


def test_reading_near_is_the_closest_within_a_day(store):
    store.add_readings(
        [
            reading("a", berlin(3, 9), 1),
            reading("a", berlin(3, 20), 2),
            reading("a", berlin(4, 8), 3),
            reading("b", berlin(1, 9), 8),  # three days off: too far to stand for the 3rd
        ]
    )

    near = store.reading_near("alpha", berlin(3, 15))

    assert {k: r.index for k, r in near.items()} == {"a": 2}
    assert store.reading_near("alpha", berlin(4, 5))["a"].index == 3
    assert store.reading_near("alpha", berlin(1, 12), within=timedelta(hours=4))["b"].index == 8


def test_last_post_is_the_previous_delivered_post_and_what_it_showed(store):
    ten, four = berlin(10, 10), berlin(10, 16)
    store.add_readings([reading("a", ten + timedelta(seconds=20), 3, origin=POST, slot=ten)])
    store.add_readings([reading("a", berlin(10, 12), 4)])
    store.add_readings([reading("a", four + timedelta(seconds=20), 5, origin=POST, slot=four)])
    store.record_delivery("alpha", ten, "log", "delivered", ten + timedelta(seconds=21))
    store.record_delivery("alpha", four, "webhook:spaces/A", "error", four + timedelta(seconds=21))

    slot, shown = store.last_post("alpha", before=berlin(10, 17))

    assert slot == ten, "the 16:00 post never arrived"
    assert {k: r.index for k, r in shown.items()} == {"a": 3}
    store.record_delivery("alpha", four, "webhook:spaces/A", "already", four + timedelta(minutes=1))
    assert store.last_post("alpha", before=berlin(10, 17))[0] == four
    assert store.last_post("alpha", before=four)[0] == ten, "a post's previous post is an earlier one"
    assert store.last_post("alpha", before=ten) is None


# --- schema 2 stores -----------------------------------------------------------------------------------


def make_schema_2(url: str, snapshots: int) -> None:
    """A store as schema 2 left it: snapshots and the scheduler's tables, version 2."""
    old = sa.MetaData()
    sa.Table("schema_info", old, sa.Column("version", sa.Integer, nullable=False))
    sa.Table(
        "snapshots",
        old,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("team_id", sa.String(40), nullable=False),
        sa.Column("kpi_id", sa.String(40), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counts", sa.Text, nullable=False),
        sa.Column("index_value", sa.Float, nullable=False),
    )
    for name in ("slot_runs", "deliveries", "outbox", "team_marks"):
        metadata.tables[name].to_metadata(old)
    for table in old.tables.values():
        for index in list(table.indexes):
            table.indexes.discard(index)  # schema 2 had fewer indexes: migration adds them
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        old.create_all(conn)
        conn.execute(old.tables["schema_info"].insert().values(version=2))
        conn.execute(
            old.tables["snapshots"].insert(),
            [
                {
                    "team_id": "alpha",
                    "kpi_id": "open",
                    "taken_at": datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=i),
                    "counts": json.dumps({"High": i}),
                    "index_value": 5.0 * i,
                }
                for i in range(snapshots)
            ],
        )
    engine.dispose()


def test_a_schema_2_store_upgraded_by_several_processes_at_once_is_migrated_once(store_url):
    make_schema_2(store_url, snapshots=30)
    command = [sys.executable, "-m", "bot", "db", "upgrade"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "SCOREBOT_STORE": store_url}
    starts = [subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [start.communicate(timeout=60)[1] for start in starts]
    assert [s.returncode for s in starts] == [0] * 4, errors

    store = Store(store_url)
    tables = set(sa.inspect(store.engine).get_table_names())
    assert "snapshots" not in tables
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(schema_info.c.version)).scalars().all() == [SCHEMA_VERSION]
    history = store.recent_readings("alpha", limit=100)
    assert len(history) == 30
    assert {r.origin for r in history} == {"legacy"}
    assert (history[0].index, history[0].counts, history[0].rows) == (145.0, {"High": 29}, None)
    assert store.latest_readings("alpha")["open"] == history[0]
    store.engine.dispose()


# --- views write nothing -------------------------------------------------------------------------------


@pytest.fixture
def demo_copy(tmp_path, monkeypatch):
    for name in ("demo.yaml", "demo-issues.csv"):
        (tmp_path / name).write_bytes((DEMO_CONFIG.parent / name).read_bytes())
    monkeypatch.setenv("SCOREBOT_STORE", f"sqlite:///{tmp_path / 'views.db'}")
    return tmp_path / "demo.yaml"


def test_preview_dry_run_and_check_leave_the_store_unchanged(demo_copy, capsys):
    config = str(demo_copy)
    assert main(["--config", config, "tick"]) == 0  # a post, its slot, delivery, outbox and readings
    assert main(["--config", config, "send", "customer"]) == 0
    store = Store(os.environ["SCOREBOT_STORE"])
    before = table_rows(store)
    assert all(before[name] for name in ("readings", "kpi_latest", "slot_runs", "deliveries", "outbox"))

    assert main(["--config", config, "preview", "customer"]) == 0
    assert main(["--config", config, "preview", "security", "--format", "json"]) == 0
    assert main(["--config", config, "send", "customer", "--dry-run"]) == 0
    assert main(["--config", config, "check"]) == 0

    assert table_rows(store) == before
    out = capsys.readouterr().out
    assert "Customer Issues" in out and "ok   customer/open-issues" in out
    store.engine.dispose()


# --- what a card compares with -------------------------------------------------------------------------


@pytest.fixture
def fake():
    chat = FakeChat()
    yield chat
    chat.close()


def write_alpha(folder: Path, high: int, low: int) -> None:
    (folder / "alpha.csv").write_text("status,priority\n" + "Open,High\n" * high + "Open,Low\n" * low)


@pytest.mark.timeout(600)  # 1,440 reads, each committed: slow on a busy machine
def test_a_day_of_score_every_minute_and_two_posts(tmp_path, fake):
    """/score every minute for a day, posts at 10:00 and 16:00: the card's change is against the
    16:00 post, and the sparkline has one point per day, not one per click."""
    config = load_config(
        write_config(tmp_path, fake, {"alpha": [{"type": "log"}]}, schedule="0 10,16 * * *", timezone="Europe/Berlin")
    )
    clock = Clock(berlin(9, 12))
    services = build_services(config, clock=clock, store_url=f"sqlite:///{tmp_path / 'store.db'}")
    client = create_app(services=services, allow_unverified=True).test_client()
    scheduler = Scheduler(services)
    slash = p.classic_slash(" alpha")

    def score():
        response = client.post("/", data=json.dumps(slash), content_type="application/json")
        assert response.status_code == 200
        return response.get_json()

    write_alpha(tmp_path, high=2, low=1)  # 11
    score()  # the day before: one reading at noon
    team = config.teams[0]
    for minute in range(24 * 60):  # what /score does, without Flask's share of the time
        clock.now = berlin(10, 0) + timedelta(minutes=minute)
        if clock.now in (berlin(10, 10), berlin(10, 16)):
            write_alpha(tmp_path, high=3 if clock.now == berlin(10, 10) else 4, low=1)  # 16, then 21
            clock.now += timedelta(seconds=20)
            assert [o.state for o in scheduler.tick(clock.now).outcomes] == ["delivered"]
        if clock.now == berlin(10, 20):
            write_alpha(tmp_path, high=6, low=0)  # 30
        services.report(team, SCORE)
    clock.now = berlin(10, 23, 59, 30)
    card = message_as_text(score())

    assert "▲ +9 vs last post today 16:00" in card, card
    assert "14 days " + "·" * 12 + "▁█" in card, "one point a day: 11 yesterday, 30 at today's end"
    assert "vs 7 days ago" not in card, "there is no week of history yet"
    assert "(target 20; ▲ +9 vs last post today 16:00; 14 days" in card, "the text says the same"
    assert "read 30 s ago" in card, "the last /score shows the 23:59 reading (younger than cache_seconds)"
    readings = services.store.recent_readings("alpha", limit=5000)
    assert len(readings) == 24 * 60 + 3, "the cached /score at 23:59:30 read nothing"
    assert sorted(r.origin for r in readings if r.origin != "score") == ["post", "post"]
    posted = [entry.message["text"] for entry in reversed(services.store.outbox("alpha"))]
    assert "▲ +5 vs Mon 12:00" in posted[0], "the first post: no earlier post, so the previous day"
    assert "▲ +5 vs last post today 10:00" in posted[1]
    services.store.engine.dispose()


def test_a_week_of_history_adds_the_change_against_7_days_ago(tmp_path, fake):
    config = load_config(write_config(tmp_path, fake, {"alpha": [{"type": "log"}]}, timezone="Europe/Berlin"))
    config = config.model_copy(update={"teams": [config.teams[0].model_copy(update={"schedule": None})]})
    clock = Clock(berlin(1, 9))
    services = build_services(config, clock=clock, store_url=f"sqlite:///{tmp_path / 'store.db'}")
    team = config.teams[0]
    for day in range(1, 9):
        if day != 5:  # nobody looked on the 5th
            write_alpha(tmp_path, high=day, low=0)
            clock.now = berlin(day, 18)
            services.report(team, SCORE)
    write_alpha(tmp_path, high=1, low=0)
    clock.now = berlin(8, 19)

    report = services.report(team, SCORE, record=False)

    score = report.kpis[0].score
    assert (score.index, score.change, score.week_change) == (5, -30, 0)
    text = message_as_text(team_message(report, refresh_function=None))
    assert "▼ −30 vs Sat 18:00 · = no change vs 7 days ago" in text, "the previous day, and the 1st"
    assert "14 days ······▁▂▃▅·▇█▁" in text, "Oct 26-31 and Nov 5 without a reading"


def test_a_reading_under_7_days_old_is_not_taken_for_7_days_ago(tmp_path, fake):
    config = load_config(write_config(tmp_path, fake, {"alpha": [{"type": "log"}]}, timezone="Europe/Berlin"))
    clock = Clock(berlin(2, 6))
    services = build_services(config, clock=clock, store_url=f"sqlite:///{tmp_path / 'store.db'}")
    write_alpha(tmp_path, high=4, low=0)
    services.report(config.teams[0], SCORE)  # the first reading: 6 days and 13 hours before the card
    clock.now = berlin(8, 19)

    report = services.report(config.teams[0], SCORE, record=False)

    assert report.kpis[0].score.week_change is None
    assert "7 days ago" not in message_as_text(team_message(report, refresh_function=None))


def test_a_card_asks_the_store_a_fixed_number_of_queries_however_many_kpis(tmp_path, fake):
    def statements_for(kpis: int) -> int:
        folder = tmp_path / f"kpis-{kpis}"
        folder.mkdir()
        path = write_config(folder, fake, {"alpha": [{"type": "log"}]})
        data = yaml.safe_load(path.read_text())
        kpi = data["teams"][0]["kpis"][0]
        data["teams"][0]["kpis"] = [kpi | {"id": f"k{i}", "name": f"KPI {i}"} for i in range(kpis)]
        path.write_text(yaml.safe_dump(data))
        services = build_services(load_config(path), clock=Clock(berlin(10, 12)), store_url="sqlite:///store.db")
        team = services.config.teams[0]
        services.report(team, SCORE)
        executed: list[str] = []
        sa.event.listen(services.store.engine, "before_cursor_execute", lambda *a: executed.append(a[2]))
        services.report(team, SCORE, record=False)
        services.store.engine.dispose()
        return len(executed)

    assert statements_for(1) == statements_for(8) > 0


# --- a reading outlives its process ----------------------------------------------------------------------


def test_a_fresh_process_plans_a_vtiger_kpi_as_a_warm_one_would(tmp_path):
    crm = FakeVtiger()
    crm.add("Calendar", 200, taskpriority="High", taskstatus="Open")
    crm.add("Calendar", 100, taskpriority="Low", taskstatus="Open")
    data = {
        "chat": {"verify": False},
        "sources": {"crm": {"type": "vtiger", "url": crm.url, "username": crm.username, "access_key": crm.access_key}},
        "teams": [
            {
                "id": "support",
                "name": "Support",
                "kpis": [
                    {
                        "id": "tasks",
                        "name": "Open tasks",
                        "source": "crm",
                        "count": {"module": "Calendar", "filter": "taskstatus = 'Open'"},
                        "category": "taskpriority",
                        "weights": {"High": 5, "Low": 1},
                        "target": 100,
                        "warning": 200,
                    }
                ],
            }
        ],
    }
    (tmp_path / "scorebot.yaml").write_text(yaml.safe_dump(data))
    url = f"sqlite:///{tmp_path / 'store.db'}"
    clock = Clock(berlin(10, 12))

    def queries_of_one_read() -> tuple[int, str, int | None]:
        """Read the KPI in a new process's services (new sources, same store); the queries it took."""
        services = build_services(load_config(tmp_path / "scorebot.yaml"), clock=clock, store_url=url)
        before = crm.count("query")
        report = services.report(services.config.teams[0], SCORE)
        clock.now += timedelta(minutes=1)
        kpi = report.kpis[0]
        assert kpi.score.index == 1100 and kpi.stale_reason is None
        for source in services.sources.values():
            source.close()  # type: ignore[attr-defined]
        services.store.engine.dispose()
        return crm.count("query") - before, kpi.fetch.plan, kpi.fetch.rows

    try:
        cold = queries_of_one_read()  # nothing known: 4 pages, fewer than count(*), 3 values and the top query
        fresh = queries_of_one_read()  # a new process, primed from the store: the same 4 pages, no count(*)
        warm_services = build_services(load_config(tmp_path / "scorebot.yaml"), clock=clock, store_url=url)
        warm_services.report(warm_services.config.teams[0], SCORE)
        before = crm.count("query")
        warm_services.report(warm_services.config.teams[0], SCORE)
        warm = crm.count("query") - before
    finally:
        crm.close()
    assert cold == fresh == (warm, "page records", 300) == (4, "page records", 300)
    latest = warm_services.store.latest_readings("support")["tasks"]
    assert (latest.rows, latest.plan) == (300, "page records")


# --- retention -----------------------------------------------------------------------------------------


def test_prune_thins_old_readings_to_each_kpis_last_a_day_and_deletes_old_scheduler_rows(store):
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    old_day, new_day = datetime(2026, 11, 8, tzinfo=UTC), datetime(2026, 11, 15, tzinfo=UTC)
    store.add_readings([reading(kpi, old_day + timedelta(hours=h), h) for kpi in "ab" for h in range(0, 24, 2)])
    store.add_readings([reading("a", new_day + timedelta(hours=h), h) for h in range(5)])
    for day in (old_day, new_day):
        slot = day + timedelta(hours=10)
        store.claim("alpha", slot, "me", slot, slot + timedelta(minutes=3))
        store.finish("alpha", slot, "me", "delivered", slot, None)
        store.record_delivery("alpha", slot, "log", "delivered", slot)
        store.add_outbox("alpha", slot, {"text": "posted"}, slot)

    first = store.prune(now, keep_days=10, batch=5)  # cutoff: the 10th at noon; the 8th is old
    alerts = {"alert_checks": 0, "alert_notices": 0, "alert_deliveries": 0, "alert_items": 0}
    assert first == {"readings": 5, "outbox": 1, "slot_runs": 1, "deliveries": 1} | alerts, "at most 5 rows a table"
    while any(store.prune(now, keep_days=10, batch=5).values()):
        pass

    kept = sorted((r.kpi_id, r.taken_at) for r in store.recent_readings("alpha", limit=100))
    assert kept == [
        ("a", old_day + timedelta(hours=22)),
        ("a", new_day),
        *[("a", new_day + timedelta(hours=h)) for h in range(1, 5)],
        ("b", old_day + timedelta(hours=22)),
    ]
    assert [r.slot for r in store.slot_runs("alpha")] == [new_day + timedelta(hours=10)]
    assert [d.slot for d in store.deliveries("alpha")] == [new_day + timedelta(hours=10)]
    assert [e.slot for e in store.outbox("alpha")] == [new_day + timedelta(hours=10)]
    assert store.latest_readings("alpha")["b"].taken_at == old_day + timedelta(hours=22), "a KPI's last reading stays"
    assert store.prune(now + timedelta(days=1), keep_days=10, batch=5) == dict.fromkeys(first, 0)


def test_keep_days_is_validated(tmp_path, fake):
    path = write_config(tmp_path, fake, {"alpha": [{"type": "log"}]})
    data = yaml.safe_load(path.read_text())
    assert load_config(path).history.keep_days == 400
    data["history"] = {"keep_days": 3}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"history\.keep_days: Input should be greater than or equal to 7"):
        load_config(path)


@pytest.mark.timeout(600)  # half a million rows written
def test_a_year_of_score_every_minute_keeps_the_store_bounded(tmp_path, fake, capsys):
    """One reading a minute and a post an hour for 365 days, written a day at a time; the tick (4 a day)
    prunes as it runs. keep_days 30: the store holds 30 days in full and one reading a day before."""
    path = write_config(tmp_path, fake, {"alpha": [{"type": "log"}]}, timezone="Europe/Berlin")
    data = yaml.safe_load(path.read_text())
    data["history"] = {"keep_days": 30}
    data["teams"][0]["schedule"] = None  # the tick only prunes; posts are written below in bulk
    path.write_text(yaml.safe_dump(data))
    clock = Clock(datetime(2026, 1, 1, tzinfo=UTC))
    services = build_services(load_config(path), clock=clock, store_url=f"sqlite:///{tmp_path / 'year.db'}")
    scheduler, store = Scheduler(services), services.store
    tables = {t.name: t for t in metadata.sorted_tables}
    figures = {}
    largest_batch = 0
    for day in range(365):
        start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day)
        minutes = [start + timedelta(minutes=m) for m in range(24 * 60)]
        hours = minutes[::60]
        with store.engine.begin() as conn:
            conn.execute(
                tables["readings"].insert(),
                [
                    {"team_id": "alpha", "kpi_id": "open", "taken_at": at, "origin": "score"}
                    | {"counts": json.dumps({"High": at.minute % 7}), "index_value": 5.0 * (at.minute % 7)}
                    for at in minutes
                ],
            )
            common = {"team_id": "alpha", "state": "delivered", "attempts": 1}
            conn.execute(tables["slot_runs"].insert(), [common | {"slot_utc": h, "updated_at": h} for h in hours])
            conn.execute(
                tables["deliveries"].insert(),
                [{"team_id": "alpha", "slot_utc": h, "target": "log", "outcome": "delivered", "at": h} for h in hours],
            )
            conn.execute(
                tables["outbox"].insert(),
                [{"team_id": "alpha", "slot_utc": h, "created_at": h, "message": "{}"} for h in hours],
            )
        store.add_readings([Reading("alpha", "open", minutes[-1], SCORE, {"High": 1}, 5.0)])  # the latest
        for hour in (0, 6, 12, 18):
            clock.now = start + timedelta(days=1, hours=hour)
            largest_batch = max(largest_batch, *scheduler.prune().values())
        if day + 1 in (30, 31, 60, 180, 365):
            figures[day + 1] = {name: count for name, count in row_counts(store).items() if count}

    with capsys.disabled():
        print("\nrow counts after N simulated days of /score every minute and a post an hour (keep_days 30):")
        for day, counts in figures.items():
            print(f"  day {day:3}: " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    written = 365 * (24 * 60 + 1)
    year = figures[365]
    assert year["readings"] <= 32 * 24 * 60 + 365, f"{year['readings']} of {written} readings kept"
    assert year["readings"] - figures[180]["readings"] <= 185 + 24 * 60, "old days grow by one reading a day"
    assert year["slot_runs"] == year["deliveries"] == year["outbox"] <= 31 * 24
    assert largest_batch <= 5000
    series = store.daily_series("alpha", BERLIN, 14, clock.now)["open"]
    assert all(point is not None for _, point in series[:-1]), "every kept day still has its point"
    store.engine.dispose()


def row_counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in metadata.sorted_tables
        }
