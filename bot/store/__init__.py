"""The store: KPI readings (history) and scheduled-post state, through SQLAlchemy Core.

SQLite file by default; PostgreSQL for several instances. One module a concern:

- `bot.store.engine`: the engine and its connection rules (WAL, secrets hidden, times in UTC);
- `bot.store.schema`: the tables and the values their columns hold;
- `bot.store.readings` (with `bot.store.history`, the card's statements): readings and history queries;
- `bot.store.schedule`: team marks, slots, claims and deliveries;
- `bot.store.outbox`: the ``log`` target's messages;
- `bot.store.retention`: pruning;
- `bot.store.changes`: each team's change marker, moved by every write a card may show;
- `bot.store.settings`: each team's overrides of its editable settings, their audit trail, Space links.

`Store` is all of them on one engine; call sites use it and the names below.

``readings`` holds one row per fetch of one KPI: when, who asked (``origin``:
a scheduled post, a tick's retry, ``/score``, Refresh, a manual ``send``, or
``legacy`` for rows carried over from the old ``snapshots`` table), the
counts and index, the row count and plan the source reported, and for a post
the slot it was read for. Only a fetch writes a reading; showing one writes
nothing. ``kpi_latest`` points at each KPI's newest reading, so a card finds
it without scanning a year of history.

Scheduled posts keep three tables beside the readings:

- ``slot_runs``: one row per (team, slot); the row is the claim (see `bot.store.schedule`).
  Final states: delivered, failed, skipped, missed, superseded (a newer slot was posted
  instead: see `bot.schedule.catchup`), snoozed (the team had its posts snoozed).
- ``deliveries``: every attempt at every target, with its outcome; a target
  with a settled outcome is not sent again when the slot is retried.
- ``outbox``: messages of the ``log`` target (the demo's "Space").

``team_marks`` remembers, per team, when the scheduler first saw it and how
far it has looked, so slots skipped while it was down are recorded as missed.
``prune_marks`` remembers up to which day old readings have been thinned.

Every datetime is turned to UTC before it reaches the database: SQLite's
DateTime keeps no offset, so 09:00-05:00 would otherwise be stored as 09:00Z.
Every string does so with the secrets Scorebot knows hidden (`bot.secrets`),
whichever table and column it is written to.
"""

from __future__ import annotations

from bot.store.alerts import (
    NOTICE_FAILED,
    NOTICE_PENDING,
    NOTICE_SENT,
    AlertRow,
    Alerts,
    NewItems,
    NoticeRow,
    TransitionRow,
    item_key,
)
from bot.store.changes import Changes
from bot.store.engine import make_engine, resolve_url, to_utc
from bot.store.outbox import Outbox
from bot.store.readings import Readings
from bot.store.records import CardHistory, DeliveryRecord, OutboxEntry, Reading, SlotRun, TeamMark
from bot.store.retention import Retention
from bot.store.schedule import Schedule
from bot.store.schema import (
    CLAIMED,
    CONCLUDED,
    DELIVERED,
    FAILED,
    LEGACY,
    MISSED,
    PENDING,
    POST,
    POSTED_OUTCOMES,
    REFRESH,
    RETRY,
    SCHEMA_VERSION,
    SCORE,
    SEND,
    SETTLED_OUTCOMES,
    SKIPPED,
    SNOOZED,
    SUPERSEDED,
    UNFINISHED,
    metadata,
    schema_info,
)
from bot.store.settings import (
    CONFLICT,
    LINKED,
    RESET,
    SAVED,
    UNLINKED,
    Overrides,
    SaveResult,
    Settings,
    SettingsChange,
)


class Store(Readings, Schedule, Outbox, Retention, Alerts, Changes, Settings):
    """Scorebot's persistent state: every concern's methods on one engine."""


__all__ = [
    "CLAIMED",
    "CONCLUDED",
    "CONFLICT",
    "DELIVERED",
    "FAILED",
    "LEGACY",
    "LINKED",
    "MISSED",
    "NOTICE_FAILED",
    "NOTICE_PENDING",
    "NOTICE_SENT",
    "PENDING",
    "POST",
    "POSTED_OUTCOMES",
    "REFRESH",
    "RESET",
    "RETRY",
    "SAVED",
    "SCHEMA_VERSION",
    "SCORE",
    "SEND",
    "SETTLED_OUTCOMES",
    "SKIPPED",
    "SNOOZED",
    "SUPERSEDED",
    "UNFINISHED",
    "UNLINKED",
    "AlertRow",
    "Alerts",
    "CardHistory",
    "DeliveryRecord",
    "NewItems",
    "NoticeRow",
    "OutboxEntry",
    "Overrides",
    "Reading",
    "SaveResult",
    "Settings",
    "SettingsChange",
    "SlotRun",
    "Store",
    "TeamMark",
    "TransitionRow",
    "item_key",
    "make_engine",
    "metadata",
    "resolve_url",
    "schema_info",
    "to_utc",
]
