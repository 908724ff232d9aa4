"""Random series through the alert state machine (hypothesis's stateful testing): the invariants hold whatever
the readings, failures, threshold changes, settings, zones and DST changes."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from bot.alert_settings import AlertSettings
from bot.alerts.machine import Failed, Kind, KpiAlert, Levels, Policy, Reading, State, Step, allowed, apply
from bot.alerts.quiet import inside, release_at

CHECK = timedelta(minutes=15)
LEVELS = [(40.0, 70.0), (60.0, 100.0), (20.0, 30.0)]
STARTS = [
    datetime(2026, 10, 24, 18, 0, tzinfo=UTC),  # a day before Europe's autumn change
    datetime(2026, 10, 31, 18, 0, tzinfo=UTC),  # the day before America's
    datetime(2027, 3, 27, 12, 0, tzinfo=UTC),  # Europe's spring change
    datetime(2026, 6, 1, 0, 0, tzinfo=UTC),
]


@st.composite
def alert_settings(draw: st.DrawFn) -> AlertSettings:
    on = draw(st.sampled_from([["bad"], ["warning"], ["warning", "bad"]]))
    recover = draw(st.sampled_from(["target", 35.0] + (["warning"] if on == ["bad"] else [])))
    return AlertSettings(
        on=on,
        pending=draw(st.integers(1, 3)),
        recover_at=recover,
        repeat=draw(st.sampled_from([timedelta(0), timedelta(hours=1), timedelta(days=1)])),
        quiet_hours=draw(st.sampled_from([None, "20:00-08:00", "22:00-02:30", "12:00-13:00", "01:30-03:30"])),
        no_data_after=draw(st.integers(1, 4)),
    )


class AlertMachine(RuleBasedStateMachine):
    """One KPI's alert under random checks; a model of its incidents checks every notice."""

    @initialize(
        chosen=alert_settings(),
        zone=st.sampled_from(["Europe/Berlin", "America/New_York", "UTC"]),
        start=st.sampled_from(STARTS),
    )
    def begin(self, chosen: AlertSettings, zone: str, start: datetime) -> None:
        self.settings = chosen
        self.policy = Policy.of(chosen, ZoneInfo(zone))
        self.levels = Levels.of(*LEVELS[0], True, chosen)
        self.alert = KpiAlert()
        self.now = start
        self.seen: set[tuple[Kind, datetime, datetime | None]] = set()
        self.incident: datetime | None = None
        self.dark = False
        self.read_once = False

    def _apply(self, event: Reading | Failed) -> Step:
        step = apply(self.alert, event, self.levels, self.policy)
        for transition in step.transitions:
            assert allowed(transition.before, transition.move, transition.after)
        kinds = [n.kind for n in step.notices]
        assert len(kinds) == len(set(kinds)), "two notices of one kind from one check"
        assert len(step.notices) <= len(step.transitions), "a notice without a transition"
        for notice in step.notices:
            key = (notice.kind, notice.at, notice.incident)
            assert key not in self.seen, f"{key} told twice"
            self.seen.add(key)
            self._model(notice.kind, notice.incident)
            out = release_at(notice.at, self.settings.quiet_hours, self.policy.zone)
            assert out >= notice.at and not inside(out, self.settings.quiet_hours, self.policy.zone)
            if not inside(notice.at, self.settings.quiet_hours, self.policy.zone):
                assert out == notice.at
        self.alert = step.alert
        self.now += CHECK
        self.read_once = self.read_once or isinstance(event, Reading)
        return step

    def _model(self, kind: Kind, incident: datetime | None) -> None:
        """Incidents open with a fire and close with a resolve; no-data opens and closes likewise."""
        if kind is Kind.FIRE:
            assert self.incident in (None, incident), "a second incident while one is open"
            self.incident = incident
        elif kind in (Kind.RESOLVE, Kind.REMIND):
            assert self.incident is not None and incident == self.incident, f"{kind} of no open incident"
            if kind is Kind.RESOLVE:
                self.incident = None
        elif kind is Kind.CANNOT_READ:
            assert not self.dark
            self.dark = True
        else:
            assert self.dark
            self.dark = False

    @rule(value=st.sampled_from([5.0, 35.0, 39.0, 50.0, 65.0, 75.0, 90.0, 200.0]))
    def read(self, value: float) -> None:
        first = not self.read_once
        step = self._apply(Reading(self.now, value))
        if first:
            assert [n.kind for n in step.notices] in ([], [Kind.READABLE]), "an alert on a first reading"

    @rule()
    def fail(self) -> None:
        step = self._apply(Failed(self.now, "timeout"))
        assert [n.kind for n in step.notices] in ([], [Kind.CANNOT_READ]), "a failed read told something else"
        assert step.alert.state is not State.NORMAL or self.alert.state is State.NORMAL

    @rule(which=st.sampled_from(LEVELS), value=st.sampled_from([10.0, 50.0, 90.0]))
    def change_thresholds(self, which: tuple[float, float], value: float) -> None:
        changed = Levels.of(*which, True, self.settings)
        if changed.recover > changed.warning:  # a numeric recover_at past a KPI's line is refused at load
            return
        self.levels = changed
        step = self._apply(Reading(self.now, value))
        assert len([n for n in step.notices if n.kind is not Kind.READABLE]) <= 1, "a burst after a change"
        assert Kind.FIRE not in [n.kind for n in step.notices] or not step.transitions[-1].reason

    @rule(hours=st.integers(1, 30))
    def pause(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    @invariant()
    def counters_stay_in_range(self) -> None:
        if hasattr(self, "alert"):
            assert self.alert.streak < self.policy.pending
            assert (self.alert.state is State.NO_DATA) == self.dark
            assert (self.alert.state in (State.FIRING, State.RECOVERING) and self.alert.announced) or (
                self.incident is None or self.alert.state is State.NO_DATA
            )


AlertMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestAlertMachine = AlertMachine.TestCase
