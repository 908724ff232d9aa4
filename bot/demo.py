"""Generated history for the demo: 60 days of readings and posts, the same numbers on every run.

Each KPI's counts follow a seeded random walk per category (seeded by team and
KPI id, so the history is deterministic) back from today's counts; a scheduled team has one post a day
on its schedule's days (at its first slot from 09:00, in its zone) with the
reading taken for it (slots and deliveries recorded for the last 14 days),
and the other days a `/score` view in the afternoon.
About one day in twelve has no reading at all, so charts show gaps. One post
three days ago is recorded failed, so the status page shows what a failure
looks like. Every generated delivery says "demo history" in its detail.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta

from croniter import croniter

from bot.config import Config, KpiConfig, TeamConfig, iter_kpis
from bot.context import Services
from bot.delivery import target_key
from bot.errors import SourceError
from bot.reports import measure_of, rule_of, wanted_of
from bot.slots import slot_instant
from bot.sources import Deadline, with_categories_of
from bot.store import DELIVERED, FAILED, POST, SCORE, Reading, Store, to_utc
from scoring import VALUE, score_kpi

DEMO_DAYS = 60
POSTED_DAYS = 14
"""Posts (slots and deliveries) are recorded for the last two weeks; readings for every day."""
OWNER = "demo-history"
GAP_CHANCE = 1 / 12
VIEW_TIME = time(15, 0)


def seed_history(
    store: Store,
    config: Config,
    now: datetime,
    days: int = DEMO_DAYS,
    today: Mapping[tuple[str, str], Mapping[str, float]] | None = None,
) -> int:
    """Write ``days`` local days of history (ending today, nothing after ``now``) for every team; return readings.

    ``today`` gives KPIs' current counts by (team id, KPI id): their history then
    wanders around them and ends on them, so the live readings carry the trend on.
    """
    written = 0
    for team in config.teams:
        zone = config.zone(team)
        local_today = now.astimezone(zone).date()
        rng = _rng(team.id)
        start = today or {}
        walks = {kpi.id: _walk_kpi(kpi, _rng(team.id, kpi.id), days, start.get((team.id, kpi.id))) for kpi in team.kpis}
        readings: list[Reading] = []
        for back in range(days - 1, -1, -1):
            day = local_today - timedelta(days=back)
            if rng.random() < GAP_CHANCE and back > 0:
                continue
            slot = _first_slot(team, config, day)
            at = slot or datetime.combine(day, VIEW_TIME, zone)
            if at > now:
                continue
            origin = POST if slot else SCORE
            for kpi in team.kpis:
                measured = walks[kpi.id][back]
                index = score_kpi(measured, rule_of(kpi)).index
                counts = {c: int(n) for c, n in measured.items()} if kpi.counted else {}  # a value is its index
                readings.append(Reading(team.id, kpi.id, to_utc(at), origin, counts, index, slot=slot))
            if slot and back < POSTED_DAYS:
                _record_post(store, team, to_utc(slot), failed=back == 3)
        store.add_readings(readings)
        written += len(readings)
    return written


def current_counts(services: Services) -> dict[tuple[str, str], Mapping[str, float]]:
    """Every KPI's counts (a value KPI's number) read once now, by (team id, KPI id); KPIs whose source fails
    are left out."""
    config, found = services.config, {}
    for team, kpi in iter_kpis(config):
        wanted = wanted_of(kpi, None, services.clock())
        try:
            result = services.sources[kpi.source].fetch(
                kpi.count, kpi.category, Deadline.after(config.fetch_budget_seconds), wanted
            )
            found[(team.id, kpi.id)] = measure_of(kpi, with_categories_of(result, kpi.weights))
        except SourceError:
            continue
    return found


def _walk_kpi(
    kpi: KpiConfig, rng: random.Random, days: int, start: Mapping[str, float] | None
) -> list[Mapping[str, float]]:
    """A KPI's measures ``days`` days back, today first: counts per category, or a value KPI's number."""
    if kpi.counted:
        counts = {c: int(n) for c, n in start.items()} if start is not None else None
        return list(_walk_back(kpi, rng, days, counts))
    value = start[VALUE] if start is not None else (kpi.target + kpi.warning) / 2
    walk: list[Mapping[str, float]] = []
    for _ in range(days):
        walk.append({VALUE: round(value, 1)})
        value = max(0.0, value + rng.uniform(-0.06, 0.06) * max(abs(kpi.warning), 1.0))
    return walk


def _first_slot(team: TeamConfig, config: Config, day: date) -> datetime | None:
    """The team's first scheduled slot at or after 09:00 on local ``day`` (UTC), if it has one that day."""
    if not team.schedule:
        return None
    wall = croniter(team.schedule, datetime.combine(day, time(9, 0)) - timedelta(seconds=1)).get_next(datetime)
    return slot_instant(wall, config.zone(team)) if wall.date() == day else None


def _record_post(store: Store, team: TeamConfig, slot: datetime, *, failed: bool) -> None:
    done = slot + timedelta(seconds=2)
    store.claim(team.id, slot, OWNER, slot, done + timedelta(minutes=3))
    outcome, detail = ("rejected", "demo history: the target answered HTTP 404") if failed else ("delivered", None)
    for target in team.deliver:
        store.record_delivery(team.id, slot, target_key(target), outcome, done, detail=detail or "demo history")
    store.finish(team.id, slot, OWNER, FAILED if failed else DELIVERED, done, detail)


def _rng(*parts: str) -> random.Random:
    """A generator seeded by ``parts``: the same numbers on every run."""
    return random.Random("scorebot demo " + "/".join(parts))  # noqa: S311 (demo data, not a secret)


def _walk_back(kpi: KpiConfig, rng: random.Random, days: int, start: dict[str, int] | None) -> list[dict[str, int]]:
    """A KPI's counts ``days`` days back, today first: a random walk per category from ``start`` (or from levels
    that put the index near its warning), pulled back towards where it started."""
    if start is None:
        points = kpi.warning / max(len(kpi.weights), 1)
        start = {c: round(points / max(w, 1.0) * rng.uniform(0.4, 1.0)) for c, w in kpi.weights.items()}
    counts, walk = dict(start), []
    for _ in range(days):
        walk.append(dict(counts))
        for category, count in counts.items():
            pull = (start[category] > count) - (start[category] < count)
            steps = (-1, 0, 0, 0, 1) if kpi.weights.get(category, 1) >= 5 else (-2, -1, 0, 0, 1, 2)
            counts[category] = max(0, count + rng.choice(steps) + (pull if rng.random() < 0.3 else 0))
    return walk
