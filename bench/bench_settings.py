"""What following the teams' own settings costs: the read a tick makes of every team's overrides, and a request's.

Builds a SQLite store for 250 teams of 3 KPIs, each
with overrides of its schedule, zone, KPIs and a snooze, and a Space linked to it. Prints the median of 7
runs of each, and their ratios against reading one team's latest readings (what a cached `/score` reads
first), in the same process:

- first: a new `SettingsView`'s first read (one read of the overrides and links, every team's values checked
  and its effective configuration built);
- fresh: `SettingsView.teams(fresh=True)` again, what every tick does once (the same read; a team is built
  again only if its overrides' version moved);
- cached: `SettingsView.team(id)` within its seconds, what `/score` and Refresh do between reads;
- baseline: `Store.latest_readings(id)` for one team.

Run: ``.venv/bin/python bench/bench_settings.py``
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

from bot.config import Config, load_config
from bot.settings_view import SettingsView
from bot.store import SCORE, Reading, Store
from bot.team_settings import save_settings

TEAMS, KPIS, RUNS = 250, 3, 7
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def write_config(folder: Path) -> Config:
    (folder / "issues.csv").write_text("team,priority\nt000,High\n")
    kpi = {"source": "issues", "category": "priority", "weights": {"High": 5, "Low": 1}, "target": 20, "warning": 40}
    teams = [
        {
            "id": f"t{n:03d}",
            "name": f"Team {n:03d}",
            "schedule": "0 9 * * 1-5",
            "deliver": [{"type": "log"}],
            "kpis": [
                kpi | {"id": f"k{k}", "name": f"KPI {k}", "count": {"where": {"team": "t000"}}} for k in range(KPIS)
            ],
        }
        for n in range(TEAMS)
    ]
    data = {
        "chat": {"verify": False},
        "sources": {"issues": {"type": "file", "path": "issues.csv"}},
        "settings": {"editable": ["schedule", "timezone", "kpis", "snooze"], "editors": ["*@example.com"]},
        "teams": teams,
    }
    (folder / "bench.yaml").write_text(yaml.safe_dump(data))
    return load_config(folder / "bench.yaml")


def fill(store: Store, config: Config) -> None:
    for n, team in enumerate(config.teams):
        changes = {
            "schedule": "daily",
            "timezone": "Europe/Berlin",
            "kpis": ["k0", "k1"],
            "snooze": {"until": "week"},
        }
        save_settings(store, config, team.id, changes, version=0, who="ana@example.com", at=NOW)
        store.link_space(f"spaces/S{n:03d}", team.id, who="ana@example.com", at=NOW)
        store.add_readings(
            [Reading(team.id, f"k{k}", NOW - timedelta(minutes=1), SCORE, {"High": 2}, 10.0) for k in range(KPIS)]
        )


def median_ms(work: Callable[[], object], repeat: int = 1) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        for _ in range(repeat):
            work()
        times.append((time.perf_counter() - started) / repeat * 1000)
    return statistics.median(times)


def measure(name: str, url: str, config: Config) -> None:
    store = Store(url)
    fill(store, config)
    view = SettingsView(config, store)
    view.teams(fresh=True)
    first = median_ms(lambda: SettingsView(config, store).teams())
    fresh = median_ms(lambda: view.teams(fresh=True))
    cached = median_ms(lambda: view.team("t123"), repeat=1000)
    baseline = median_ms(lambda: store.latest_readings("t123"), repeat=20)
    print(f"{name}: {TEAMS} teams with overrides and a linked Space (median of {RUNS} runs)")
    print(f"  first read, every team built:  {first:8.2f} ms  ({first / baseline:7.1f} x the baseline)")
    print(f"  fresh read, once a tick:       {fresh:8.2f} ms  ({fresh / baseline:7.1f} x the baseline)")
    print(f"  cached, per /score or Refresh: {cached:8.4f} ms  ({cached / baseline:7.3f} x the baseline)")
    print(f"  baseline: one team's latest readings {baseline:.2f} ms")
    store.engine.dispose()


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        config = write_config(Path(folder))
        measure("SQLite", f"sqlite:///{Path(folder) / 'bench.db'}", config)


if __name__ == "__main__":
    main()
