"""Reports: fresh reads are remembered; failures show the last value marked stale, never 0."""

import shutil
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.alert_settings import AlertSettings
from bot.cards import team_message
from bot.config import DEMO_CONFIG, load_config
from bot.errors import SourceUnavailable
from bot.services import build_services
from bot.sources import Deadline, FetchResult, Wanted
from bot.store import POST, SCORE, Reading
from scoring import Status


class Clock:
    """A settable clock for the services."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def demo(tmp_path):
    """The demo config copied to tmp_path (so tests can break its data), with its services."""
    for name in ("demo.yaml", "demo-issues.csv"):
        shutil.copy(DEMO_CONFIG.parent / name, tmp_path / name)
    clock = Clock()
    services = build_services(load_config(tmp_path / "demo.yaml"), clock=clock, store_url="sqlite:///store.db")
    return services, clock, tmp_path


def text_of(message):
    return str(message)


def test_fresh_reads_are_stored_and_give_change_and_trend(demo):
    services, clock, tmp_path = demo
    team = services.config.team("security")  # no post yet: the change is against an earlier day
    first = services.report(team, SCORE)
    assert first.fresh and first.kpis[0].score.index == 54 and first.kpis[0].score.change is None
    clock.now += timedelta(hours=1)
    assert services.report(team, SCORE).kpis[0].score.change is None, "the same day is no earlier day"
    csv = tmp_path / "demo-issues.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(line for line in lines if not line.startswith("ISS-0001,")) + "\n")
    clock.now += timedelta(days=1)
    second = services.report(team, SCORE)
    score = second.kpis[0].score
    assert score.index == 49
    assert score.change == -5
    assert second.kpis[0].previous_at == first.generated_at + timedelta(hours=1), "the day's last reading"
    assert score.sparkline == "·" * 12 + "█▁"
    assert [r.origin for r in services.store.recent_readings("security")] == ["score"] * 6  # three of two KPIs


def test_a_card_read_through_the_services_gives_the_age_of_the_oldest_open_item(demo):
    services, _, _ = demo
    report = services.report(services.config.team("security"), SCORE, record=False)

    message = str(team_message(report, refresh_function=None))
    assert "oldest: 85 d" in message  # ISS-0001, open since 2026-09-02; the clock says 2026-11-26 15:00


def test_a_failing_source_shows_the_last_value_marked_stale(demo):
    services, clock, tmp_path = demo
    team = services.config.team("customer")
    services.report(team, SCORE)
    (tmp_path / "demo-issues.csv").unlink()
    clock.now += timedelta(hours=2, minutes=5)
    report = services.report(team, SCORE)
    kpi = report.kpis[0]
    assert not report.fresh
    assert kpi.score.index == 85, "the last known value, not 0"
    assert kpi.as_of == clock.now - timedelta(hours=2, minutes=5)
    assert "cannot read demo-issues.csv" in kpi.stale_reason
    card = text_of(team_message(report, refresh_function="refresh"))
    assert "Could not refresh" in card and "read 2 h 5 min ago" in card
    assert len(services.store.recent_readings("customer")) == 1, "a failure stores nothing"


def test_no_data_yet_is_unknown_not_zero(demo):
    services, _, tmp_path = demo
    (tmp_path / "demo-issues.csv").unlink()
    report = services.report(services.config.team("security"), SCORE)
    assert report.kpis[0].score is None
    assert report.status is Status.UNKNOWN
    message = team_message(report, refresh_function="refresh")
    assert "No data yet." in text_of(message)
    assert "no data yet" in message["text"]


class SlowSource:
    """A source that outlives the budget (its fetch waits on an event)."""

    service = "The slow service"

    def __init__(self) -> None:
        self.release = threading.Event()

    def fetch(self, query, category, deadline: Deadline, wanted: Wanted) -> FetchResult:
        self.release.wait(10)
        raise SourceUnavailable("released")


def test_a_source_slower_than_the_budget_is_reported_within_the_budget(demo):
    services, _, _ = demo
    services.report(services.config.team("customer"), SCORE)
    slow = SlowSource()
    services.sources["demo"] = slow
    services.reporter.sources = services.sources
    services.reporter.budget_seconds = 0.3
    started = datetime.now(UTC)
    report = services.report(services.config.team("customer"), SCORE)
    slow.release.set()
    assert (datetime.now(UTC) - started).total_seconds() < 2
    assert report.kpis[0].stale_reason == "The slow service did not answer within 0.3 s"
    assert report.kpis[0].score.index == 85


class BrokenSource:
    """A source with a bug: it raises something that is not a SourceError."""

    service = "The broken service"

    def fetch(self, query, category, deadline: Deadline, wanted: Wanted) -> FetchResult:
        raise KeyError("oops")


def test_a_fault_in_a_source_gives_a_stale_card_not_an_error(demo):
    services, _, _ = demo
    services.report(services.config.team("customer"), SCORE)
    services.reporter.sources = {**services.sources, "demo": BrokenSource()}
    report = services.report(services.config.team("customer"), SCORE)
    assert report.kpis[0].stale_reason == "The broken service failed unexpectedly (KeyError)"
    assert report.kpis[0].score.index == 85


def test_a_file_that_is_not_utf8_is_a_data_error(demo):
    services, _, tmp_path = demo
    (tmp_path / "demo-issues.csv").write_bytes(b"id,team\n\xff\xfe,customer\n")
    report = services.report(services.config.team("customer"), SCORE)
    assert report.kpis[0].stale_reason == "demo-issues.csv is not UTF-8 text"


def test_history_is_rescored_with_todays_weights(demo):
    services, clock, _ = demo
    team = services.config.team("customer")
    services.report(team, SCORE)
    kpi = team.kpis[0]
    heavier = kpi.model_copy(update={"weights": {**kpi.weights, "Critical": 20}})
    team = team.model_copy(update={"kpis": [heavier]})
    clock.now += timedelta(days=1)
    score = services.report(team, SCORE).kpis[0].score
    assert score.index == 125
    assert score.change == 0, "yesterday's counts under today's weights give the same index"


def test_a_broken_store_still_gives_the_fresh_score(demo, caplog):
    services, _, _ = demo
    with services.store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE readings")
    report = services.report(services.config.team("customer"), SCORE)
    assert report.fresh
    assert report.kpis[0].score.index == 85
    assert "store unavailable (OperationalError)" in caplog.text


@pytest.fixture(params=["Pacific/Kiritimati", "Pacific/Pago_Pago"])
def server_zone(request, monkeypatch):
    """The process's own time zone set far east (UTC+14) or far west (UTC-11) of the team's."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


def read_before_midnight(services, clock):
    """The customer team (New York: UTC-5 in November) read at 10:00 on the 24th and at 23:59:30 on the 25th,
    when it is already the 26th in Kiritimati (18:59:30 there); the team and the last report."""
    team = services.config.team("customer")
    clock.now = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    services.report(team, SCORE)
    clock.now = datetime(2026, 11, 26, 4, 59, 30, tzinfo=UTC)
    return team, services.report(team, SCORE)


def test_a_cached_card_counts_days_in_the_teams_zone_not_the_servers(demo, server_zone):
    services, clock, _ = demo
    team, last = read_before_midnight(services, clock)
    clock.now += timedelta(seconds=40)  # 00:00:10 on the 26th: in Pago Pago still the 25th, 18:00:10

    kpi = services.report(team, SCORE, cached=True).kpis[0]

    assert kpi.cached and kpi.as_of == last.generated_at, "the reading is 40 s old: shown from the store"
    assert kpi.previous_at == datetime(2026, 11, 24, 15, 0, tzinfo=UTC), "compared with the day before its own"
    assert kpi.score.change == 0
    assert kpi.score.sparkline[-3:-1] != "··" and kpi.score.sparkline[-1] == "·", "nothing read on the 26th yet"


def test_a_stale_card_counts_days_in_the_teams_zone_not_the_servers(demo, server_zone):
    services, clock, tmp_path = demo
    team, last = read_before_midnight(services, clock)
    (tmp_path / "demo-issues.csv").unlink()
    clock.now += timedelta(seconds=40)  # 00:00:10 on the 26th: in Pago Pago still the 25th, 18:00:10

    kpi = services.report(team, SCORE).kpis[0]

    assert kpi.stale_reason and kpi.as_of == last.generated_at, "the last reading, marked stale"
    assert kpi.previous_at == datetime(2026, 11, 24, 15, 0, tzinfo=UTC), "compared with the day before its own"
    assert kpi.score.change == 0
    assert kpi.score.sparkline[-3:-1] != "··" and kpi.score.sparkline[-1] == "·", "nothing read on the 26th yet"


def test_a_fresh_read_is_dated_now(demo):
    services, clock, _ = demo
    clock.now += timedelta(minutes=7)
    report = services.report(services.config.team("security"), SCORE)
    assert report.fresh and [k.as_of for k in report.kpis] == [clock.now] * 2


def test_the_change_against_7_days_ago_waits_for_a_reading_of_the_local_day_a_week_back(demo):
    """Customer (New York): a reading late on the 19th, under 7 x 24 h before 10:00 on the 26th, is of the day a
    week back. Security (Kolkata): its oldest reading is 6 days old, so no change against 7 days ago yet."""
    services, clock, _ = demo
    week_back = clock.now - timedelta(days=7) + timedelta(hours=13)  # 23:00 on the 19th, New York time
    services.store.add_readings(
        [
            Reading("customer", "open-issues", week_back, SCORE, {"Critical": 3}, 30.0),
            Reading("security", "open-findings", clock.now - timedelta(days=6), SCORE, {"High": 2}, 10.0),
        ]
    )
    customer = services.report(services.config.team("customer"), SCORE)
    assert customer.kpis[0].score.index == 85 and customer.kpis[0].score.week_change == 55
    assert "vs 7 days ago" in text_of(team_message(customer, refresh_function=None))
    security = services.report(services.config.team("security"), SCORE)
    assert security.kpis[0].score.week_change is None
    assert "vs 7 days ago" not in text_of(team_message(security, refresh_function=None))


def post(services, team, slot):
    """A scheduled post of ``team`` for ``slot``: its readings, then its delivery."""
    report = services.report(team, POST, slot=slot)
    services.store.record_delivery(team.id, slot, "log", "delivered", slot + timedelta(seconds=6))
    return report


def test_the_next_card_compares_with_the_posts_reading_read_or_stale(demo):
    services, clock, tmp_path = demo
    team = services.config.team("customer")
    slot = clock.now
    post(services, team, slot)
    clock.now += timedelta(hours=1)
    fresh = services.report(team, SCORE).kpis[0]
    assert (fresh.since_post, fresh.previous_at, fresh.score.change) == (True, slot, 0)
    (tmp_path / "demo-issues.csv").unlink()
    clock.now += timedelta(minutes=1)
    stale = services.report(team, SCORE).kpis[0]
    assert stale.stale_reason and stale.as_of == slot + timedelta(hours=1)
    assert (stale.since_post, stale.previous_at, stale.score.change) == (True, slot, 0)
    assert "vs last post" in text_of(team_message(services.report(team, SCORE), refresh_function=None))


def test_a_cached_report_for_a_slot_compares_with_the_post_before_that_slot(demo):
    """Whatever was posted after it; the KPI's young stored reading is shown, not read again."""
    services, clock, _ = demo
    team = services.config.team("customer")
    first, second = clock.now - timedelta(days=1), clock.now - timedelta(seconds=30)
    for slot in (first, second):
        clock.now = slot
        post(services, team, slot)
    clock.now = second + timedelta(seconds=30)

    kpi = services.report(team, POST, slot=second, cached=True, record=False).kpis[0]

    assert kpi.cached and kpi.as_of == second
    assert (kpi.since_post, kpi.previous_at) == (True, first)


class NoValueSource:
    """A source that answers a value KPI with counts but no value."""

    service = "The valueless service"

    def fetch(self, query, category, deadline: Deadline, wanted: Wanted) -> FetchResult:
        return FetchResult(counts={}, plan="read", calls=1)


def test_a_value_kpi_answered_without_a_value_is_stale_with_the_reason(demo):
    services, _, _ = demo
    services.reporter.sources = {**services.sources, "demo": NoValueSource()}
    report = services.report(services.config.team("performance"), SCORE)
    [latency] = [k for k in report.kpis if k.kpi.id == "search-p95"]
    assert latency.score is None and latency.stale_reason == "demo gave no value for the value KPI search-p95"
    assert "demo gave no value for the value KPI search-p95" in text_of(team_message(report, refresh_function=None))


def test_an_alert_check_reads_the_new_items_of_its_categories_past_a_young_reading(demo):
    """The team's alerts list new Critical items: a KPI given a time in ``new_after`` is read again, though its
    stored reading is young, and lists the items created after that time; a KPI given none lists nothing."""
    services, clock, _ = demo
    team = services.config.team("customer")
    team = team.model_copy(update={"alerts": AlertSettings(new_items=["Critical"])})
    services.report(team, SCORE)
    clock.now += timedelta(seconds=30)
    after = datetime(2026, 9, 20, 12, 0, tzinfo=UTC)  # ISS-0015 and ISS-0011 are older; two Critical ones newer

    checked = services.report(team, SCORE, cached=True, new_after={"open-issues": after}).kpis[0]

    assert not checked.cached and checked.as_of == clock.now
    assert [i.title for i in checked.fetch.new_items] == ["Mobile app is slow", "Billing hangs on save"]
    assert checked.fetch.new_total == 2
    unasked = services.report(team, SCORE, cached=True, new_after={}).kpis[0]
    assert unasked.cached and unasked.fetch.new_items == ()


def test_a_team_whose_schedule_was_removed_no_longer_speaks_of_its_last_post(demo):
    """Its posts stay in the store, but its card compares with an earlier day and counts nothing as new since."""
    services, clock, _ = demo
    team = services.config.team("customer")
    slot = clock.now
    post(services, team, slot)
    clock.now += timedelta(days=1)
    unscheduled = team.model_copy(update={"schedule": None})

    report = services.report(unscheduled, SCORE)

    kpi = report.kpis[0]
    assert (kpi.since_post, kpi.previous_at, kpi.new_since) == (False, slot, None)
    assert kpi.fetch.created_since is None and kpi.fetch.closed_since is None
    assert "since last post" not in text_of(team_message(report, refresh_function=None))
    scheduled = services.report(team, SCORE, record=False)
    assert (scheduled.kpis[0].since_post, scheduled.kpis[0].new_since) == (True, slot)
    assert "since last post" in text_of(team_message(scheduled, refresh_function=None))
