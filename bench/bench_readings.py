"""What a card's history costs the store, with a day and with a year of every-minute readings.

Builds two SQLite stores for a team of several KPIs: one with a day of
readings (one a minute a KPI), one with a year of them, thinned as the tick's
retention leaves them (`--keep-days` in full, one a day before). Times the
store's part of one card (latest readings, the 14-day series, the last post,
the reading 7 days ago: one statement, and as four queries) and one retention
pass, and prints the medians of several runs and the year/day ratio: the
card's cost should not grow with the history.
Usage: .venv/bin/python bench/bench_readings.py [--kpis 5] [--keep-days 30] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.store import Reading, Store, metadata

ZONE = ZoneInfo("Europe/Berlin")
END = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)


def build(path: Path, days: int, kpis: int, keep_days: int) -> Store:
    """A store holding ``days`` of one reading a minute per KPI (ending at END), pruned as the tick would."""
    store = Store(f"sqlite:///{path}")
    readings = metadata.tables["readings"]
    start = END - timedelta(days=days) + timedelta(minutes=1)
    for day in range(days):
        minutes = [start + timedelta(days=day, minutes=m) for m in range(24 * 60)]
        with store.engine.begin() as conn:
            conn.execute(
                readings.insert(),
                [
                    {"team_id": "alpha", "kpi_id": f"k{k}", "taken_at": at, "origin": "score"}
                    | {"counts": json.dumps({"High": at.minute % 7}), "index_value": 5.0 * (at.minute % 7)}
                    for at in minutes
                    for k in range(kpis)
                ],
            )
        while any(store.prune(minutes[-1], keep_days, 50_000).values()):
            pass
    store.add_readings([Reading("alpha", f"k{k}", END, "score", {"High": 1}, 5.0) for k in range(kpis)])
    return store


def card_queries(store: Store) -> None:
    """The store's part of one card, as the Reporter asks it (one statement once its readings are known)."""
    store.card_history("alpha", ZONE, 14, END, END - timedelta(days=7), END)


def four_queries(store: Store) -> None:
    """The same as four separate queries (latest readings, the series, the last post, the reading 7 days ago)."""
    with store.one_connection():
        store.latest_readings("alpha")
        store.daily_series("alpha", ZONE, 14, END)
        store.last_post("alpha", END)
        store.reading_near("alpha", END - timedelta(days=7))


def median_ms(action: Callable[[], object], repeat: int, runs: int) -> float:
    """Median over ``runs`` of the mean time of ``repeat`` calls, in milliseconds."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(repeat):
            action()
        samples.append((time.perf_counter() - started) / repeat * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kpis", type=int, default=5)
    parser.add_argument("--keep-days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        stores = {
            "a day": build(Path(folder) / "day.db", 1, args.kpis, args.keep_days),
            "a year": build(Path(folder) / "year.db", 365, args.kpis, args.keep_days),
        }
        print(f"{args.kpis} KPIs, one reading a minute each, keep_days {args.keep_days}; medians of {args.runs} runs")
        times = {}
        for name, store in stores.items():
            with store.engine.connect() as conn:
                rows = conn.execute(
                    metadata.tables["readings"].select().with_only_columns(metadata.tables["readings"].c.id)
                ).all()
            times[name] = median_ms(lambda store=store: card_queries(store), 20, args.runs)
            separate = median_ms(lambda store=store: four_queries(store), 20, args.runs)
            prune = median_ms(lambda store=store: store.prune(END, args.keep_days, 5000), 5, args.runs)
            print(
                f"  {name:6}: {len(rows):7} readings stored; a card's store queries {times[name]:.2f} ms"
                f" (as four queries {separate:.2f} ms); a retention pass {prune:.2f} ms"
            )
        print(f"  card queries, a year / a day: {times['a year'] / times['a day']:.2f}×")
        for store in stores.values():
            store.engine.dispose()


if __name__ == "__main__":
    main()
