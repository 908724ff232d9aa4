"""Schedule state: team marks, slots and their claims, delivery attempts and settled targets.

A tick claims a slot by inserting its row (``INSERT .. ON CONFLICT DO NOTHING``) or, for a row left
unfinished, by a conditional ``UPDATE`` that only succeeds once its lease (``claimed_until``) has run
out and any ``Retry-After`` the peer gave (``retry_at``) has passed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.store.changes import bump
from bot.store.engine import Database, insert_ignore, to_utc, utc_aware
from bot.store.records import DeliveryRecord, SlotRun, TeamMark
from bot.store.schema import (
    CLAIMED,
    MISSED,
    PENDING,
    SETTLED_OUTCOMES,
    SNOOZED,
    SUPERSEDED,
    UNFINISHED,
    deliveries,
    slot_runs,
    team_marks,
)


class Schedule(Database):
    """The scheduler's state: which slots were seen, claimed, delivered, missed or superseded."""

    def open_team(
        self,
        team_id: str,
        now: datetime,
        missed: Callable[[TeamMark], list[datetime]],
        missed_detail: str,
        expire_before: datetime,
        expire_detail: str,
    ) -> tuple[list[datetime], int, list[SlotRun]]:
        """A tick's bookkeeping for one team, in one transaction: the team's mark (created at ``now`` the
        first time), the slots ``missed(mark)`` names recorded missed, unfinished unleased slots at or
        before ``expire_before`` closed as missed, and the mark advanced to ``now``.

        Returns the slots newly recorded missed, how many unfinished slots were closed, and then the team's
        slots after ``expire_before`` up to ``now`` (newest first).
        """
        with self.engine.begin() as conn:
            mark = _team_mark(conn, team_id, to_utc(now))
            added = _record_missed(conn, team_id, missed(mark), now, missed_detail)
            expired = _expire(conn, team_id, expire_before, now, expire_detail)
            _advance_mark(conn, team_id, now)
            runs = _slot_runs(conn, team_id, expire_before, now, 100_000)
        return added, expired, runs

    def team_mark(self, team_id: str, now: datetime) -> TeamMark:
        """The team's mark, created at ``now`` the first time the scheduler sees the team."""
        with self.engine.begin() as conn:
            return _team_mark(conn, team_id, to_utc(now))

    def advance_mark(self, team_id: str, until: datetime) -> None:
        """Record that slots up to ``until`` have been looked at (never moves back)."""
        with self.engine.begin() as conn:
            _advance_mark(conn, team_id, until)

    def find_mark(self, team_id: str) -> TeamMark | None:
        """The team's mark, if the scheduler has seen the team (reads only)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(team_marks).where(team_marks.c.team_id == team_id)).first()
        return TeamMark(utc_aware(row.first_seen), utc_aware(row.scanned_until)) if row else None

    def record_missed(self, team_id: str, slots: list[datetime], now: datetime, detail: str) -> list[datetime]:
        """Record slots nobody worked on as missed; return those not recorded before."""
        with self.engine.begin() as conn:
            return _record_missed(conn, team_id, slots, now, detail)

    def record_snoozed(self, team_id: str, slots: list[datetime], now: datetime, detail: str) -> list[datetime]:
        """Record slots that fell due while the team was snoozed (never posted, not missed); return those not
        recorded before (a slot already recorded keeps its state)."""
        with self.engine.begin() as conn:
            return _record_missed(conn, team_id, slots, now, detail, SNOOZED)

    def claim(self, team_id: str, slot: datetime, owner: str, now: datetime, lease_until: datetime) -> int:
        """Claim a slot for ``owner`` until ``lease_until``: its attempt number (1: the slot is new) for exactly
        one of concurrent claimers, 0 for the others.

        A new slot is claimed by inserting its row; an unfinished one (pending,
        or claimed by a process that died) only once its lease has run out and
        its ``retry_at`` has passed.
        """
        slot, now = to_utc(slot), to_utc(now)
        claimed = {
            "state": CLAIMED,
            "claimed_by": owner,
            "claimed_until": to_utc(lease_until),
            "updated_at": now,
            "retry_at": None,
        }
        with self.engine.begin() as conn:
            if insert_ignore(conn, slot_runs, {"team_id": team_id, "slot_utc": slot, "attempts": 1} | claimed):
                return 1
            attempt = conn.execute(
                slot_runs.update()
                .where(_takeable(team_id, slot, now))
                .where(sa.or_(slot_runs.c.retry_at.is_(None), slot_runs.c.retry_at <= now))
                .values(attempts=slot_runs.c.attempts + 1, **claimed)
                .returning(slot_runs.c.attempts)
            ).scalar()
            return int(attempt or 0)

    def supersede(self, team_id: str, slots: list[datetime], now: datetime, detail: str) -> list[datetime]:
        """Close slots a newer post replaces: never started, or unfinished and unleased; return those closed.

        A slot another process holds (its lease running) is left alone.
        """
        now = to_utc(now)
        closed = []
        with self.engine.begin() as conn:
            for slot in map(to_utc, slots):
                row = {"team_id": team_id, "slot_utc": slot, "state": SUPERSEDED, "attempts": 0, "updated_at": now}
                if (
                    insert_ignore(conn, slot_runs, row | {"detail": detail})
                    or conn.execute(
                        slot_runs.update()
                        .where(_takeable(team_id, slot, now))
                        .values(state=SUPERSEDED, claimed_until=None, retry_at=None, updated_at=now, detail=detail)
                    ).rowcount
                ):
                    closed.append(slot)
        return closed

    def renew(self, team_id: str, slot: datetime, owner: str, lease_until: datetime) -> bool:
        """Extend ``owner``'s claim; False if the claim was lost (the lease ran out and another took it)."""
        return self._update_claimed(team_id, slot, owner, claimed_until=to_utc(lease_until))

    def release(
        self,
        team_id: str,
        slot: datetime,
        owner: str,
        now: datetime,
        detail: str,
        retry_at: datetime | None = None,
        delivery: DeliveryRecord | None = None,
    ) -> bool:
        """Give the slot back unfinished: claimable by the next tick at once, or from ``retry_at``; with
        ``delivery`` (the last target's attempt) recorded in the same transaction, whether or not the claim
        was still held."""
        return self._update_claimed(
            team_id,
            slot,
            owner,
            delivery,
            state=PENDING,
            claimed_until=None,
            updated_at=to_utc(now),
            detail=detail,
            retry_at=to_utc(retry_at) if retry_at else None,
        )

    def finish(
        self,
        team_id: str,
        slot: datetime,
        owner: str,
        state: str,
        now: datetime,
        detail: str | None,
        delivery: DeliveryRecord | None = None,
    ) -> bool:
        """End ``owner``'s claim with a final ``state`` (and ``delivery`` recorded, as for `release`)."""
        return self._update_claimed(
            team_id, slot, owner, delivery, state=state, claimed_until=None, updated_at=to_utc(now), detail=detail
        )

    def unclaim(self, team_id: str, slot: datetime, owner: str) -> bool:
        """Give back a claim before any work on it: the slot as it was (a new one unclaimed, not recorded; a
        pending one pending again); False if the claim was lost."""
        mine = (
            slot_runs.c.team_id == team_id,
            slot_runs.c.slot_utc == to_utc(slot),
            slot_runs.c.state == CLAIMED,
            slot_runs.c.claimed_by == owner,
        )
        with self.engine.begin() as conn:
            if conn.execute(slot_runs.delete().where(*mine, slot_runs.c.attempts == 1)).rowcount:
                return True
            restored = {"state": PENDING, "claimed_by": None, "claimed_until": None}
            update = slot_runs.update().where(*mine).values(attempts=slot_runs.c.attempts - 1, **restored)
            return bool(conn.execute(update).rowcount)

    def _update_claimed(
        self, team_id: str, slot: datetime, owner: str, delivery: DeliveryRecord | None = None, **values: Any
    ) -> bool:
        with self.engine.begin() as conn:
            if delivery is not None:
                _insert_delivery(conn, delivery)
            result = conn.execute(
                slot_runs.update()
                .where(
                    slot_runs.c.team_id == team_id,
                    slot_runs.c.slot_utc == to_utc(slot),
                    slot_runs.c.state == CLAIMED,
                    slot_runs.c.claimed_by == owner,
                )
                .values(**values)
            )
            return result.rowcount == 1

    def slot_runs(
        self, team_id: str, *, since: datetime | None = None, until: datetime | None = None, limit: int = 100
    ) -> list[SlotRun]:
        """The team's slots with ``since < slot <= until`` (either bound optional), newest first."""
        with self.engine.connect() as conn:
            return _slot_runs(conn, team_id, since, until, limit)

    def record_delivery(
        self,
        team_id: str,
        slot: datetime,
        target: str,
        outcome: str,
        at: datetime,
        *,
        message_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record one attempt at one target: delivered, already (409), rejected (4xx) or error."""
        with self.engine.begin() as conn:
            _insert_delivery(conn, DeliveryRecord(team_id, to_utc(slot), target, outcome, at, message_id, detail))

    def settled_targets(self, team_id: str, slot: datetime) -> set[str]:
        """The slot's targets that need no further attempt (delivered, already there, or rejected)."""
        query = sa.select(deliveries.c.target).where(
            deliveries.c.team_id == team_id,
            deliveries.c.slot_utc == to_utc(slot),
            deliveries.c.outcome.in_(SETTLED_OUTCOMES),
        )
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def deliveries(self, team_id: str, *, slot: datetime | None = None, limit: int = 50) -> list[DeliveryRecord]:
        """The team's delivery attempts (of one slot, if given), newest first."""
        query = sa.select(deliveries).where(deliveries.c.team_id == team_id)
        if slot is not None:
            query = query.where(deliveries.c.slot_utc == to_utc(slot))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(deliveries.c.id.desc()).limit(limit)).all()
        return [
            DeliveryRecord(
                r.team_id, utc_aware(r.slot_utc), r.target, r.outcome, utc_aware(r.at), r.message_id, r.detail
            )
            for r in rows
        ]


def _team_mark(conn: Connection, team_id: str, now: datetime) -> TeamMark:
    insert_ignore(conn, team_marks, {"team_id": team_id, "first_seen": now, "scanned_until": now})
    row = conn.execute(sa.select(team_marks).where(team_marks.c.team_id == team_id)).one()
    return TeamMark(utc_aware(row.first_seen), utc_aware(row.scanned_until))


def _advance_mark(conn: Connection, team_id: str, until: datetime) -> None:
    conn.execute(
        team_marks.update()
        .where(team_marks.c.team_id == team_id, team_marks.c.scanned_until < to_utc(until))
        .values(scanned_until=to_utc(until))
    )


def _record_missed(
    conn: Connection, team_id: str, slots: list[datetime], now: datetime, detail: str, state: str = MISSED
) -> list[datetime]:
    added = []
    for slot in map(to_utc, slots):
        row = {"team_id": team_id, "slot_utc": slot, "state": state, "attempts": 0, "updated_at": to_utc(now)}
        if insert_ignore(conn, slot_runs, row | {"detail": detail}):
            added.append(slot)
    return added


def _expire(conn: Connection, team_id: str, before: datetime, now: datetime, detail: str) -> int:
    before, now = to_utc(before), to_utc(now)
    result = conn.execute(
        slot_runs.update()
        .where(
            slot_runs.c.team_id == team_id,
            slot_runs.c.slot_utc <= before,
            slot_runs.c.state.in_(UNFINISHED),
            sa.or_(slot_runs.c.claimed_until.is_(None), slot_runs.c.claimed_until < now),
        )
        .values(state=MISSED, claimed_until=None, updated_at=now, detail=detail)
    )
    return result.rowcount


def _takeable(team_id: str, slot: datetime, now: datetime) -> sa.ColumnElement[bool]:
    """The slot's row is unfinished and nobody's lease on it is running."""
    return sa.and_(
        slot_runs.c.team_id == team_id,
        slot_runs.c.slot_utc == slot,
        slot_runs.c.state.in_(UNFINISHED),
        sa.or_(slot_runs.c.claimed_until.is_(None), slot_runs.c.claimed_until < now),
    )


def _insert_delivery(conn: Connection, record: DeliveryRecord) -> None:
    conn.execute(
        deliveries.insert().values(
            team_id=record.team_id,
            slot_utc=to_utc(record.slot),
            target=record.target,
            outcome=record.outcome,
            at=to_utc(record.at),
            message_id=record.message_id,
            detail=record.detail,
        )
    )
    bump(conn, {record.team_id})


def _delivery(row: Any) -> DeliveryRecord:
    return DeliveryRecord(
        row.team_id,
        utc_aware(row.slot_utc),
        row.target,
        row.outcome,
        utc_aware(row.at),
        row.message_id,
        row.detail,
    )


def _slot_runs(
    conn: Connection, team_id: str, since: datetime | None, until: datetime | None, limit: int
) -> list[SlotRun]:
    """The team's slots with ``since < slot <= until`` (either bound optional), newest first."""
    query = sa.select(slot_runs).where(slot_runs.c.team_id == team_id)
    if since is not None:
        query = query.where(slot_runs.c.slot_utc > to_utc(since))
    if until is not None:
        query = query.where(slot_runs.c.slot_utc <= to_utc(until))
    rows = conn.execute(query.order_by(slot_runs.c.slot_utc.desc()).limit(limit)).all()
    return [
        SlotRun(
            team_id=r.team_id,
            slot=utc_aware(r.slot_utc),
            state=r.state,
            attempts=r.attempts,
            claimed_by=r.claimed_by,
            claimed_until=utc_aware(r.claimed_until) if r.claimed_until else None,
            updated_at=utc_aware(r.updated_at),
            detail=r.detail,
            retry_at=utc_aware(r.retry_at) if r.retry_at else None,
        )
        for r in rows
    ]
