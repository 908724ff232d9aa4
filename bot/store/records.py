"""The values the store hands out: readings, a card's history, slot states, delivery attempts, the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class Reading:
    """One fetch of one KPI: its counts and index at ``taken_at`` (UTC), and where it came from.

    ``rows`` and ``plan`` are what the source reported (None when it did not
    say); ``slot`` is the scheduled slot (or manual send) the reading was taken for;
    ``extras`` what the read found besides the counts, as JSON values (top items,
    oldest, new and closed since the last post), so that any process shows the reading as the one that took it.
    """

    team_id: str
    kpi_id: str
    taken_at: datetime
    origin: str
    counts: dict[str, int]
    index: float
    rows: int | None = None
    plan: str | None = None
    slot: datetime | None = None
    extras: dict[str, Any] | None = None


@dataclass(frozen=True)
class CardHistory:
    """What a card compares with, as `Store.card_history` reads it in one statement."""

    latest: dict[str, Reading]
    """Each KPI's newest reading."""
    days: dict[str, list[tuple[date, Reading | None]]]
    """Per KPI, the last reading of each local day (as `Store.daily_series`)."""
    post: tuple[datetime, dict[str, Reading]] | None
    """The latest post before a time and its readings (as `Store.last_post`); None when not asked or none."""
    week: dict[str, Reading]
    """Per KPI, the reading nearest a moment (as `Store.reading_near`)."""


@dataclass(frozen=True)
class SlotRun:
    """The state of one (team, slot): the claim, and how it ended."""

    team_id: str
    slot: datetime
    state: str
    attempts: int
    claimed_by: str | None
    claimed_until: datetime | None
    updated_at: datetime
    detail: str | None
    retry_at: datetime | None = None


@dataclass(frozen=True)
class DeliveryRecord:
    """One attempt to post a slot's message to one target."""

    team_id: str
    slot: datetime
    target: str
    outcome: str
    at: datetime
    message_id: str | None
    detail: str | None


@dataclass(frozen=True)
class OutboxEntry:
    """A message the ``log`` target "posted"."""

    team_id: str
    slot: datetime
    created_at: datetime
    message: dict[str, Any]


@dataclass(frozen=True)
class TeamMark:
    """When the scheduler first saw a team, and up to when it has looked for slots."""

    first_seen: datetime
    scanned_until: datetime
