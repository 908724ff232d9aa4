"""One check of a team: reads become events, a cached reading is judged once, ids are stable and short."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.alert_settings import AlertSettings
from bot.alerts.check import (
    KpiRead,
    alert_of,
    check_at,
    judge,
    message_id_of,
    notice_id,
    notice_rows,
    row_of,
    thread_key,
    transition_rows,
)
from bot.alerts.machine import Kind, KpiAlert, State
from bot.config import DEMO_CONFIG, load_config

TEAM = load_config(DEMO_CONFIG).teams[0]
KPI = TEAM.kpis[0]
ZONE = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 11, 9, 9, 0, tzinfo=UTC)
SETTINGS = AlertSettings(pending=1, quiet_hours="20:00-08:00")
BAD = KPI.warning + 10


def run(reads_by_check):
    stored: dict = {}
    outcomes = []
    for n, reads in enumerate(reads_by_check):
        now = T0 + n * timedelta(minutes=15)
        for outcome in judge(TEAM, SETTINGS, ZONE, now, reads, stored):
            outcomes.append(outcome)
            fields = row_of(outcome.after, outcome.read_at)
            stored[outcome.kpi_id] = (alert_of(fields), fields["read_at"])
    return stored, outcomes


def test_the_check_time_is_the_last_multiple_of_check_every():
    assert check_at(datetime(2026, 11, 9, 9, 14, 59, tzinfo=UTC), timedelta(minutes=15)) == T0
    assert check_at(datetime(2026, 11, 9, 10, 0, tzinfo=ZONE), timedelta(minutes=15)) == T0
    seven = timedelta(minutes=7)
    odd = check_at(T0 + timedelta(minutes=3), seven)
    assert (odd - datetime(1970, 1, 1, tzinfo=UTC)) % seven == timedelta(0) and timedelta(0) <= T0 + timedelta(
        minutes=3
    ) - odd < seven


def test_a_cached_reading_already_judged_is_not_judged_again():
    first = KpiRead(KPI.id, 0.0, T0)
    bad = KpiRead(KPI.id, BAD, T0 + timedelta(minutes=15))
    stored, outcomes = run([[first], [bad], [bad], [bad]])  # the same reading shown from the cache
    assert len(outcomes) == 2 and [n.kind for o in outcomes for n in o.notices] == [Kind.FIRE]
    assert stored[KPI.id][0].state is State.FIRING and stored[KPI.id][1] == bad.read_at


def test_a_failed_read_is_a_failed_event_and_keeps_the_last_reading_time():
    read = KpiRead(KPI.id, 0.0, T0)
    stored, outcomes = run([[read]] + [[KpiRead(KPI.id, None, None, "HTTP 503")]] * 3)
    assert stored[KPI.id][0].state is State.NO_DATA and stored[KPI.id][1] == T0
    assert outcomes[-1].notices[0].reason == "HTTP 503"


def test_the_stored_row_gives_back_the_same_alert():
    alert = KpiAlert(State.NO_DATA, T0, "bad", 1, "bad", 2, State.FIRING, T0, T0, 12.5, "k", "warning")
    assert alert_of(row_of(alert, T0)) == alert


def test_notice_rows_carry_ids_release_times_and_threads():
    stored, outcomes = run([[KpiRead(KPI.id, 0.0, T0)], [KpiRead(KPI.id, BAD, T0 + timedelta(minutes=15))]])
    outcome = outcomes[-1]
    [row] = notice_rows(TEAM, SETTINGS, ZONE, outcome)
    assert row["id"] == f"{TEAM.id}/{KPI.id}/fire/20261109T091500" == notice_id(TEAM.id, KPI.id, outcome.notices[0])
    assert row["release_at"] == row["at"] and row["held"] is False
    late = judge(TEAM, SETTINGS, ZONE, datetime(2026, 11, 9, 22, 0, tzinfo=UTC), [KpiRead(KPI.id, 0.0, None)], stored)
    [held] = notice_rows(TEAM, SETTINGS, ZONE, late[0])
    assert held["kind"] == "resolve" and held["held"] is True
    assert held["release_at"] == datetime(2026, 11, 10, 7, 0, tzinfo=UTC)  # 08:00 in Berlin
    assert [t["after"] for t in transition_rows(outcome)] == ["firing"]


def test_message_ids_and_thread_keys_are_what_chat_accepts():
    ids = [f"{TEAM.id}/{KPI.id}/fire/2026110{n}T091500" for n in range(3)]
    message = message_id_of(ids)
    assert message == message_id_of(list(reversed(ids))) != message_id_of(ids[:2])
    assert message.startswith("client-alert-") and len(message) <= 63 and message == message.lower()
    assert thread_key(TEAM.id, KPI.id, T0) == f"alert-{TEAM.id}-{KPI.id}-20261109090000"
