"""One KPI's alert as a state machine: a table of allowed transitions and one function that applies an event.

Pure: no store, no clock, no I/O. The caller gives each check's outcome (a
`Reading` or a `Failed` read) with its time, the KPI's `Levels` and the team's
`Policy`; `apply` returns the new `KpiAlert` with the transitions and notices
the event caused.

The states, in words:

- ``normal``: the KPI is not in an alerting status (or it is, but alerts began
  that way and no crossing has been seen: see *baseline* below);
- ``pending``: it crossed into an alerting status, for fewer than ``pending``
  consecutive checks so far;
- ``firing``: it stayed there ``pending`` checks in a row: the Space was told;
- ``recovering``: a firing KPI is back out of the alerting status, but not yet
  at ``recover_at`` (hysteresis: a value wobbling around the line stays one
  incident);
- ``no-data``: ``no_data_after`` checks in a row could not read it; the state it
  had is kept underneath and taken up again by the next reading.

Rules that hold whatever the series:

- **No alert on a first reading** (of a team, or after its thresholds change):
  the status it shows is taken as the baseline. A KPI already in trouble then
  is ``firing`` without an announcement: no alert, no reminder, no resolve for
  it; the first alert comes from a crossing seen between two checks.
- **A failed or stale read never resolves anything** and never counts towards
  ``pending``: it only counts towards ``no_data_after``.
- A threshold change re-judges the last value without a burst: at most one
  notice (the resolve of an announced alert the new levels no longer see).
- ``repeat`` reminds while firing (or recovering), counted from the last notice
  of the incident; whole days keep the local time across a DST change.
- An escalation (warning to bad, with ``on: [warning, bad]``) needs ``pending``
  checks too and is told as a new alert in the same incident.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from bot.alert_settings import AlertSettings, Level
from scoring import KpiRule, Status
from scoring.index import judge


class State(StrEnum):
    """Where a KPI's alert stands."""

    NORMAL = "normal"
    PENDING = "pending"
    FIRING = "firing"
    RECOVERING = "recovering"
    NO_DATA = "no-data"


class Move(StrEnum):
    """What one check says, once judged against the levels and the counters."""

    WORSE = "worse"
    """In an alerting status worse than the alert's own, fewer than ``pending`` checks in a row."""
    CONFIRMED = "confirmed"
    """In an alerting status worse than the alert's own for ``pending`` checks in a row."""
    HOLD = "hold"
    """In an alerting status no worse than the firing alert's."""
    BAND = "band"
    """Out of every alerting status, not yet at ``recover_at``."""
    GOOD = "good"
    """At or better than ``recover_at``."""
    FAILED = "failed"
    """Could not read, fewer than ``no_data_after`` checks in a row."""
    DARK = "dark"
    """Could not read for ``no_data_after`` checks in a row."""
    READ = "read"
    """A reading after no data: the state underneath is taken up again."""
    BASELINE = "baseline"
    """A first reading, or the last value under new thresholds: judged without notice."""
    REMIND = "remind"
    """A firing alert's last notice is ``repeat`` old: the state stays, the Space is reminded."""


class Kind(StrEnum):
    """What a notice says."""

    FIRE = "fire"
    RESOLVE = "resolve"
    REMIND = "remind"
    CANNOT_READ = "cannot-read"
    READABLE = "readable"


_N, _P, _F, _R, _D = State.NORMAL, State.PENDING, State.FIRING, State.RECOVERING, State.NO_DATA
TRANSITIONS: Mapping[tuple[State, Move], State] = {
    (_N, Move.WORSE): _P,
    (_N, Move.CONFIRMED): _F,
    (_N, Move.BAND): _N,
    (_N, Move.GOOD): _N,
    (_P, Move.WORSE): _P,
    (_P, Move.CONFIRMED): _F,
    (_P, Move.BAND): _N,
    (_P, Move.GOOD): _N,
    (_F, Move.WORSE): _F,
    (_F, Move.CONFIRMED): _F,
    (_F, Move.HOLD): _F,
    (_F, Move.BAND): _R,
    (_F, Move.GOOD): _N,
    (_R, Move.WORSE): _F,
    (_R, Move.CONFIRMED): _F,
    (_R, Move.HOLD): _F,
    (_R, Move.BAND): _R,
    (_R, Move.GOOD): _N,
    (_F, Move.REMIND): _F,
    (_R, Move.REMIND): _R,
    **{(state, Move.FAILED): state for state in (_N, _P, _F, _R, _D)},
    **{(state, Move.DARK): _D for state in (_N, _P, _F, _R)},
}
"""Every allowed transition: (state, move) → next state; a baseline and a read after no-data are below."""
BASELINE: Mapping[State, tuple[State, ...]] = {_N: (_N, _F), _P: (_N, _F), _F: (_N, _F, _R), _R: (_N, _F, _R)}
"""Where a baseline may lead: the value decides (`_baseline`); only an announced alert stays firing or recovering."""
READ_AFTER_NO_DATA = (_N, _P, _F, _R)
"""A reading after no-data takes up the state underneath (then applies the reading to it)."""
NOTIFY: Mapping[tuple[State, Move, State], Kind] = {
    (_N, Move.CONFIRMED, _F): Kind.FIRE,
    (_P, Move.CONFIRMED, _F): Kind.FIRE,
    (_F, Move.CONFIRMED, _F): Kind.FIRE,
    (_R, Move.CONFIRMED, _F): Kind.FIRE,
    (_F, Move.GOOD, _N): Kind.RESOLVE,
    (_R, Move.GOOD, _N): Kind.RESOLVE,
    (_F, Move.BASELINE, _N): Kind.RESOLVE,
    (_R, Move.BASELINE, _N): Kind.RESOLVE,
    **{(state, Move.DARK, _D): Kind.CANNOT_READ for state in (_N, _P, _F, _R)},
}
"""The transitions a Space hears of (resolves only of announced alerts); reminders and ``readable`` come on top."""
_RANK: Mapping[Level | None, int] = {None: 0, "warning": 1, "bad": 2}


@dataclass(frozen=True)
class Levels:
    """A KPI's thresholds as its alert judges them."""

    target: float
    warning: float
    lower_is_better: bool
    on: tuple[Level, ...]
    recover: float

    @classmethod
    def of(cls, target: float, warning: float, lower_is_better: bool, settings: AlertSettings) -> Levels:
        """The levels of a KPI under the team's alert settings."""
        recover = settings.recover_at
        value = target if recover == "target" else warning if recover == "warning" else float(recover)
        return cls(target, warning, lower_is_better, tuple(sorted(settings.on, key=_RANK.__getitem__)), value)

    def level(self, index: float) -> Level | None:
        """The worst alerting status ``index`` is in (None: none of them)."""
        status = self.status(index)
        reached = {Status.BAD: ("bad", "warning"), Status.WARNING: ("warning",)}.get(status, ())
        return next((level for level in ("bad", "warning") if level in reached and level in self.on), None)

    def status(self, index: float) -> Status:
        """The KPI's status at ``index``."""
        return judge(index, KpiRule({}, self.target, self.warning, self.lower_is_better))

    def recovered(self, index: float) -> bool:
        """Whether ``index`` is at or better than ``recover_at``."""
        return index <= self.recover if self.lower_is_better else index >= self.recover

    @property
    def key(self) -> str:
        """What identifies these levels: a change re-judges the KPI (a baseline)."""
        return f"{self.target:g}/{self.warning:g}/{int(self.lower_is_better)}/{','.join(self.on)}/{self.recover:g}"


@dataclass(frozen=True)
class Policy:
    """A team's alert settings as the machine needs them."""

    pending: int
    no_data_after: int
    repeat: timedelta
    zone: ZoneInfo

    @classmethod
    def of(cls, settings: AlertSettings, zone: ZoneInfo) -> Policy:
        """The policy of a team's ``alerts`` settings in its zone."""
        return cls(settings.pending, settings.no_data_after, settings.repeat, zone)

    def next_reminder(self, last: datetime) -> datetime | None:
        """When a reminder falls due after a notice at ``last`` (None: never); whole days keep the local time."""
        if not self.repeat:
            return None
        if self.repeat % timedelta(days=1):
            return last + self.repeat
        return (last.astimezone(self.zone) + self.repeat).astimezone(UTC)


@dataclass(frozen=True)
class Reading:
    """A check that read the KPI: its index at ``at``."""

    at: datetime
    index: float


@dataclass(frozen=True)
class Failed:
    """A check that could not read the KPI (a failed or stale read), with why."""

    at: datetime
    reason: str


Event = Reading | Failed


@dataclass(frozen=True)
class KpiAlert:
    """One KPI's alert state, as stored between checks."""

    state: State = State.NORMAL
    since: datetime | None = None
    """When the current state began (None: never checked)."""
    level: Level | None = None
    """The firing alert's status (firing, recovering, or under no-data)."""
    streak: int = 0
    """Consecutive checks in an alerting status worse than ``level``."""
    streak_level: Level | None = None
    """The best status those checks shared (the one that fires)."""
    failures: int = 0
    """Consecutive checks that could not read."""
    held: State | None = None
    """Under no-data: the state before it."""
    incident: datetime | None = None
    """When the firing alert was first told (None: not told, a baseline)."""
    last_notice: datetime | None = None
    """The incident's last notice (fire, escalation, reminder): reminders count from it."""
    index: float | None = None
    """The last value read."""
    levels: str | None = None
    """`Levels.key` of the thresholds the state was judged with."""
    came_from: str | None = None
    """While worse checks add up: the status before the first of them (what an alert says it crossed from)."""

    @property
    def announced(self) -> bool:
        """Whether the Space was told of the current firing alert."""
        return self.incident is not None


@dataclass(frozen=True)
class Transition:
    """A change of state (or a notice without one, e.g. a reminder), and why."""

    at: datetime
    before: State
    after: State
    move: Move
    index: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Notice:
    """What a Space is to hear: one per notifying transition."""

    kind: Kind
    at: datetime
    level: Level | None
    index: float | None
    incident: datetime | None
    """When the incident was first told (its thread); for cannot-read and readable, when reading stopped."""
    fired_for: timedelta | None = None
    """A resolve's time since the alert fired."""
    reason: str | None = None
    came_from: str | None = None
    """An alert's status before the crossing (``good``, ``warning``): the reading before the first worse one."""


@dataclass(frozen=True)
class Step:
    """What applying one event gave: the new state, its transitions, its notices."""

    alert: KpiAlert
    transitions: tuple[Transition, ...] = ()
    notices: tuple[Notice, ...] = field(default_factory=tuple)


def apply(alert: KpiAlert, event: Event, levels: Levels, policy: Policy) -> Step:
    """The alert after ``event``: a first reading or new thresholds are a baseline first, then the move."""
    if isinstance(event, Failed):
        return _failed(alert, event, policy)
    steps: list[Step] = []
    if alert.state is State.NO_DATA:
        steps.append(_readable(alert, event))
        alert = steps[-1].alert
    if alert.since is None or alert.levels != levels.key:
        steps.append(_baseline(alert, event, levels))
    else:
        steps.append(_reading(alert, event, levels, policy))
    return Step(
        steps[-1].alert,
        tuple(t for s in steps for t in s.transitions),
        tuple(n for s in steps for n in s.notices),
    )


def allowed(before: State, move: Move, after: State) -> bool:
    """Whether the table allows ``before`` → ``after`` on ``move``."""
    if move is Move.BASELINE:
        return after in BASELINE.get(before, ())
    if move is Move.READ:
        return before is State.NO_DATA and after in READ_AFTER_NO_DATA
    return TRANSITIONS.get((before, move)) is after


def _step(
    alert: KpiAlert, move: Move, after: State, at: datetime, value: float | None, reason: str | None, **changes: Any
) -> Step:
    """Move ``alert`` to ``after`` (checked against the table), with the notice the table names, if any."""
    before = alert.state
    if not allowed(before, move, after):
        raise ValueError(f"no transition {before} → {after} on {move}")
    new = replace(alert, state=after, since=alert.since if after is before and alert.since else at, **changes)
    kind = NOTIFY.get((before, move, after))
    if kind is Kind.RESOLVE and not alert.announced:
        kind = None  # a baseline alert was never told: its end is not either
    notices: tuple[Notice, ...] = ()
    if kind is Kind.FIRE:
        incident = alert.incident or at
        new = replace(new, incident=incident, last_notice=at)
        notices = (Notice(kind, at, new.level, value, incident, came_from=new.came_from),)
    elif kind is Kind.RESOLVE:
        assert alert.incident  # noqa: S101 (announced, checked above)
        notices = (Notice(kind, at, alert.level, value, alert.incident, at - alert.incident, reason),)
    elif kind is Kind.CANNOT_READ:
        notices = (Notice(kind, at, alert.level, alert.index, at, reason=reason),)
    changed = after is not before or move in (Move.CONFIRMED, Move.BASELINE)
    transitions = (Transition(at, before, after, move, value, reason),) if changed else ()
    return Step(new, transitions, notices)


def _baseline(alert: KpiAlert, event: Reading, levels: Levels) -> Step:
    """A first reading, or the last value judged again under changed thresholds: never an alert."""
    level = levels.level(event.index)
    base: dict[str, Any] = {"index": event.index, "levels": levels.key, "failures": 0}
    base |= {"streak": 0, "streak_level": None, "came_from": None}
    if alert.since is None:  # the very first reading: no transition to tell, only where it starts
        after = State.FIRING if level else State.NORMAL
        new = replace(alert, state=after, since=event.at, level=level, **base)
        return Step(new, (Transition(event.at, State.NORMAL, after, Move.BASELINE, event.index, "first reading"),))
    why = "thresholds changed"
    told = alert.state in (_F, _R) and alert.announced
    if level is not None:  # in trouble under the new levels: an announced alert goes on, any other is a baseline
        changes = {"level": level} if told else {"level": level, "incident": None, "last_notice": None}
        return _step(alert, Move.BASELINE, _F, event.at, event.index, why, **changes, **base)
    if told and not levels.recovered(event.index):
        return _step(alert, Move.BASELINE, _R, event.at, event.index, why, **base)
    cleared = {"level": None, "incident": None, "last_notice": None}
    return _step(alert, Move.BASELINE, _N, event.at, event.index, why, **cleared, **base)


def _rank(level: Level | None) -> int:
    return _RANK[level]


def _reading(alert: KpiAlert, event: Reading, levels: Levels, policy: Policy) -> Step:
    level = levels.level(event.index)
    counters: dict[str, Any] = {"index": event.index, "failures": 0}
    if level is not None and _rank(level) > _rank(alert.level if alert.state in (_F, _R) else None):
        streak_level = level if alert.streak_level is None else min(level, alert.streak_level, key=_rank)
        streak = alert.streak + 1
        came_from = alert.came_from if alert.streak else _came_from(alert, levels)
        move = Move.CONFIRMED if streak >= policy.pending else Move.WORSE
        if move is Move.CONFIRMED:
            counters |= {"level": streak_level, "streak": 0, "streak_level": None, "came_from": came_from}
        else:
            counters |= {"streak": streak, "streak_level": streak_level, "came_from": came_from}
    else:
        counters |= {"streak": 0, "streak_level": None, "came_from": None}
        if level is not None:
            move = Move.HOLD
        elif levels.recovered(event.index):
            move = Move.GOOD
        else:
            move = Move.BAND
    after = TRANSITIONS[(alert.state, move)]
    if after is _N:
        counters |= {"level": None, "incident": None, "last_notice": None}
    step = _step(alert, move, after, event.at, event.index, None, **counters)
    return _remind(step, event, policy) if not step.notices else step


def _came_from(alert: KpiAlert, levels: Levels) -> str | None:
    """The status a crossing starts from: the firing alert's, else the last reading's."""
    if alert.state in (_F, _R) and alert.level:
        return alert.level
    return str(levels.status(alert.index)) if alert.index is not None else None


def _remind(step: Step, event: Reading, policy: Policy) -> Step:
    """A reminder, when an announced alert is still on and the last notice is ``repeat`` old."""
    alert = step.alert
    if alert.state not in (_F, _R) or not alert.announced or alert.last_notice is None:
        return step
    due = policy.next_reminder(alert.last_notice)
    if due is None or event.at < due:
        return step
    notice = Notice(Kind.REMIND, event.at, alert.level, event.index, alert.incident)
    transition = Transition(event.at, alert.state, alert.state, Move.REMIND, event.index, "reminder")
    return Step(replace(alert, last_notice=event.at), (*step.transitions, transition), (*step.notices, notice))


def _failed(alert: KpiAlert, event: Failed, policy: Policy) -> Step:
    """A read that failed: counts towards no-data, changes nothing else."""
    failures = alert.failures + 1
    if alert.state is State.NO_DATA or failures < policy.no_data_after:
        return Step(replace(alert, failures=failures))
    return _step(alert, Move.DARK, _D, event.at, None, event.reason, failures=failures, held=alert.state)


def _readable(alert: KpiAlert, event: Reading) -> Step:
    """No-data ends with a reading: told (it was), and the state underneath taken up again."""
    held = alert.held or State.NORMAL
    new = replace(alert, state=held, since=event.at, held=None, failures=0)
    notice = Notice(Kind.READABLE, event.at, alert.level, event.index, alert.since)
    return Step(new, (Transition(event.at, State.NO_DATA, held, Move.READ, event.index),), (notice,))
