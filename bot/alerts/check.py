"""One check of a team: its report judged KPI by KPI, as the rows the store keeps (pure: no store, no clock).

A KPI read now (or shown from a stored reading younger than its source's
``cache_seconds``: the cache the other reads share) is a `Reading`; a KPI whose
read failed or is stale is a `Failed` read. A cached reading a previous check
already judged is not judged again, so one reading never counts twice towards
``pending``.

Notices get ids that are a function of the team, the KPI, what they say and
when: ``client-alert-…`` message ids (the Chat API deduplicates on them) and
one thread key per incident.

New items (``new_items``): a KPI whose alert has judged a reading before lists
its open items of those categories created after that reading (the source
finds them in the same read); a check's new items make one notice, and the
store keeps each item it tells, so none is told twice. A KPI's first check
lists nothing: what was open when alerts were switched on is never new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.alert_settings import AlertSettings
from bot.alerts.machine import Event, Failed, KpiAlert, Levels, Notice, Policy, Reading, State, Transition, apply
from bot.alerts.quiet import release_at
from bot.config import KpiConfig, TeamConfig
from bot.sources import Item
from bot.store import NewItems, item_key

_ALERT_FIELDS = tuple(f.name for f in fields(KpiAlert))
NEW_ITEMS = "new-items"
"""The kind of the notice that tells a check's new items."""
ALL_KPIS = "*"
"""The KPI id of a new-items notice (it tells the items of every KPI of the team)."""


@dataclass(frozen=True)
class KpiOutcome:
    """What one check did to one KPI: the alert before and after, and the rows to store."""

    kpi_id: str
    before: KpiAlert
    after: KpiAlert
    read_at: datetime | None
    transitions: tuple[Transition, ...]
    notices: tuple[Notice, ...]


@dataclass(frozen=True)
class KpiRead:
    """A KPI as the check found it: its index and when it was read, or why it could not be read."""

    kpi_id: str
    index: float | None
    read_at: datetime | None
    failure: str | None = None


def check_at(now: datetime, every: timedelta) -> datetime:
    """The check ``now`` belongs to: ``now`` rounded down to a multiple of ``every`` since the epoch (UTC)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((now.astimezone(UTC) - epoch) // every) * every


def levels_of(kpi: KpiConfig, settings: AlertSettings) -> Levels:
    """The KPI's thresholds as its alert judges them."""
    return Levels.of(kpi.target, kpi.warning, kpi.lower_is_better, settings)


def alert_of(fields_: Mapping[str, Any]) -> KpiAlert:
    """A stored row's fields as the machine's state (unknown fields ignored)."""
    values = {name: fields_[name] for name in _ALERT_FIELDS if name in fields_}
    values["state"] = State(values.get("state", State.NORMAL))
    if values.get("held"):
        values["held"] = State(values["held"])
    if "index_value" in fields_:
        values["index"] = fields_["index_value"]
    return KpiAlert(**values)


def row_of(alert: KpiAlert, read_at: datetime | None) -> dict[str, Any]:
    """The machine's state as the store's row fields."""
    values = asdict(alert)
    values["index_value"] = values.pop("index")
    values["state"] = str(alert.state)
    values["held"] = str(alert.held) if alert.held else None
    return values | {"read_at": read_at}


def judge(
    team: TeamConfig,
    settings: AlertSettings,
    zone: ZoneInfo,
    now: datetime,
    reads: Sequence[KpiRead],
    stored: Mapping[str, tuple[KpiAlert, datetime | None]],
) -> list[KpiOutcome]:
    """Each KPI's alert after this check at ``now``; a KPI whose reading the last check judged is left out."""
    policy = Policy.of(settings, zone)
    kpis = {kpi.id: kpi for kpi in team.kpis}
    outcomes = []
    for read in reads:
        before, judged_at = stored.get(read.kpi_id, (KpiAlert(), None))
        event: Event
        if read.failure is not None or read.index is None:
            event = Failed(now, read.failure or "no data")
        elif judged_at is not None and read.read_at is not None and read.read_at <= judged_at:
            continue  # the same cached reading as last time: nothing new to judge
        else:
            event = Reading(now, read.index)
        step = apply(before, event, levels_of(kpis[read.kpi_id], settings), policy)
        read_at = read.read_at if isinstance(event, Reading) else judged_at
        outcomes.append(KpiOutcome(read.kpi_id, before, step.alert, read_at, step.transitions, step.notices))
    return outcomes


def notice_id(team_id: str, kpi_id: str, notice: Notice) -> str:
    """A notice's id: the team, the KPI, what it says and when (one notice per transition)."""
    return f"{team_id}/{kpi_id}/{notice.kind}/{notice.at.astimezone(UTC):%Y%m%dT%H%M%S}"


def message_id_of(notice_ids: Sequence[str]) -> str:
    """The Chat API ``messageId`` of a message carrying ``notice_ids``: ``client-alert-`` and 40 hex digits."""
    digest = hashlib.sha256("\n".join(sorted(notice_ids)).encode()).hexdigest()[:40]
    return f"client-alert-{digest}"


def thread_key(team_id: str, kpi_id: str, incident: datetime | None) -> str:
    """One thread per incident (an alert from its fire to its resolve, or a stretch without data)."""
    moment = f"{incident.astimezone(UTC):%Y%m%d%H%M%S}" if incident else "none"
    return f"alert-{team_id}-{kpi_id}-{moment}"


def notice_rows(team: TeamConfig, settings: AlertSettings, zone: ZoneInfo, outcome: KpiOutcome) -> list[dict[str, Any]]:
    """The store's rows of an outcome's notices, each with when it may go out (after quiet hours)."""
    rows = []
    for notice in outcome.notices:
        release = release_at(notice.at, settings.quiet_hours, zone)
        rows.append(
            {
                "id": notice_id(team.id, outcome.kpi_id, notice),
                "kpi_id": outcome.kpi_id,
                "kind": str(notice.kind),
                "at": notice.at,
                "release_at": release,
                "level": notice.level,
                "index_value": notice.index,
                "incident": notice.incident,
                "fired_seconds": notice.fired_for.total_seconds() if notice.fired_for is not None else None,
                "reason": notice.reason,
                "held": release > notice.at,
            }
        )
    return rows


def transition_rows(outcome: KpiOutcome) -> list[dict[str, Any]]:
    """The store's rows of an outcome's transitions."""
    return [
        {
            "kpi_id": outcome.kpi_id,
            "at": t.at,
            "before": str(t.before),
            "after": str(t.after),
            "move": str(t.move),
            "index_value": t.index,
            "reason": t.reason,
        }
        for t in outcome.transitions
    ]


def new_after_of(team: TeamConfig, read_at: Mapping[str, datetime | None]) -> dict[str, datetime]:
    """Per count KPI weighing one of the ``new_items`` categories whose alert judged a reading before: when
    that reading was taken (its items created later are new); none before a KPI's first check."""
    return {
        kpi.id: after for kpi in team.kpis if team.lists_new_items(kpi) and (after := read_at.get(kpi.id)) is not None
    }


def item_json(item: Item) -> dict[str, Any]:
    """An item as notices keep it: ``title``, ``category``, ``created`` (ISO), ``link``."""
    created = item.created.isoformat() if item.created else None
    return {"title": item.title, "category": item.category, "created": created, "link": item.link}


def new_items_of(
    team: TeamConfig,
    settings: AlertSettings,
    zone: ZoneInfo,
    when: datetime,
    found: Mapping[str, Sequence[Item]],
) -> NewItems | None:
    """The new items a check found (per KPI id) and the one notice that tells them; None when there are none."""
    items: dict[str, dict[str, Any]] = {}
    for kpi_id, listed in found.items():
        for item in listed:
            entry = item_json(item)
            items.setdefault(item_key(entry, kpi_id), entry)
    if not items:
        return None
    ordered = dict(sorted(items.items(), key=lambda pair: pair[1]["created"] or ""))
    release = release_at(when, settings.quiet_hours, zone)
    notice = {
        "id": f"{team.id}/{ALL_KPIS}/{NEW_ITEMS}/{when.astimezone(UTC):%Y%m%dT%H%M%S}",
        "kpi_id": ALL_KPIS,
        "kind": NEW_ITEMS,
        "at": when,
        "release_at": release,
        "held": release > when,
    }
    return NewItems(ordered, notice)
