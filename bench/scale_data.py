"""Generated CRM data for the scale benchmark, the loopback Vtiger serving it, and the fewest calls it needs.

Every team's two KPIs count HelpDesk records with one common filter plus the
team's own owner (``ticketstatus != 'Closed' AND assigned_user_id = '20x17'``),
one by priority, one by severity, weighted 10/5/1. Most teams have under 100
open records, some several hundred (so both the page and the count plans
occur); in a third of the teams a few records carry an empty or off-picklist
category; some records have a picklist value in other letter case or with a
trailing space (Vtiger's ``=`` counts those as the value).

`StandIn` is the tests' Vtiger stand-in (`tests.fakes.vtiger.FakeVtiger`,
which counts every call in ``seen`` and sleeps ``delay`` seconds on each),
with two shortcuts that change no answer, only the stand-in's own CPU time:
a query naming one owner (``=`` or ``IN``, filters joined by AND) is tested
on that owner's records only, and each distinct query's matching records are
kept (the data never changes during a run). Without them the stand-in would
scan every record for every call and become the bottleneck it is not.

`minimum_calls` is the benchmark's yardstick, per KPI and with no sharing
between KPIs: the cheaper of paging (``rows // 100 + 1`` calls) and counting
(``1 + picklist values``, plus ``rest // 100 + 1`` pages when ``rest``
records have an empty or off-picklist category, plus 1 for the card's top
items, or its oldest item when no weighted category has records, plus 1 for
the count of new items when the team has posted before); login and
``describe`` are not counted.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from tests.fakes.vtiger import PICKLISTS, FakeVtiger, _fold

MODULE = "HelpDesk"
OWNER = "assigned_user_id"
COMMON_FILTER = "ticketstatus != 'Closed'"
OPEN_STATES = ("Open", "In Progress", "Wait For Response")
KPIS: dict[str, tuple[str, dict[str, float]]] = {
    "priority": ("ticketpriorities", {"Urgent": 10, "High": 5, "Normal": 1}),
    "severity": ("ticketseverities", {"Critical": 10, "Major": 5, "Minor": 1}),
}
"""KPI id: (category field, weights); a category's other picklist values weigh 0."""
OFF_LIST = {"ticketpriorities": "Blocker", "ticketseverities": "Cosmetic"}
TOP = 3
"""A KPI's ``top`` (the config default): the heaviest items a card lists."""
PAGE = 100
EPOCH = datetime(2026, 9, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Team:
    """One generated team: its id, its owner value in Vtiger, and its HelpDesk records (field: value)."""

    number: int
    records: tuple[dict[str, str], ...]

    @property
    def id(self) -> str:
        return f"team-{self.number:03d}"

    @property
    def owner(self) -> str:
        return f"20x{self.number}"

    @property
    def space(self) -> str:
        return f"T{self.number:03d}"

    def filter(self) -> str:
        """The VTQL filter of both KPIs: the common one and the team's own owner."""
        return f"{COMMON_FILTER} AND {OWNER} = '{self.owner}'"

    def open_records(self) -> list[dict[str, str]]:
        """The records the KPIs count."""
        return [r for r in self.records if _key(r["ticketstatus"]) != _key("Closed")]


def _key(value: str) -> str:
    """A value as Vtiger's ``=`` compares it: no letter case, no accents, no trailing spaces."""
    return _fold(value).rstrip(" ")


def _category(rng: random.Random, values: list[str], field: str, odd: bool) -> str:
    roll = rng.random()
    if odd and roll < 0.01:
        return ""
    if odd and roll < 0.02:
        return OFF_LIST[field]
    value = rng.choices(values, weights=range(len(values), 0, -1))[0]
    if roll < 0.05:
        return rng.choice([value.upper(), value.lower(), value + " "])
    return value


def generate(teams: int, seed: int = 7, big_share: float = 0.1) -> list[Team]:
    """``teams`` teams: most with 3-95 open records, ``big_share`` of them with 200-1200, a few closed each;
    in a third of the teams about 2% of the records have an empty or off-picklist category."""
    rng = random.Random(seed)
    out: list[Team] = []
    serial = 0
    for number in range(1, teams + 1):
        opened = rng.randint(200, 1200) if rng.random() < big_share else rng.randint(3, 95)
        closed = rng.randint(1, opened // 3 + 2)
        odd = rng.random() < 1 / 3
        records = []
        for index in range(opened + closed):
            serial += 1
            created = EPOCH - timedelta(minutes=rng.randint(0, 90 * 24 * 60))
            record = {
                "ticket_title": f"Ticket {serial}",
                "ticket_no": f"TT{serial}",
                OWNER: f"20x{number}",
                "createdtime": created.strftime("%Y-%m-%d %H:%M:%S"),
                "modifiedtime": created.strftime("%Y-%m-%d %H:%M:%S"),
                "ticketstatus": rng.choice(OPEN_STATES) if index < opened else "Closed",
                "ticketcategories": "Small Problem",
            }
            for field, _ in KPIS.values():
                record[field] = _category(rng, PICKLISTS[MODULE][field], field, odd)
            records.append(record)
        out.append(Team(number, tuple(records)))
    return out


def kpi_minimum(records: Iterable[Mapping[str, str]], field: str, since: bool) -> int:
    """The fewest data calls one KPI's read takes on ``records`` (the matching ones), as the module says."""
    rows = list(records)
    if not rows:
        return 1  # one count(*) answering 0, or one empty page
    values = PICKLISTS[MODULE][field]
    keys = {_key(v): v for v in values}
    named = [keys[_key(r[field])] for r in rows if _key(r[field]) in keys]
    rest = len(rows) - len(named)
    count = 1 + len(values) + (rest // PAGE + 1 if rest else 0) + 1 + since  # + the top items or the oldest
    return min(len(rows) // PAGE + 1, count)


def minimum_calls(teams: Iterable[Team], *, posted_before: bool) -> int:
    """The fewest data calls a tick reading every KPI of ``teams`` takes, KPI by KPI (see the module)."""
    total = 0
    for team in teams:
        rows = team.open_records()
        for field, _ in KPIS.values():
            total += kpi_minimum(rows, field, posted_before)
    return total


class StandIn(FakeVtiger):
    """The loopback Vtiger holding ``teams``' records, answering every call ``delay`` seconds late."""

    def __init__(self, teams: Iterable[Team], delay: float) -> None:
        super().__init__(keep_alive=True)
        self.delay = delay
        self._owners: dict[str, list[dict[str, str | None]]] = {}
        self._kept: dict[str, list[dict[str, str | None]]] = {}
        self._kept_lock = threading.Lock()
        self._flight_lock = threading.Lock()
        self._in_flight = self._peak = 0
        self._busy = 0.0
        for team in teams:
            for record in team.records:
                self.add(MODULE, 1, **record)
                self._owners.setdefault(_key(record[OWNER]), []).append(self.records[MODULE][-1])

    def _candidates(
        self, module: str, conditions: list[tuple[str, str, list[str]]], joins: list[str]
    ) -> list[dict[str, str | None]]:
        if module == MODULE and "OR" not in joins:
            for column, op, values in conditions:
                if column == OWNER and op in {"=", "IN"}:
                    return [r for v in dict.fromkeys(_key(v) for v in values) for r in self._owners.get(v, [])]
        return self.records[module]

    def _matching(
        self,
        module: str,
        conditions: list[tuple[str, str, list[str]]],
        joins: list[str],
        order: list[str],
        descending: bool,
    ) -> list[dict[str, str | None]]:
        key = repr((module, conditions, joins, order, descending))
        with self._kept_lock:
            kept = self._kept.get(key)
        if kept is None:
            kept = super()._matching(module, conditions, joins, order, descending)
            with self._kept_lock:
                self._kept[key] = kept
        return kept

    def respond(
        self, method: str, path: str, params: dict[str, str], headers: Any
    ) -> tuple[int, dict[str, str], bytes]:
        """The fake's answer, with the calls in flight counted (the most at once, and call-seconds in all)."""
        with self._flight_lock:
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
        started = time.monotonic()
        try:
            return super().respond(method, path, params, headers)
        finally:
            with self._flight_lock:
                self._in_flight -= 1
                self._busy += time.monotonic() - started

    def mark(self) -> Mark:
        """A starting point for `calls`: the calls so far; the most in flight at once counts from here."""
        with self._flight_lock:
            self._peak = self._in_flight
            busy = self._busy
        with self._lock:
            return Mark(len(self.seen), busy, time.monotonic())

    def calls(self, since: Mark) -> Calls:
        """What arrived since ``since``: calls by kind, call-seconds, and the most in flight at once."""
        with self._lock:
            seen = self.seen[since.calls :]
        kinds = {"query": "data", "getchallenge": "login", "login": "login", "describe": "describe"}
        counts = {"data": 0, "login": 0, "describe": 0, "other": 0}
        for call in seen:
            counts[kinds.get(call.operation, "other")] += 1
        with self._flight_lock:
            busy, peak = self._busy - since.busy, self._peak
        return Calls(**counts, busy=busy, wall=time.monotonic() - since.at, peak=peak)


@dataclass(frozen=True)
class Mark:
    """Where a count of the stand-in's calls starts."""

    calls: int
    busy: float
    at: float


@dataclass(frozen=True)
class Calls:
    """Calls the stand-in answered in a window: data (``query``), login (getchallenge + login), describe,
    other; ``busy``: the seconds they took, added up; ``wall``: the window's length; ``peak``: most at once."""

    data: int
    login: int
    describe: int
    other: int
    busy: float
    wall: float
    peak: int

    def line(self) -> str:
        """The calls, and how many were in flight on average and at most."""
        return (
            f"{self.data} data, {self.login} login, {self.describe} describe calls;"
            f" in flight {self.busy / self.wall if self.wall else 0:.1f} on average, {self.peak} at most"
        )


def write_config(
    path: Path,
    teams: Iterable[Team],
    *,
    vtiger: StandIn,
    webhook: Any,
    store: str,
    chat: dict[str, Any] | None = None,
    cache_seconds: float = 60,
    schedule: dict[str, Any] | None = None,
    cron: str = "0 9 * * *",
) -> Path:
    """A Scorebot config: every team on the schedule ``cron``, posting to its Space's webhook on ``webhook``
    (a FakeChat)."""
    data: dict[str, Any] = {
        "chat": chat or {"verify": False},
        "store": store,
        "timezone": "UTC",
        "schedule": schedule or {},
        "sources": {
            "crm": {
                "type": "vtiger",
                "url": vtiger.url,
                "username": vtiger.username,
                "access_key": vtiger.access_key,
                "cache_seconds": cache_seconds,
            }
        },
        "teams": [],
    }
    for team in teams:
        kpis = [
            {
                "id": kpi,
                "name": f"Open tickets by {kpi}",
                "source": "crm",
                "count": {"module": MODULE, "filter": team.filter(), "title": "ticket_title"},
                "category": field,
                "weights": weights,
                "target": 40,
                "warning": 80,
            }
            for kpi, (field, weights) in KPIS.items()
        ]
        data["teams"].append(
            {
                "id": team.id,
                "name": f"Team {team.number:03d}",
                "spaces": [f"spaces/{team.space}"],
                "schedule": cron,
                "deliver": [{"type": "webhook", "url": webhook.webhook_url(team.space)}],
                "kpis": kpis,
            }
        )
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
