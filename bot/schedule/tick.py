"""The scheduler tick: for each team, the latest due slot claimed once, read, posted, recorded.

One tick, whatever triggered it (the in-process ticker of ``serve``,
``GET /tasks/tick``, ``python -m bot tick``), does for each scheduled team,
teams side by side (``schedule.concurrency`` at a time):

1. slots that fell out of the grace period since the last tick without being
   started are recorded ``missed``, not sent late (slots older than the grace
   period before the team's first tick are not considered at all: they
   predate the scheduler); unfinished slots long past their grace period
   (twice the grace) are closed as missed too;
2. **no burst**: of the slots due within the grace period, and those left
   pending by earlier ticks, only the latest is claimed and posted; once it
   is delivered, failed or skipped, the older ones are recorded
   ``superseded``, never posted. This holds on a team's first tick, after a
   pause, after a schedule change and across retries: a pending slot older
   than a newer due one is superseded too. The full rule is in
   `bot.schedule.catchup`;
3. the claimer reads the team's KPIs and posts to every target not yet
   settled for that slot. A slot whose data could not be read, or whose post
   may succeed later (429, 5xx, timeouts), is given back and retried by the
   next ticks; a peer's ``Retry-After`` is kept with the slot, and no tick
   takes it up before then. Once the oldest waiting slot's grace period is
   over, the attempt is the last: it posts the marked "could not refresh"
   card (``on_failure: post_stale``) or records the slot skipped
   (``on_failure: skip``), or records it failed.

Exactly once, across any number of tick processes: a slot is claimed by one
of them (an atomic write in the store); a claim is a lease
(``schedule.lease_seconds``, longer than the deadline), checked and extended
before every HTTP request; superseding a slot is a conditional write that
never touches a slot another process holds. If a process dies mid-send, a
later tick takes the slot over and posts with the same ``messageId``, which
the Chat API deduplicates; a process that finds its claim taken over stops
and reports the slot ``lost``, never ``delivered``.

The tick's deadline (``schedule.deadline_seconds``) decides whether a team's
slot is *started*; a slot once started gets every target tried, each request
with its full timeout within the claim's lease, so a slow answer is not taken
for a failed post (and posted again by the next tick).

An unexpected error in one team's work is logged by its type only (its text
may hold a webhook URL) and gives the slot back for the next tick; the other
teams go on.

After the teams, every tick applies the store's retention (``history.keep_days``)
in one bounded batch: readings older than that are thinned to each KPI's last
one a day, older slot, delivery and outbox rows deleted.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from bot.alerts.push import PushedChecks
from bot.alerts.runner import CHECK, AlertOutcome, AlertRunner
from bot.config import ChatApiTarget, DeliveryTarget, LogTarget, TeamConfig, WebhookTarget
from bot.context import Services
from bot.delivery import Delivery, Post, live_message_id, message_id, target_key
from bot.errors import DeliveryError, ScorebotError
from bot.reports import ScanShare, TeamReport
from bot.schedule.catchup import Catchup
from bot.schedule.catchup import plan as plan_catchup
from bot.schedule.claim import Claim, ClaimLost
from bot.schedule.templates import thread_key
from bot.slots import slots_between
from bot.sources import Deadline
from bot.store import (
    CONCLUDED,
    DELIVERED,
    FAILED,
    MISSED,
    PENDING,
    POST,
    RETRY,
    SKIPPED,
    SNOOZED,
    SUPERSEDED,
    DeliveryRecord,
    SlotRun,
    TeamMark,
    to_utc,
)
from bot.team_settings import Snooze, TeamSettings

log = logging.getLogger(__name__)

PRUNE_BATCH = 5000
"""The most rows one tick removes from each table (retention), so pruning never holds posts up."""
BATCH_PER_THREAD = 4
"""A tick claims teams in batches of this many per thread: enough teams to read together, few enough to leave
the rest to other tick processes."""
MISSED_LOOKBACK = timedelta(days=1)
"""How far back a tick records missed slots after a long pause."""
LOST = "lost"
ERROR = "error"
NOT_REACHED = "not reached"
"""A team the tick's deadline came before: its due slot (if any) is left for the next tick."""


@dataclass(frozen=True)
class SlotOutcome:
    """What a tick did with one slot: delivered, failed, skipped, pending, missed, superseded, lost, error or
    not reached (the tick's deadline came first)."""

    team_id: str
    slot: datetime
    state: str
    detail: str | None = None


@dataclass(frozen=True)
class TeamPlan:
    """What a tick would do for one team (``tick --dry-run``)."""

    team_id: str
    catchup: Catchup
    missed: tuple[datetime, ...]
    targets: tuple[str, ...]
    first_tick: bool
    snoozed: tuple[datetime, ...] = ()
    """Slots the tick would record snoozed (the team's posts are snoozed), not recorded yet."""


@dataclass
class TickResult:
    """Everything one tick did."""

    now: datetime
    outcomes: list[SlotOutcome] = field(default_factory=list)
    alerts: list[AlertOutcome] = field(default_factory=list)
    """What the tick did about alerts (checks and notices)."""

    def count(self, state: str) -> int:
        """How many slots ended in ``state``."""
        return sum(1 for o in self.outcomes if o.state == state)

    @property
    def not_reached(self) -> list[str]:
        """The teams the tick's deadline came before, in configuration order."""
        return [o.team_id for o in self.outcomes if o.state == NOT_REACHED]

    def summary(self) -> str:
        """One line: counts per state, then the teams not reached, e.g.
        "2 delivered, 1 not reached; deadline reached before: ops"."""
        counts = Counter(o.state for o in self.outcomes)
        line = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "nothing due"
        if self.not_reached:
            line += f"; deadline reached before: {', '.join(self.not_reached)}"
        if self.alerts:
            alerts = Counter(o.state for o in self.alerts)
            line += "; alerts: " + ", ".join(f"{n} {state}" for state, n in sorted(alerts.items()))
        return line


@dataclass
class _Opened:
    """A team after the tick's first pass: the outcomes so far, and the slot it claimed with its catch-up
    (None: nothing to work)."""

    team: TeamConfig
    outcomes: list[SlotOutcome]
    claimed: tuple[Claim, Catchup] | None = None


@dataclass(frozen=True)
class _Clock:
    """The tick's ``now`` moving forward with the monotonic clock, and its deadline."""

    start: datetime
    started: float
    deadline: Deadline

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.started)


class Scheduler:
    """Runs ticks for one process; keeps its delivery pacing between ticks."""

    def __init__(self, services: Services, delivery: Delivery | None = None, owner: str | None = None) -> None:
        config = services.config
        self.services = services
        self.settings = config.schedule
        self.delivery = delivery or Delivery(
            config.chat,
            services.store,
            services.clock,
            base_dir=config.path.parent if config.path else None,
            pace_seconds=self.settings.pace_seconds,
        )
        self.owner = owner or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.alerts = self._alert_runner(cached=True)
        self.pushed = PushedChecks(self._alert_runner(cached=False), self.settings.deadline_seconds)
        """Checks a CRM asks for (``POST /tasks/changed``): they read afresh."""

    def _alert_runner(self, *, cached: bool) -> AlertRunner:
        services = self.services
        return AlertRunner(
            services.config,
            services.store,
            self.delivery,
            lambda team, scans, new_after: services.report(
                team, CHECK, record=True, cached=cached, scans=scans, new_after=new_after
            ),
            lambda teams: self._prefetch(teams, cached=cached),
            self.owner,
            lease_seconds=self.settings.lease_seconds,
            concurrency=self.settings.concurrency,
            teams=lambda now: [t.team for t in services.settings.teams() if not t.alerts_paused(now)],
        )

    def tick(self, now: datetime | None = None) -> TickResult:
        """Work every due slot of every scheduled team once, as of ``now`` (default: the services' clock).

        Teams go in batches of ``BATCH_PER_THREAD`` × ``schedule.concurrency``: a batch's due slots are
        claimed, its claimed teams' KPIs read (teams whose KPIs one scan answers share it, see
        `bot.reports.Reporter.prefetch`), posted and recorded, while the next batch is claimed. Other tick
        processes claim the teams this one has not reached yet.
        """
        start = to_utc(now or self.services.clock())
        clock = _Clock(start, time.monotonic(), Deadline.after(self.settings.deadline_seconds))
        teams = self._scheduled_teams()
        result = TickResult(clock.start)
        size = BATCH_PER_THREAD * self.settings.concurrency
        if teams:
            with ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="tick") as pool:
                work: list[Future[list[SlotOutcome]]] = []
                for first in range(0, len(teams), size):
                    batch = teams[first : first + size]
                    opened = list(pool.map(lambda team: self._team(team.team, clock, team.snooze), batch))
                    scans = self._prefetch([o.team for o in opened if o.claimed])
                    work += [pool.submit(self._work, o, clock, scans.get(o.team.id)) for o in opened]
                for done in work:
                    result.outcomes.extend(done.result())
        result.alerts = self.alerts.run(clock.now, clock.deadline)  # after the posts: an alert never delays one
        self.prune()
        return result

    def _prefetch(self, teams: list[TeamConfig], *, cached: bool = False) -> dict[str, dict[str, ScanShare]]:
        """The claimed teams' shared scans, started; none if planning them fails (each team then reads alone).
        ``cached``: leave out the KPIs a cached report shows from the store (`bot.reports.Reporter.prefetch`)."""
        try:
            return self.services.reporter.prefetch(teams, cached=cached) if teams else {}
        except Exception as exc:  # noqa: BLE001 (the teams still read one by one)
            _log_unexpected(exc, "shared scans not started")
            return {}

    def prune(self) -> dict[str, int]:
        """Retention (``history.keep_days``): one bounded batch a table, as of the services' clock (never a
        ``--now``, which may lie in the future); returns the rows removed by table, {} if the store failed."""
        keep_days = self.services.config.history.keep_days
        try:
            pruned = self.services.store.prune(self.services.clock(), keep_days, PRUNE_BATCH)
        except SQLAlchemyError as exc:
            log.error("retention: store unavailable (%s); nothing pruned", type(exc).__name__)
            return {}
        if any(pruned.values()):
            log.info("retention: removed %s", ", ".join(f"{n} {table}" for table, n in pruned.items() if n))
        return pruned

    def _team(self, team: TeamConfig, clock: _Clock, snooze: Snooze | None = None) -> _Opened:
        """The team's slots closed or superseded, and its due slot claimed (if any, and in time)."""
        if clock.deadline.expired():
            log.warning("team %s: tick deadline reached before this team; left for the next tick", team.id)
            return _Opened(
                team, [SlotOutcome(team.id, clock.start, NOT_REACHED, "the tick's deadline came before this team")]
            )
        try:
            return self._open_team(team, clock, snooze)
        except (ScorebotError, SQLAlchemyError) as exc:
            log.error("team %s: tick failed: %s", team.id, exc)
            return _Opened(team, [SlotOutcome(team.id, clock.start, ERROR, str(exc))])
        except Exception as exc:  # noqa: BLE001 (one team's fault must not stop the others)
            _log_unexpected(exc, "team %s: tick failed", team.id)
            return _Opened(team, [SlotOutcome(team.id, clock.start, ERROR, f"unexpected {type(exc).__name__}")])

    def _open_team(self, team: TeamConfig, clock: _Clock, snooze: Snooze | None) -> _Opened:
        store, now = self.services.store, clock.start
        grace = self._grace()
        snoozed = self._snoozed(team, snooze, now)
        # Slots the last tick saw as due but did not start are missed now; a first tick misses nothing.
        missed_detail = "not started within the grace period"
        missed, expired, runs = store.open_team(
            team.id,
            now,
            lambda mark: self._missed(team, mark, now),
            missed_detail,
            now - 2 * grace,
            "not completed within the grace period",
        )
        outcomes = [*snoozed, *(SlotOutcome(team.id, slot, MISSED, missed_detail) for slot in missed)]
        if expired:
            log.warning("team %s: %d unfinished slots gave up (grace period long over)", team.id, expired)
        catchup = self._catchup(team, now, runs)
        outcomes += self._supersede(team, catchup.outdated, now, "a newer slot was already posted")
        if catchup.wait_reason:
            log.info("team %s: left for a later tick: %s", team.id, catchup.wait_reason)
            return _Opened(team, outcomes)
        if catchup.work is None:
            return _Opened(team, outcomes)
        if clock.deadline.expired():
            log.warning("team %s: tick deadline reached; slot %s stays for the next tick", team.id, catchup.work)
            return _Opened(
                team, [*outcomes, SlotOutcome(team.id, catchup.work, NOT_REACHED, "the tick's deadline came first")]
            )
        claim = Claim(store, team.id, catchup.work, self.owner, self.settings.lease_seconds, clock.now)
        if not claim.take():
            return _Opened(team, outcomes)  # another tick got there first
        return _Opened(team, outcomes, (claim, catchup))

    def _work(self, opened: _Opened, clock: _Clock, scans: Mapping[str, ScanShare] | None) -> list[SlotOutcome]:
        """The claimed slot read, posted and recorded; the older slots it stands for superseded."""
        if opened.claimed is None:
            return opened.outcomes
        team, (claim, catchup) = opened.team, opened.claimed
        if clock.deadline.expired():
            log.warning("team %s: tick deadline reached; slot %s stays for the next tick", team.id, claim.slot)
            if not claim.give_back():
                return [*opened.outcomes, self._lost(claim, NOT_REACHED)]
            return [*opened.outcomes, SlotOutcome(team.id, claim.slot, NOT_REACHED, "the tick's deadline came first")]
        try:
            outcome = self._run_slot(
                team, claim, clock, retry=catchup.retry, last_attempt=catchup.last_attempt, scans=scans
            )
        except Exception as exc:  # noqa: BLE001 (given back: the next tick tries again)
            detail = f"unexpected {type(exc).__name__}"
            _log_unexpected(exc, "team %s slot %s: gave the slot back", team.id, claim.slot.isoformat())
            outcome = self._release(claim, detail)
        outcomes = [*opened.outcomes, outcome]
        if outcome.state in CONCLUDED:
            local = claim.slot.astimezone(self.services.config.zone(team))
            outcomes += self._supersede(team, catchup.older, clock.now(), f"the {local:%Y-%m-%d %H:%M} slot was posted")
        return outcomes

    def plan(self, now: datetime) -> list[TeamPlan]:
        """What a tick as of ``now`` would do for each scheduled team, reading the store and writing nothing."""
        now, store = to_utc(now), self.services.store
        plans = []
        for settings in self._scheduled_teams():
            team = settings.team
            mark = store.find_mark(team.id)
            missed = self._missed(team, mark, now)
            runs = store.slot_runs(team.id, since=now - MISSED_LOOKBACK, until=now, limit=100_000)
            known = {r.slot for r in runs}
            held = [slot for slot in self._held(team, settings.snooze, now) if slot not in known]
            recent = store.slot_runs(team.id, since=now - 2 * self._grace(), until=now)
            recent += [SlotRun(team.id, slot, SNOOZED, 0, None, None, now, None) for slot in held]
            catchup = self._catchup(team, now, recent)
            targets = tuple(target_key(t) for t in team.deliver)
            unstarted = tuple(slot for slot in missed if slot not in known and slot not in held)
            plans.append(TeamPlan(team.id, catchup, unstarted, targets, mark is None, tuple(held)))
        return plans

    def _scheduled_teams(self) -> list[TeamSettings]:
        """The teams with a schedule and targets, as they run now (their overrides read afresh every tick; alerts
        and the posts then use what this read)."""
        return [t for t in self.services.settings.teams(fresh=True) if t.team.schedule and t.team.deliver]

    def _held(self, team: TeamConfig, snooze: Snooze | None, now: datetime) -> list[datetime]:
        """The team's slots of the last day, up to ``now``, that fell due within its snooze."""
        assert team.schedule  # noqa: S101 (only scheduled teams tick)
        if snooze is None or snooze.until <= now - MISSED_LOOKBACK or snooze.since > now:
            return []
        zone = self.services.config.zone(team)
        start, end = max(snooze.since, now - MISSED_LOOKBACK), min(now, snooze.until)
        return [slot for slot in slots_between(team.schedule, zone, start, end) if snooze.active(slot)]

    def _snoozed(self, team: TeamConfig, snooze: Snooze | None, now: datetime) -> list[SlotOutcome]:
        """The team's slots of the last day that fell due within its snooze, recorded snoozed (once each)."""
        slots = self._held(team, snooze, now)
        if not slots:
            return []
        zone = self.services.config.zone(team)
        detail = f"snoozed until {snooze.until.astimezone(zone):%Y-%m-%d %H:%M}" if snooze else "snoozed"
        recorded = self.services.store.record_snoozed(team.id, slots, now, detail)
        if recorded:
            log.info("team %s: %d slots snoozed (%s)", team.id, len(recorded), detail)
        return [SlotOutcome(team.id, slot, SNOOZED, detail) for slot in recorded]

    def _grace(self) -> timedelta:
        return timedelta(minutes=self.settings.grace_minutes)

    def _missed(self, team: TeamConfig, mark: TeamMark | None, now: datetime) -> list[datetime]:
        """Slots that were due at the last tick and are now past their grace period (none on a first tick)."""
        assert team.schedule  # noqa: S101 (only scheduled teams tick)
        if mark is None:
            return []
        grace, zone = self._grace(), self.services.config.zone(team)
        return slots_between(team.schedule, zone, max(mark.scanned_until - grace, now - MISSED_LOOKBACK), now - grace)

    def _catchup(self, team: TeamConfig, now: datetime, runs: list[SlotRun]) -> Catchup:
        """Which slot this tick works for ``team`` (see `bot.schedule.catchup`), given its slots of the last
        two grace periods."""
        assert team.schedule  # noqa: S101 (only scheduled teams tick)
        grace, zone = self._grace(), self.services.config.zone(team)
        due = slots_between(team.schedule, zone, now - grace, now)
        return plan_catchup(due, {r.slot: r for r in runs}, now, now - grace)

    def _supersede(self, team: TeamConfig, slots: tuple[datetime, ...], now: datetime, why: str) -> list[SlotOutcome]:
        if not slots:
            return []
        closed = self.services.store.supersede(team.id, list(slots), now, f"superseded: {why}")
        if closed:
            log.info("team %s: %d older slots superseded (%s)", team.id, len(closed), why)
        return [SlotOutcome(team.id, slot, SUPERSEDED, why) for slot in closed]

    def _run_slot(
        self,
        team: TeamConfig,
        claim: Claim,
        clock: _Clock,
        *,
        retry: bool,
        last_attempt: bool,
        scans: Mapping[str, ScanShare] | None = None,
    ) -> SlotOutcome:
        origin = RETRY if retry else POST
        report = self.services.report(team, origin, slot=claim.slot, scans=scans)  # recorded as read for it
        if not report.fresh and not last_attempt:
            detail = "could not refresh: " + "; ".join(report.failures)
            log.warning("team %s slot %s: %s; retrying on the next tick", team.id, claim.slot.isoformat(), detail)
            return self._release(claim, detail)
        if not report.fresh and team.on_failure == "skip":
            return self._finish(claim, SKIPPED, "skipped (on_failure: skip): " + "; ".join(report.failures))
        return self._deliver(team, claim, report, clock, last_attempt=last_attempt)

    def _deliver(
        self, team: TeamConfig, claim: Claim, report: TeamReport, clock: _Clock, *, last_attempt: bool
    ) -> SlotOutcome:
        """Post to every target not settled yet; all of them, once the slot is started."""
        store, slot = self.services.store, claim.slot
        settled = store.settled_targets(team.id, slot) if claim.attempt > 1 else set()  # a new slot has none
        todo = [target for target in team.deliver if target_key(target) not in settled]
        retryable: list[DeliveryError] = []
        rejected: list[DeliveryError] = []
        last: DeliveryRecord | None = None  # the last target's attempt: recorded with the slot's end
        for target in todo:
            key = target_key(target)
            post = self.post_for(team, slot, report, target)
            detail: str | None = None
            try:
                sent = self.delivery.send(target, post, clock.deadline, claim.keep)
            except ClaimLost as exc:
                log.error("team %s slot %s: %s; leaving it to the new owner", team.id, slot.isoformat(), exc)
                return SlotOutcome(team.id, slot, LOST, str(exc))
            except DeliveryError as exc:
                (retryable if exc.retryable else rejected).append(exc)
                outcome, detail = ("error" if exc.retryable else "rejected"), str(exc)
                log.warning("team %s slot %s: %s", team.id, slot.isoformat(), exc)
            else:
                outcome = "already" if sent.already else "delivered"
                log.info("team %s slot %s: %s to %s", team.id, slot.isoformat(), outcome, key)
            record = DeliveryRecord(team.id, slot, key, outcome, clock.now(), post.message_id, detail)
            if target is todo[-1]:
                last = record
            else:
                store.record_delivery(team.id, slot, key, outcome, record.at, message_id=post.message_id, detail=detail)
        if retryable and not last_attempt:
            wait = max((e.retry_after or 0.0 for e in retryable), default=0.0)
            retry_at = clock.now() + timedelta(seconds=wait) if wait else None
            return self._release(claim, "; ".join(map(str, retryable)), retry_at, last)
        if retryable or rejected:
            return self._finish(claim, FAILED, "; ".join(map(str, rejected + retryable)), last)
        stale = None if report.fresh else "posted stale: " + "; ".join(report.failures)
        return self._finish(claim, DELIVERED, stale, last)

    def _release(
        self, claim: Claim, detail: str, retry_at: datetime | None = None, delivery: DeliveryRecord | None = None
    ) -> SlotOutcome:
        if not claim.release(detail, retry_at, delivery):
            return self._lost(claim, PENDING)
        if retry_at:
            detail += f"; not retried before {retry_at.isoformat()} (Retry-After)"
        return SlotOutcome(claim.team_id, claim.slot, PENDING, detail)

    def _finish(
        self, claim: Claim, state: str, detail: str | None, delivery: DeliveryRecord | None = None
    ) -> SlotOutcome:
        if not claim.finish(state, detail, delivery):
            return self._lost(claim, state)
        return SlotOutcome(claim.team_id, claim.slot, state, detail)

    def _lost(self, claim: Claim, would_be: str) -> SlotOutcome:
        detail = f"claim lost before the slot could be recorded {would_be}: another tick took it over"
        log.error("team %s slot %s: %s", claim.team_id, claim.slot.isoformat(), detail)
        return SlotOutcome(claim.team_id, claim.slot, LOST, detail)

    def post_for(self, team: TeamConfig, slot: datetime, report: TeamReport, target: DeliveryTarget) -> Post:
        """The post of ``report`` for ``team``'s ``slot`` to ``target`` (webhooks get no Refresh button);
        to a live Chat API target, the update of the period's live card."""
        refresh = None if isinstance(target, WebhookTarget) else self.services.config.chat.button_function
        message = self.services.scheduled_post(self.services, team, slot, report, refresh_function=refresh)
        thread = None if isinstance(target, LogTarget) else target.thread
        slot_local = slot.astimezone(self.services.config.zone(team))
        key = thread_key(thread, team.id, slot_local) if thread else None
        if isinstance(target, ChatApiTarget) and target.live != "off":
            return Post(team.id, slot, message, live_message_id(team.id, target.live, slot_local), live=True)
        return Post(team.id, slot, message, message_id(team.id, slot), key)


def start_background_ticker(services: Services, stop_event: threading.Event) -> threading.Thread:
    """Tick every ``schedule.tick_seconds`` in a daemon thread until ``stop_event`` is set (for ``serve``)."""
    scheduler = Scheduler(services)

    def loop() -> None:
        while not stop_event.is_set():
            try:
                result = scheduler.tick()
            except Exception as exc:  # noqa: BLE001 (one bad tick must not stop every later one)
                _log_unexpected(exc, "scheduler tick failed")
            else:
                if result.outcomes:
                    log.info("scheduler tick: %s", result.summary())
            stop_event.wait(services.config.schedule.tick_seconds)

    thread = threading.Thread(target=loop, name="scheduler", daemon=True)
    thread.start()
    return thread


def _log_unexpected(exc: Exception, message: str, *args: object) -> None:
    """Log an unexpected error by its type only; its frames (not its text, which may hold a secret) at DEBUG."""
    log.error(message + ": %s", *args, type(exc).__name__)
    if log.isEnabledFor(logging.DEBUG):
        frames = "".join(traceback.format_tb(exc.__traceback__))
        log.debug("where the %s was raised (message withheld):\n%s", type(exc).__name__, frames)
