"""The alert state machine: scripted series (flapping, spikes, failed reads, DST) and the table's invariants."""

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.alert_settings import AlertSettings, QuietHours
from bot.alerts.machine import (
    TRANSITIONS,
    Failed,
    Kind,
    KpiAlert,
    Levels,
    Move,
    Notice,
    Policy,
    Reading,
    State,
    allowed,
    apply,
)
from bot.alerts.quiet import inside, release_at

BERLIN = ZoneInfo("Europe/Berlin")
CHECK = timedelta(minutes=15)
TARGET, WARNING = 40.0, 70.0


def levels(settings: AlertSettings, target: float = TARGET, warning: float = WARNING) -> Levels:
    return Levels.of(target, warning, True, settings)


def run(series, settings: AlertSettings, start: datetime, zone: ZoneInfo = BERLIN, alert: KpiAlert | None = None):
    """Apply ``series`` (an index, or None for a failed read) one check apart; the alert and every notice."""
    alert = alert or KpiAlert()
    policy, judged = Policy.of(settings, zone), levels(settings)
    notices: list[Notice] = []
    for n, value in enumerate(series):
        at = start + n * CHECK
        event = Failed(at, "HTTP 503") if value is None else Reading(at, value)
        step = apply(alert, event, judged, policy)
        for t in step.transitions:
            assert allowed(t.before, t.move, t.after)
        alert = step.alert
        notices += step.notices
    return alert, notices


def kinds(notices) -> Counter:
    return Counter(n.kind for n in notices)


START = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
TWO_DAYS = int(timedelta(days=2) / CHECK)


@pytest.mark.parametrize("pending", [1, 2])
def test_an_index_oscillating_across_the_warning_line_for_two_days_alerts_once_and_resolves_once(pending):
    rising = [30.0] * 8 + [80.0, 80.0]
    wobble = [75.0 if n % 2 else 65.0 for n in range(TWO_DAYS - len(rising) - 4)]
    series = rising + wobble + [35.0] * 4
    assert len(series) == TWO_DAYS
    alert, notices = run(series, AlertSettings(pending=pending, recover_at="target", repeat=timedelta(0)), START)
    assert kinds(notices) == {Kind.FIRE: 1, Kind.RESOLVE: 1}
    fire, resolve = notices
    assert fire.at == START + (7 + pending) * CHECK and fire.level == "bad"
    assert resolve.incident == fire.at and resolve.fired_for == resolve.at - fire.at
    assert resolve.at == START + (TWO_DAYS - 4) * CHECK
    assert alert.state is State.NORMAL


def test_without_hysteresis_the_same_wobble_flaps():
    series = [30.0] * 8 + [75.0 if n % 2 else 65.0 for n in range(40)]
    _, notices = run(series, AlertSettings(pending=1, recover_at="warning", repeat=timedelta(0)), START)
    assert kinds(notices)[Kind.FIRE] == 20  # what recover_at: target prevents


def test_pending_two_lets_a_one_check_spike_pass_and_fires_on_the_second_bad_check():
    settings = AlertSettings(pending=2)
    _, notices = run([30.0, 30.0, 90.0, 30.0, 30.0, 90.0, 60.0, 90.0], settings, START)
    assert notices == []
    alert, notices = run([30.0, 90.0, 90.0], settings, START)
    assert [n.kind for n in notices] == [Kind.FIRE] and alert.state is State.FIRING
    assert notices[0].at == START + 2 * CHECK


def test_a_pending_alert_shows_the_state_before_it_fires():
    alert, _ = run([30.0, 90.0], AlertSettings(pending=3), START)
    assert alert.state is State.PENDING and alert.streak == 1 and alert.since == START + CHECK


def test_the_first_reading_never_alerts_even_in_trouble_nor_does_the_end_of_that_trouble():
    alert, notices = run([95.0, 95.0, 95.0], AlertSettings(pending=1), START)
    assert notices == [] and alert.state is State.FIRING and not alert.announced
    alert, notices = run([30.0, 95.0], AlertSettings(pending=1), START + timedelta(hours=1), alert=alert)
    assert [n.kind for n in notices] == [Kind.FIRE]  # the first crossing seen between two checks


def test_failed_reads_never_resolve_and_tell_once_that_the_kpi_cannot_be_read():
    settings = AlertSettings(pending=1, no_data_after=3, repeat=timedelta(0))
    series = [30.0, 90.0, *[None] * 10, 20.0]
    alert, notices = run(series, settings, START)
    assert [n.kind for n in notices] == [Kind.FIRE, Kind.CANNOT_READ, Kind.READABLE, Kind.RESOLVE]
    cannot = notices[1]
    assert cannot.at == START + 4 * CHECK and cannot.reason == "HTTP 503"
    assert notices[2].incident == cannot.at  # the no-data incident's thread
    assert notices[3].fired_for == 11 * CHECK and alert.state is State.NORMAL


def test_stale_reads_leave_a_firing_alert_firing_under_no_data():
    alert, notices = run([30.0, 90.0, None, None, None], AlertSettings(pending=1), START)
    assert alert.state is State.NO_DATA and alert.held is State.FIRING and alert.announced
    assert kinds(notices) == {Kind.FIRE: 1, Kind.CANNOT_READ: 1}


def test_a_failed_read_does_not_break_or_count_towards_pending():
    _, notices = run([30.0, 90.0, None, 90.0], AlertSettings(pending=2, no_data_after=5), START)
    assert [n.kind for n in notices] == [Kind.FIRE]


def test_recovering_lies_between_the_alert_line_and_recover_at_and_a_relapse_is_the_same_incident():
    alert, notices = run([30.0, 90.0, 60.0], AlertSettings(pending=1), START)
    assert alert.state is State.RECOVERING
    alert, more = run([90.0, 39.0], AlertSettings(pending=1), START + timedelta(hours=1), alert=alert)
    assert [n.kind for n in notices + more] == [Kind.FIRE, Kind.RESOLVE]
    assert more[0].incident == notices[0].at


def test_escalation_from_warning_to_bad_is_told_in_the_same_incident():
    settings = AlertSettings(on=["warning", "bad"], pending=2, repeat=timedelta(0))
    _, notices = run([30.0, 50.0, 50.0, 90.0, 90.0, 50.0, 90.0, 30.0], settings, START)
    assert [(n.kind, n.level) for n in notices] == [
        (Kind.FIRE, "warning"),
        (Kind.FIRE, "bad"),
        (Kind.RESOLVE, "bad"),
    ]
    assert len({n.incident for n in notices}) == 1


def test_a_threshold_change_judges_again_without_a_burst():
    settings = AlertSettings(pending=1, repeat=timedelta(0))
    policy = Policy.of(settings, BERLIN)
    alert, _ = run([30.0, 90.0], settings, START)
    later = START + timedelta(hours=1)
    banded = apply(alert, Reading(later, 90.0), levels(settings, target=60, warning=100), policy)
    assert banded.notices == () and banded.alert.state is State.RECOVERING  # out of bad, not yet at target
    step = apply(alert, Reading(later, 90.0), levels(settings, target=95, warning=120), policy)
    assert [n.kind for n in step.notices] == [Kind.RESOLVE] and step.notices[0].reason == "thresholds changed"
    assert step.alert.state is State.NORMAL
    stricter = levels(settings, target=10, warning=20)
    quiet, _ = run([30.0], settings, START)
    step = apply(quiet, Reading(START + timedelta(hours=1), 30.0), stricter, policy)
    assert step.notices == () and step.alert.state is State.FIRING and not step.alert.announced


def test_reminders_keep_the_local_time_across_the_autumn_dst_change():
    settings = AlertSettings(pending=1, repeat=timedelta(days=1))
    start = datetime(2026, 10, 24, 9, 45, tzinfo=BERLIN)  # CEST; the clocks go back on the 25th at 03:00
    series = [30.0] + [90.0] * int(timedelta(days=3) / CHECK)
    _, notices = run(series, settings, start.astimezone(UTC))
    local = [(n.kind, n.at.astimezone(BERLIN).strftime("%d %H:%M")) for n in notices]
    assert local == [(Kind.FIRE, "24 10:00"), (Kind.REMIND, "25 10:00"), (Kind.REMIND, "26 10:00")]
    assert [n.at.astimezone(UTC).hour for n in notices] == [8, 9, 9]


def test_hourly_reminders_count_elapsed_time():
    settings = AlertSettings(pending=1, repeat=timedelta(hours=1))
    _, notices = run([30.0] + [90.0] * 9, settings, START)
    assert [n.at - START for n in notices] == [CHECK, 5 * CHECK, 9 * CHECK]


QUIET = QuietHours(time(20), time(8))


@pytest.mark.parametrize(
    ("due", "released"),
    [
        (datetime(2026, 10, 24, 23, 0, tzinfo=BERLIN), "2026-10-25 08:00 +0100"),  # autumn: the night has 13 hours
        (datetime(2027, 3, 27, 21, 0, tzinfo=BERLIN), "2027-03-28 08:00 +0200"),  # spring: 11 hours
        (datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN), "2026-10-25 08:00 +0100"),  # the repeated hour
        (datetime(2026, 10, 25, 7, 59, tzinfo=BERLIN), "2026-10-25 08:00 +0100"),
        (datetime(2026, 10, 25, 8, 0, tzinfo=BERLIN), "2026-10-25 08:00 +0100"),  # the end is outside
        (datetime(2026, 10, 25, 19, 59, tzinfo=BERLIN), "2026-10-25 19:59 +0100"),
        (datetime(2026, 10, 25, 20, 0, tzinfo=BERLIN), "2026-10-26 08:00 +0100"),
    ],
)
def test_quiet_hours_hold_a_notice_until_the_local_end_of_the_window(due, released):
    out = release_at(due.astimezone(UTC), QUIET, BERLIN)
    assert out.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M %z") == released
    assert not inside(out, QUIET, BERLIN)


def test_an_end_the_spring_change_skips_releases_just_after_the_gap():
    quiet = QuietHours(time(22), time(2, 30))
    out = release_at(datetime(2027, 3, 27, 23, 0, tzinfo=BERLIN), quiet, BERLIN)
    assert out == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)  # 03:30 CEST: 02:30 does not exist that night
    assert release_at(datetime(2027, 3, 28, 1, 0, tzinfo=UTC), quiet, BERLIN) == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)


def test_a_daytime_window_and_no_window():
    day = QuietHours(time(12), time(13))
    noon = datetime(2026, 6, 1, 12, 30, tzinfo=BERLIN)
    assert release_at(noon, day, BERLIN) == datetime(2026, 6, 1, 13, tzinfo=BERLIN)
    assert release_at(noon, None, BERLIN) == noon and not inside(noon, None, BERLIN)


def test_notices_of_a_night_are_released_together_at_its_end_across_dst():
    settings = AlertSettings(pending=1, repeat=timedelta(hours=2), quiet_hours="20:00-08:00")
    start = datetime(2026, 10, 24, 20, 0, tzinfo=BERLIN).astimezone(UTC)
    series = [30.0, 30.0, *[90.0] * 12, 30.0, *[None] * 40]
    _, notices = run(series, settings, start)
    release = Counter(release_at(n.at, settings.quiet_hours, BERLIN) for n in notices)
    assert kinds(notices) == {Kind.FIRE: 1, Kind.REMIND: 1, Kind.RESOLVE: 1, Kind.CANNOT_READ: 1}
    assert release == {datetime(2026, 10, 25, 7, 0, tzinfo=UTC): 4}  # 08:00 CET: one folded message


def test_the_table_has_no_way_out_of_no_data_but_a_reading():
    assert {after for (before, move), after in TRANSITIONS.items() if before is State.NO_DATA} == {State.NO_DATA}
    assert not allowed(State.NO_DATA, Move.GOOD, State.NORMAL)
    assert allowed(State.NO_DATA, Move.READ, State.FIRING)
    assert not allowed(State.NORMAL, Move.BASELINE, State.RECOVERING)
