"""One process's claim on one slot: checked and extended before every send, ended once.

The claim is the slot's row in the store (see `bot.store`). Its lease runs out
if the process stalls or dies; another tick may then take the slot over. So
before each HTTP request the claim is checked and its lease extended (`keep`),
and the answers of `release` and `finish` are acted on: a process whose claim
was taken over reports the slot ``lost``, never ``delivered``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.store import DeliveryRecord, Store


class ClaimLost(Exception):
    """Another tick took the slot over: the lease ran out while this one was still at work."""


@dataclass
class Claim:
    """``owner``'s claim on a team's slot, with a lease of ``lease_seconds`` from each renewal."""

    store: Store
    team_id: str
    slot: datetime
    owner: str
    lease_seconds: float
    now: Callable[[], datetime]
    attempt: int = 0
    """The slot's attempt this claim is (1: the slot was new, so no target has it yet); 0 until taken."""

    def take(self) -> bool:
        """Claim the slot; False if another tick has it (or it waits for a Retry-After, or is final)."""
        now = self.now()
        self.attempt = self.store.claim(self.team_id, self.slot, self.owner, now, self._lease_from(now))
        return self.attempt > 0

    def keep(self) -> float:
        """Check the claim is still ours and extend its lease; return the seconds it lasts. Raises `ClaimLost`."""
        if not self.store.renew(self.team_id, self.slot, self.owner, self._lease_from(self.now())):
            raise ClaimLost(f"claim on {self.team_id} {self.slot.isoformat()} lost: the lease ran out")
        return self.lease_seconds

    def release(self, detail: str, retry_at: datetime | None = None, delivery: DeliveryRecord | None = None) -> bool:
        """Give the slot back for a later tick (from ``retry_at``, if given), recording ``delivery`` with it;
        False if the claim was lost."""
        return self.store.release(self.team_id, self.slot, self.owner, self.now(), detail, retry_at, delivery)

    def give_back(self) -> bool:
        """Undo the claim before any work on the slot (the tick's deadline came first); False if it was lost."""
        return self.store.unclaim(self.team_id, self.slot, self.owner)

    def finish(self, state: str, detail: str | None, delivery: DeliveryRecord | None = None) -> bool:
        """End the claim with a final ``state``, recording ``delivery`` with it; False if the claim was lost."""
        return self.store.finish(self.team_id, self.slot, self.owner, state, self.now(), detail, delivery)

    def _lease_from(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.lease_seconds)
