"""Alert state: each KPI's alert, its transitions, its notices and their deliveries, each check claimed once.

- ``alert_states``: one row per (team, KPI): the state machine's state (see `bot.alerts.machine`) and a
  ``version`` that every write checks and raises, so two checks never both move one alert;
- ``alert_checks``: one row per (team, check time): the claim of that check (``INSERT .. ON CONFLICT DO
  NOTHING``), so one process reads and judges it; ``done_at`` is set in the transaction that stores the
  check's outcome, and only while the claim's lease holds;
- ``alert_transitions``: every change of state, with why (for ``alerts TEAM`` and ``/score alerts``);
- ``alert_notices``: what a Space is to hear, keyed by a deterministic id, released at ``release_at``
  (quiet hours), claimed by one process at a time with a lease, and ``sent`` once every target has it;
  ``message_id`` is fixed when a notice is first claimed, so a retry after a crash posts the same message
  (the Chat API answers "already exists");
- ``alert_deliveries``: each target's outcome for a message; settled targets are not posted again;
- ``alert_items``: each new item a team was told of (a key of its link, or of what it is), inserted with the
  check that tells it, so an item is in one new-items notice ever.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.store.engine import Database, insert_ignore, to_utc, utc_aware
from bot.store.schema import SETTLED_OUTCOMES, metadata

NOTICE_PENDING, NOTICE_SENT, NOTICE_FAILED = "pending", "sent", "failed"

alert_states = sa.Table(
    "alert_states",
    metadata,
    sa.Column("team_id", sa.String(40), primary_key=True),
    sa.Column("kpi_id", sa.String(40), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("since", sa.DateTime(timezone=True)),
    sa.Column("level", sa.String(16)),
    sa.Column("streak", sa.Integer, nullable=False),
    sa.Column("streak_level", sa.String(16)),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("held", sa.String(16)),
    sa.Column("incident", sa.DateTime(timezone=True)),
    sa.Column("last_notice", sa.DateTime(timezone=True)),
    sa.Column("index_value", sa.Float),
    sa.Column("levels", sa.String(200)),
    sa.Column("came_from", sa.String(16)),
    sa.Column("read_at", sa.DateTime(timezone=True)),
    sa.Column("version", sa.Integer, nullable=False),
)

alert_checks = sa.Table(
    "alert_checks",
    metadata,
    sa.Column("team_id", sa.String(40), primary_key=True),
    sa.Column("check_at", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("claimed_by", sa.String(120), nullable=False),
    sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=False),
    sa.Column("done_at", sa.DateTime(timezone=True)),
    sa.Index("ix_alert_checks_time", "check_at"),
)

alert_transitions = sa.Table(
    "alert_transitions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", sa.String(40), nullable=False),
    sa.Column("kpi_id", sa.String(40), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("before", sa.String(16), nullable=False),
    sa.Column("after", sa.String(16), nullable=False),
    sa.Column("move", sa.String(16), nullable=False),
    sa.Column("index_value", sa.Float),
    sa.Column("reason", sa.String(400)),
    sa.Index("ix_alert_transitions_team_kpi_time", "team_id", "kpi_id", "at"),
)

alert_notices = sa.Table(
    "alert_notices",
    metadata,
    sa.Column("id", sa.String(160), primary_key=True),
    sa.Column("team_id", sa.String(40), nullable=False),
    sa.Column("kpi_id", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("release_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("level", sa.String(16)),
    sa.Column("index_value", sa.Float),
    sa.Column("incident", sa.DateTime(timezone=True)),
    sa.Column("fired_seconds", sa.Float),
    sa.Column("reason", sa.String(400)),
    sa.Column("came_from", sa.String(16)),
    sa.Column("items", sa.Text),
    sa.Column("held", sa.Boolean, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("message_id", sa.String(63)),
    sa.Column("claimed_by", sa.String(120)),
    sa.Column("claimed_until", sa.DateTime(timezone=True)),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("detail", sa.String(400)),
    sa.Index("ix_alert_notices_team_state_release", "team_id", "state", "release_at"),
)

alert_items = sa.Table(
    "alert_items",
    metadata,
    sa.Column("team_id", sa.String(40), primary_key=True),
    sa.Column("item", sa.String(64), primary_key=True),
    sa.Column("check_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created", sa.DateTime(timezone=True)),
    sa.Index("ix_alert_items_check", "check_at"),
)

alert_deliveries = sa.Table(
    "alert_deliveries",
    metadata,
    sa.Column("message_id", sa.String(63), primary_key=True),
    sa.Column("target", sa.String(200), primary_key=True),
    sa.Column("team_id", sa.String(40), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("detail", sa.String(400)),
)

_TIMES = ("since", "incident", "last_notice", "read_at", "at", "release_at", "claimed_until", "sent_at")


@dataclass(frozen=True)
class NewItems:
    """The items a check found new, by key (`item_key`), and the notice that tells those never told before
    (its ``items`` is filled with them, as JSON)."""

    items: Mapping[str, Mapping[str, Any]]
    notice: Mapping[str, Any]


def item_key(item: Mapping[str, Any], kpi_id: str) -> str:
    """What identifies an item for good: its link (the record), else the KPI, category, creation and title."""
    what = item.get("link") or "|".join(str(item.get(k) or "") for k in ("category", "created", "title"))
    source = what if item.get("link") else f"{kpi_id}|{what}"
    return hashlib.sha256(source.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class AlertRow:
    """A KPI's stored alert state (the machine's fields by name) and the version a write must find."""

    kpi_id: str
    fields: Mapping[str, Any]
    version: int


@dataclass(frozen=True)
class TransitionRow:
    """One stored change of a KPI's alert state."""

    kpi_id: str
    at: datetime
    before: str
    after: str
    move: str
    index_value: float | None
    reason: str | None


@dataclass(frozen=True)
class NoticeRow:
    """One stored notice."""

    id: str
    team_id: str
    kpi_id: str
    kind: str
    at: datetime
    release_at: datetime
    level: str | None
    index_value: float | None
    incident: datetime | None
    fired_seconds: float | None
    reason: str | None
    came_from: str | None
    items: str | None
    """The heaviest open items when it was judged (JSON)."""
    held: bool
    state: str
    message_id: str | None
    attempts: int
    sent_at: datetime | None
    detail: str | None


class Alerts(Database):
    """Alert state per team and KPI, its checks, transitions, notices and their deliveries."""

    def claim_check(self, team_id: str, check_at: datetime, owner: str, lease_until: datetime) -> bool:
        """Claim one check of a team for ``owner``: True for exactly one of concurrent claimers."""
        row = {"team_id": team_id, "check_at": to_utc(check_at), "claimed_by": owner}
        with self.engine.begin() as conn:
            return insert_ignore(conn, alert_checks, row | {"claimed_until": to_utc(lease_until)}) == 1

    def alert_rows(self, team_id: str) -> dict[str, AlertRow]:
        """The team's stored alert states by KPI id."""
        with self._connect() as conn:
            rows = conn.execute(sa.select(alert_states).where(alert_states.c.team_id == team_id)).mappings().all()
        return {row["kpi_id"]: _alert_row(row) for row in rows}

    def store_check(
        self,
        team_id: str,
        check_at: datetime,
        owner: str,
        now: datetime,
        states: Sequence[tuple[AlertRow | None, str, Mapping[str, Any]]],
        transitions: Sequence[Mapping[str, Any]],
        notices: Sequence[Mapping[str, Any]],
        new_items: NewItems | None = None,
    ) -> bool:
        """Store a check's outcome in one transaction, only while its claim holds and no other check moved
        an alert since it was read (``states``: the row read, or None, the KPI id and the new fields);
        False, with nothing stored, otherwise. ``new_items``: the items the check found new, of which those
        never told before are kept and told in its notice (none: no notice)."""
        now = to_utc(now)
        with self.engine.begin() as conn:
            done = conn.execute(
                alert_checks.update()
                .where(alert_checks.c.team_id == team_id, alert_checks.c.check_at == to_utc(check_at))
                .where(alert_checks.c.claimed_by == owner, alert_checks.c.done_at.is_(None))
                .where(alert_checks.c.claimed_until >= now)
                .values(done_at=now)
            ).rowcount
            if done != 1 or not all(_write_state(conn, team_id, *state) for state in states):
                conn.rollback()
                return False
            if transitions:
                conn.execute(alert_transitions.insert(), [_utc_times({"team_id": team_id, **t}) for t in transitions])
            for notice in notices:
                defaults = {"team_id": team_id, "state": NOTICE_PENDING, "attempts": 0}
                insert_ignore(conn, alert_notices, _utc_times(defaults | dict(notice)))
            if new_items is not None:
                _store_new_items(conn, team_id, check_at, new_items)
        return True

    def transitions(self, team_id: str, kpi_id: str, limit: int = 10) -> list[TransitionRow]:
        """A KPI's last ``limit`` transitions, newest first."""
        query = (
            sa.select(alert_transitions)
            .where(alert_transitions.c.team_id == team_id, alert_transitions.c.kpi_id == kpi_id)
            .order_by(alert_transitions.c.at.desc(), alert_transitions.c.id.desc())
            .limit(limit)
        )
        with self._connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            TransitionRow(
                r["kpi_id"], utc_aware(r["at"]), r["before"], r["after"], r["move"], r["index_value"], r["reason"]
            )
            for r in rows
        ]

    def notices(self, team_id: str | None = None) -> list[NoticeRow]:
        """Every stored notice (of one team), oldest first."""
        query = sa.select(alert_notices).order_by(alert_notices.c.at, alert_notices.c.id)
        if team_id is not None:
            query = query.where(alert_notices.c.team_id == team_id)
        with self._connect() as conn:
            return [_notice_row(row) for row in conn.execute(query).mappings().all()]

    def claim_notices(
        self,
        team_id: str,
        owner: str,
        now: datetime,
        lease_until: datetime,
        message_ids: Callable[[list[NoticeRow]], dict[str, str]],
    ) -> list[NoticeRow]:
        """Claim the team's notices due by ``now`` that nobody holds, for ``owner`` until ``lease_until``;
        those without a message yet get one from ``message_ids`` (notice id → message id), kept for good."""
        now, lease_until = to_utc(now), to_utc(lease_until)
        mine = (alert_notices.c.claimed_by == owner) & (alert_notices.c.claimed_until == lease_until)
        pending = (alert_notices.c.team_id == team_id) & (alert_notices.c.state == NOTICE_PENDING)
        with self.engine.begin() as conn:
            conn.execute(
                alert_notices.update()
                .where(pending, alert_notices.c.release_at <= now)
                .where(sa.or_(alert_notices.c.claimed_until.is_(None), alert_notices.c.claimed_until < now))
                .values(claimed_by=owner, claimed_until=lease_until, attempts=alert_notices.c.attempts + 1)
            )
            rows = [_notice_row(r) for r in conn.execute(sa.select(alert_notices).where(pending, mine)).mappings()]
            fresh = message_ids([row for row in rows if row.message_id is None])
            for notice_id, message_id in fresh.items():
                conn.execute(
                    alert_notices.update()
                    .where(alert_notices.c.id == notice_id, alert_notices.c.message_id.is_(None))
                    .values(message_id=message_id)
                )
            query = sa.select(alert_notices).where(pending, mine).order_by(alert_notices.c.at, alert_notices.c.id)
            return [_notice_row(r) for r in conn.execute(query).mappings()]

    def renew_notices(self, ids: Sequence[str], owner: str, lease_until: datetime) -> bool:
        """Extend ``owner``'s claim on notices; False if any was lost."""
        with self.engine.begin() as conn:
            count = conn.execute(
                alert_notices.update()
                .where(alert_notices.c.id.in_(ids), alert_notices.c.claimed_by == owner)
                .where(alert_notices.c.state == NOTICE_PENDING)
                .values(claimed_until=to_utc(lease_until))
            ).rowcount
            if count != len(ids):
                conn.rollback()
                return False
        return True

    def end_notices(
        self,
        ids: Sequence[str],
        owner: str,
        now: datetime,
        state: str,
        detail: str | None,
        retry_at: datetime | None = None,
    ) -> bool:
        """Mark notices ``sent`` or ``failed``, or (state ``pending``) give them back from ``retry_at`` (else
        at once); only while ``owner`` holds them. False if the claim was lost."""
        values: dict[str, Any] = {"state": state, "detail": detail}
        if state == NOTICE_PENDING:
            values |= {"claimed_until": to_utc(retry_at or now)}
        else:
            values |= {"sent_at": to_utc(now) if state == NOTICE_SENT else None, "claimed_until": None}
        with self.engine.begin() as conn:
            count = conn.execute(
                alert_notices.update()
                .where(alert_notices.c.id.in_(ids), alert_notices.c.claimed_by == owner)
                .where(alert_notices.c.state == NOTICE_PENDING)
                .values(**values)
            ).rowcount
            if count != len(ids):
                conn.rollback()
                return False
        return True

    def settled_alert_targets(self, message_id: str) -> set[str]:
        """The targets that have ``message_id`` for good (posted, already there, or refused)."""
        query = sa.select(alert_deliveries.c.target).where(
            alert_deliveries.c.message_id == message_id, alert_deliveries.c.outcome.in_(SETTLED_OUTCOMES)
        )
        with self._connect() as conn:
            return set(conn.execute(query).scalars())

    def record_alert_delivery(
        self, team_id: str, message_id: str, target: str, outcome: str, at: datetime, detail: str | None
    ) -> None:
        """Record a target's latest outcome for a message."""
        values = {"team_id": team_id, "outcome": outcome, "at": to_utc(at), "detail": detail}
        with self.engine.begin() as conn:
            if not insert_ignore(conn, alert_deliveries, {"message_id": message_id, "target": target} | values):
                conn.execute(
                    alert_deliveries.update()
                    .where(alert_deliveries.c.message_id == message_id, alert_deliveries.c.target == target)
                    .values(**values)
                )

    def alert_deliveries(self, team_id: str) -> list[tuple[str, str, str]]:
        """The team's (message id, target, outcome) rows."""
        query = sa.select(alert_deliveries.c.message_id, alert_deliveries.c.target, alert_deliveries.c.outcome)
        with self._connect() as conn:
            rows = conn.execute(query.where(alert_deliveries.c.team_id == team_id)).all()
        return [(r.message_id, r.target, r.outcome) for r in rows]

    def firing(self) -> list[tuple[str, AlertRow]]:
        """Every (team id, alert) that is firing or recovering, or firing under no-data."""
        states = ("firing", "recovering")
        query = (
            sa.select(alert_states)
            .where(sa.or_(alert_states.c.state.in_(states), alert_states.c.held.in_(states)))
            .order_by(alert_states.c.team_id, alert_states.c.kpi_id)
        )
        with self._connect() as conn:
            return [(row["team_id"], _alert_row(row)) for row in conn.execute(query).mappings()]


def _store_new_items(conn: Connection, team_id: str, check_at: datetime, new_items: NewItems) -> None:
    """Keep the items never told before and, if there are any, the notice telling them."""
    told = [
        item
        for key, item in new_items.items.items()
        if insert_ignore(
            conn,
            alert_items,
            {"team_id": team_id, "item": key, "check_at": to_utc(check_at), "created": _created(item)},
        )
        == 1
    ]
    if told:
        defaults = {"team_id": team_id, "state": NOTICE_PENDING, "attempts": 0}
        notice = defaults | dict(new_items.notice) | {"items": json.dumps(told)}
        insert_ignore(conn, alert_notices, _utc_times(notice))


def _created(item: Mapping[str, Any]) -> datetime | None:
    created = item.get("created")
    return to_utc(datetime.fromisoformat(created)) if created else None


def _write_state(conn: Connection, team_id: str, read: AlertRow | None, kpi_id: str, fields: Mapping[str, Any]) -> bool:
    values = _utc_times(dict(fields))
    if read is None:
        row = {"team_id": team_id, "kpi_id": kpi_id, "version": 1} | values
        return insert_ignore(conn, alert_states, row) == 1
    count = conn.execute(
        alert_states.update()
        .where(alert_states.c.team_id == team_id, alert_states.c.kpi_id == kpi_id)
        .where(alert_states.c.version == read.version)
        .values(version=read.version + 1, **values)
    ).rowcount
    return count == 1


def _utc_times(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: to_utc(value) if key in _TIMES and isinstance(value, datetime) else value for key, value in values.items()
    }


def _aware(row: Any) -> dict[str, Any]:
    return {key: utc_aware(value) if isinstance(value, datetime) else value for key, value in row.items()}


def _alert_row(row: Any) -> AlertRow:
    fields = _aware(row)
    kpi_id, version = fields.pop("kpi_id"), fields.pop("version")
    fields.pop("team_id")
    return AlertRow(kpi_id, fields, version)


def _notice_row(row: Any) -> NoticeRow:
    fields = _aware(row)
    fields.pop("claimed_by")
    fields.pop("claimed_until")
    return NoticeRow(**fields)
