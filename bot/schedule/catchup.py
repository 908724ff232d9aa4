"""Which one of a team's due slots a tick posts: the latest; older ones are superseded, never posted.

The rule (pure: no store, no clock), applied to one team at one tick:

- *Waiting* slots are the due slots within the grace period that nobody has
  started, and the unfinished ones (pending: data could not be read, or a
  target failed in a way worth retrying) whose lease has run out.
- Only the latest waiting slot is worked. Once it reaches a final state
  (delivered, failed, skipped), the older waiting ones are recorded
  ``superseded``. While it stays pending, they stay as they are, so the oldest
  keeps its grace clock.
- The worked slot is the *last attempt* (a stale card is posted, or the slot
  fails, instead of waiting for another tick) once the oldest waiting slot's
  grace period is over: a source that stays down gets one marked card about
  every grace period, not one per slot, and not none.
- A waiting slot older than one already posted is superseded at once: the
  Space never gets an older card after a newer one.
- While another process holds a lease on one of the team's slots, or a slot
  waits for a peer's ``Retry-After``, the tick leaves the team alone.

So a team's first tick, a tick after a pause, or after a schedule change posts
one message, whatever the number of slots that fell due meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.store import CONCLUDED, UNFINISHED, SlotRun


@dataclass(frozen=True)
class Catchup:
    """What one tick does with one team's slots."""

    work: datetime | None = None
    """The slot to claim, read and post (None: nothing to do)."""
    older: tuple[datetime, ...] = ()
    """Waiting slots older than ``work``: superseded once ``work`` reaches a final state."""
    retry: bool = False  # pragma: no mutate (read only when work is set)
    """``work`` was tried before (it is pending): its reading is recorded as a retry."""
    last_attempt: bool = False  # pragma: no mutate (read only when work is set)
    """The oldest waiting slot's grace period is over: no more retries after this one."""
    outdated: tuple[datetime, ...] = ()
    """Waiting slots older than a slot already posted: superseded now."""
    wait_reason: str | None = None
    """Why the team is left alone this tick (another process's lease, a Retry-After)."""


def plan(due: Sequence[datetime], runs: Mapping[datetime, SlotRun], now: datetime, cutoff: datetime) -> Catchup:
    """The catch-up for slots ``due`` within the grace period and the team's recent ``runs`` (by slot).

    ``cutoff`` is ``now`` minus the grace period.
    """
    unfinished = [run for run in runs.values() if run.state in UNFINISHED]
    held = next((run for run in unfinished if run.claimed_until and run.claimed_until >= now), None)
    if held:
        return Catchup(wait_reason=f"slot {held.slot.isoformat()} is being worked by another tick")
    retry_at = max((run.retry_at for run in unfinished if run.retry_at and run.retry_at > now), default=None)
    if retry_at:
        return Catchup(wait_reason=f"waiting until {retry_at.isoformat()} (Retry-After)")
    waiting = sorted({slot for slot in due if slot not in runs} | {run.slot for run in unfinished})
    posted = max((slot for slot, run in runs.items() if run.state in CONCLUDED), default=None)
    outdated = tuple(slot for slot in waiting if posted and slot < posted)  # pragma: no mutate (never equal)
    live = [slot for slot in waiting if slot not in outdated]
    if not live:
        return Catchup(outdated=outdated)
    work = live[-1]
    return Catchup(work, tuple(live[:-1]), work in runs, last_attempt=live[0] <= cutoff, outdated=outdated)
