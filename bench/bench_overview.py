"""What `/score all` costs for 250 teams: the overview from stored readings against a live read of every team.

Builds a SQLite store with 250 teams of 3 KPIs, each with a reading a day for
14 days, on a `file` source (the fastest source there is: a Vtiger or http
source adds a network round trip per KPI). Prints the median of 5 runs of
each way, and their ratio:

- stored: `overview()` (two store queries a team) and the first page's card;
- live: `Services.report` for every team (what `/score TEAM` does, 250 times),
  without recording.

Run: ``.venv/bin/python bench/bench_overview.py``
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.cards import overview_message
from bot.config import load_config
from bot.context import Services
from bot.overview import overview
from bot.services import build_services
from bot.store import SCORE, Reading

TEAMS, KPIS, DAYS, RUNS = 250, 3, 14, 5
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def setup(folder: Path) -> Services:
    rows = "".join(f"t{n:03d},{'High' if n % 3 else 'Low'}\n" for n in range(TEAMS) for _ in range(4))
    (folder / "issues.csv").write_text("team,priority\n" + rows)
    kpi = {"source": "issues", "category": "priority", "weights": {"High": 5, "Low": 1}, "target": 20, "warning": 40}
    teams = [
        {
            "id": f"t{n:03d}",
            "name": f"Team {n:03d}",
            "kpis": [
                kpi | {"id": f"k{k}", "name": f"KPI {k}", "count": {"where": {"team": f"t{n:03d}"}}}
                for k in range(KPIS)
            ],
        }
        for n in range(TEAMS)
    ]
    data = {"chat": {"verify": False}, "sources": {"issues": {"type": "file", "path": "issues.csv"}}, "teams": teams}
    (folder / "scorebot.yaml").write_text(yaml.safe_dump(data))
    services = build_services(
        load_config(folder / "scorebot.yaml"), clock=lambda: NOW, store_url=f"sqlite:///{folder / 's.db'}"
    )
    services.store.add_readings(
        [
            Reading(f"t{n:03d}", f"k{k}", NOW - timedelta(days=d, minutes=n), SCORE, {"High": d % 5}, (d % 5) * 5.0)
            for n in range(TEAMS)
            for k in range(KPIS)
            for d in range(DAYS)
        ]
    )
    return services


def median_seconds(run: Callable[[], None]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        services = setup(Path(folder))
        config = services.config

        def stored() -> None:
            teams = overview(config, services.store, NOW)
            overview_message(teams, NOW, page=0, button_function="refresh")

        def live() -> None:
            for team in config.teams:
                services.report(team, SCORE, record=False)

        stored_s, live_s = median_seconds(stored), median_seconds(live)
    print(f"{TEAMS} teams x {KPIS} KPIs, {DAYS} days of readings, SQLite, median of {RUNS} runs")
    print(f"stored readings (overview + first page): {stored_s * 1000:8.1f} ms")
    print(f"live read of every team (file source):   {live_s * 1000:8.1f} ms")
    print(f"live / stored: {live_s / stored_s:.1f}x")


if __name__ == "__main__":
    main()
