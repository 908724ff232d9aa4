"""The scheduler tick: every due slot claimed once, fetched, rendered, delivered, recorded.

One tick, whatever triggered it (the in-process ticker of ``serve``,
``GET /tasks/tick``, ``python -m bot tick``), does for each scheduled team,
teams side by side (``schedule.concurrency`` at a time):

1. slots that fell out of the grace period since the last tick without being
   claimed are recorded as missed, not sent late (slots older than the grace
   period before the team's first tick are not considered at all: they
   predate the scheduler);
2. each slot due within the grace period (on the team's first tick too) is
   claimed in the store; the claimer reads the team's KPIs and posts to every
   target not yet settled for that slot;
3. a slot whose data could not be read is given back and retried by the next
   ticks; once its grace period has run out it gets one last attempt, which
   posts the marked "could not refresh" card (``on_failure: post_stale``) or
   records it skipped (``on_failure: skip``).

The tick stops claiming when its deadline (``schedule.deadline_seconds``)
passes: what it did not reach stays claimable. A claim is a lease
(``schedule.lease_seconds``, longer than the deadline): if the process dies
mid-send, a later tick takes the slot over and posts with the same Chat API
``messageId``, so the Space gets it once.

An unexpected error in one team's work is logged by its type only (its text
may hold a webhook URL) and gives the slot back for the next tick; the other
teams go on.
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from bot.config import DeliveryTarget, LogTarget, TeamConfig, WebhookTarget
from bot.errors import DeliveryError, ScorebotError
from bot.reports import TeamReport
from bot.schedule.delivery import Delivery, Post, message_id, target_key
from bot.schedule.slots import slots_between
from bot.schedule.templates import thread_key
from bot.services import Services
from bot.sources import Deadline
from bot.store import DELIVERED, FAILED, MISSED, PENDING, POST, RETRY, SKIPPED, UNFINISHED, to_utc
from handlers import scheduled

log = logging.getLogger(__name__)

MISSED_LOOKBACK = timedelta(days=1)
"""How far back a tick records missed slots after a long pause."""
LOST = "lost"
ERROR = "error"


@dataclass(frozen=True)
class SlotOutcome:
    """What a tick did with one slot: delivered, failed, skipped, pending, missed, lost or error."""

    team_id: str
    slot: datetime
    state: str
    detail: str | None = None


@dataclass
class TickResult:
    """Everything one tick did."""

    now: datetime
    outcomes: list[SlotOutcome] = field(default_factory=list)

    def count(self, state: str) -> int:
        """How many slots ended in ``state``."""
        return sum(1 for o in self.outcomes if o.state == state)

    def summary(self) -> str:
        """One line: counts per state, e.g. "2 delivered, 1 pending"."""
        counts = Counter(o.state for o in self.outcomes)
        return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "nothing due"


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

    def tick(self, now: datetime | None = None) -> TickResult:
        """Work every due slot of every scheduled team once, as of ``now`` (default: the services' clock)."""
        start = to_utc(now or self.services.clock())
        clock = _Clock(start, time.monotonic(), Deadline.after(self.settings.deadline_seconds))
        teams = [t for t in self.services.config.teams if t.schedule and t.deliver]
        result = TickResult(clock.start)
        if not teams:
            return result
        with ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="tick") as pool:
            for outcomes in pool.map(lambda team: self._team(team, clock), teams):
                result.outcomes.extend(outcomes)
        return result

    def _team(self, team: TeamConfig, clock: _Clock) -> list[SlotOutcome]:
        try:
            return self._run_team(team, clock)
        except (ScorebotError, SQLAlchemyError) as exc:
            log.error("team %s: tick failed: %s", team.id, exc)
            return [SlotOutcome(team.id, clock.start, ERROR, str(exc))]
        except Exception as exc:  # noqa: BLE001 (one team's fault must not stop the others)
            _log_unexpected(exc, "team %s: tick failed", team.id)
            return [SlotOutcome(team.id, clock.start, ERROR, f"unexpected {type(exc).__name__}")]

    def _run_team(self, team: TeamConfig, clock: _Clock) -> list[SlotOutcome]:
        assert team.schedule  # noqa: S101 (filtered by tick)
        store, now = self.services.store, clock.start
        zone = self.services.config.zone(team)
        grace = timedelta(minutes=self.settings.grace_minutes)
        cutoff = now - grace
        mark = store.team_mark(team.id, now)
        # Slots the last tick saw as due but did not claim are missed now too; a first tick misses nothing.
        missed = slots_between(team.schedule, zone, max(mark.scanned_until - grace, now - MISSED_LOOKBACK), cutoff)
        outcomes = [
            SlotOutcome(team.id, slot, MISSED, "not claimed within the grace period")
            for slot in store.record_missed(team.id, missed, now, "not claimed within the grace period")
        ]
        if expired := store.expire(team.id, now - 2 * grace, now, "not completed within the grace period"):
            log.warning("team %s: %d unfinished slots gave up (grace period long over)", team.id, expired)
        store.advance_mark(team.id, now)

        runs = {r.slot: r for r in store.slot_runs(team.id, since=now - 2 * grace, until=now, limit=100_000)}
        due = set(slots_between(team.schedule, zone, cutoff, now))
        read = self._reader(team)
        overdue = {slot for slot, run in runs.items() if slot <= cutoff and run.state in UNFINISHED}
        for slot in sorted(due | overdue):
            run = runs.get(slot)
            if run and (run.state not in UNFINISHED or (run.claimed_until and run.claimed_until >= now)):
                continue
            if clock.deadline.expired():
                log.warning("team %s: tick deadline reached; later slots stay for the next tick", team.id)
                break
            if store.claim(team.id, slot, self.owner, clock.now(), self._lease(clock)):
                try:
                    report = read(slot, retry=run is not None)
                    outcomes.append(self._run_slot(team, slot, report, clock, final=slot <= cutoff))
                except Exception as exc:  # noqa: BLE001 (given back: the next tick tries again)
                    detail = f"unexpected {type(exc).__name__}"
                    _log_unexpected(exc, "team %s slot %s: gave the slot back", team.id, slot.isoformat())
                    store.release(team.id, slot, self.owner, clock.now(), detail)
                    outcomes.append(SlotOutcome(team.id, slot, PENDING, detail))
        return outcomes

    def _reader(self, team: TeamConfig) -> Callable[..., TeamReport]:
        """One read per team per tick: the first slot that needs it reads (and records it as read for
        that slot: a post, or a retry of one); later slots of the same tick reuse it."""
        reads: list[TeamReport] = []

        def read(slot: datetime, *, retry: bool) -> TeamReport:
            if not reads:
                reads.append(self.services.report(team, RETRY if retry else POST, slot=slot))
            return reads[0]

        return read

    def _lease(self, clock: _Clock) -> datetime:
        return clock.now() + timedelta(seconds=self.settings.lease_seconds)

    def _run_slot(
        self, team: TeamConfig, slot: datetime, report: TeamReport, clock: _Clock, *, final: bool
    ) -> SlotOutcome:
        store = self.services.store
        if not report.fresh and not final:
            detail = "could not refresh: " + "; ".join(report.failures)
            store.release(team.id, slot, self.owner, clock.now(), detail)
            log.warning("team %s slot %s: %s; retrying on the next tick", team.id, slot.isoformat(), detail)
            return SlotOutcome(team.id, slot, PENDING, detail)
        if not report.fresh and team.on_failure == "skip":
            detail = "skipped (on_failure: skip): " + "; ".join(report.failures)
            store.finish(team.id, slot, self.owner, SKIPPED, clock.now(), detail)
            return SlotOutcome(team.id, slot, SKIPPED, detail)
        return self._deliver(team, slot, report, clock, final=final)

    def _deliver(
        self, team: TeamConfig, slot: datetime, report: TeamReport, clock: _Clock, *, final: bool
    ) -> SlotOutcome:
        store = self.services.store
        settled = store.settled_targets(team.id, slot)
        retryable: list[str] = []
        rejected: list[str] = []
        for target in team.deliver:
            key = target_key(target)
            if key in settled:
                continue
            if clock.deadline.expired():
                retryable.append(f"{key}: tick deadline reached")
                break
            if not store.renew(team.id, slot, self.owner, self._lease(clock)):
                log.error("team %s slot %s: claim lost (lease ran out); leaving it", team.id, slot.isoformat())
                return SlotOutcome(team.id, slot, LOST, "claim lost: the lease ran out")
            post = self.post_for(team, slot, report, target)
            try:
                sent = self.delivery.send(target, post, clock.deadline)
            except DeliveryError as exc:
                (retryable if exc.retryable else rejected).append(str(exc))
                outcome = "error" if exc.retryable else "rejected"
                store.record_delivery(
                    team.id, slot, key, outcome, clock.now(), message_id=post.message_id, detail=str(exc)
                )
                log.warning("team %s slot %s: %s", team.id, slot.isoformat(), exc)
                continue
            outcome = "already" if sent.already else "delivered"
            store.record_delivery(team.id, slot, key, outcome, clock.now(), message_id=post.message_id)
            log.info("team %s slot %s: %s to %s", team.id, slot.isoformat(), outcome, key)
        if retryable and not final:
            detail = "; ".join(retryable)
            store.release(team.id, slot, self.owner, clock.now(), detail)
            return SlotOutcome(team.id, slot, PENDING, detail)
        if retryable or rejected:
            detail = "; ".join(rejected + retryable)
            store.finish(team.id, slot, self.owner, FAILED, clock.now(), detail)
            return SlotOutcome(team.id, slot, FAILED, detail)
        stale = None if report.fresh else "posted stale: " + "; ".join(report.failures)
        store.finish(team.id, slot, self.owner, DELIVERED, clock.now(), stale)
        return SlotOutcome(team.id, slot, DELIVERED, stale)

    def post_for(self, team: TeamConfig, slot: datetime, report: TeamReport, target: DeliveryTarget) -> Post:
        """The post of ``report`` for ``team``'s ``slot`` to ``target`` (webhooks get no Refresh button)."""
        refresh = None if isinstance(target, WebhookTarget) else self.services.config.chat.button_function
        message = scheduled.handle(self.services, team, slot, report, refresh_function=refresh)
        thread = None if isinstance(target, LogTarget) else target.thread
        slot_local = slot.astimezone(self.services.config.zone(team))
        key = thread_key(thread, team.id, slot_local) if thread else None
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
