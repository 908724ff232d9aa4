"""What top items, the oldest item and the new count cost a Vtiger KPI: calls and time, against the counts alone.

Runs the loopback Vtiger stand-in (tests/fakes/vtiger.py) with KPIs of several sizes, each read with the
counts alone (the baseline) and with what a card asks (top 3, the oldest, new since a post), once
paged and once counted per category. Prints the calls of one warm read (signed in, module described)
and the median time of several reads, with the ratio to the baseline read in the same run.
Usage: .venv/bin/python bench/bench_top_items.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.sources.base import NOTHING_MORE, Deadline, Wanted
from bot.sources.vtiger import VtigerQuery, VtigerSettings, VtigerSource
from tests.fakes.vtiger import FakeVtiger

WEIGHTS = {"High": 5, "Medium": 2, "Low": 1}
START = datetime(2026, 9, 1, tzinfo=UTC)


def seed(fake: FakeVtiger, rows: int) -> None:
    """``rows`` open tasks, a third of each priority, one created an hour after the other."""
    fake.records["Calendar"].clear()
    for hour in range(rows):
        priority = ("High", "Medium", "Low")[hour % 3]
        created = (START + timedelta(hours=hour)).strftime("%Y-%m-%d %H:%M:%S")
        fake.add("Calendar", 1, taskpriority=priority, taskstatus="Open", subject=f"task {hour}", createdtime=created)


def read(source: VtigerSource, plan: str, wanted: Wanted, runs: int) -> tuple[int, float]:
    """Calls of one warm read, and the median milliseconds over ``runs`` reads."""
    query = VtigerQuery.model_validate({"module": "Calendar", "filter": "taskstatus = 'Open'", "plan": plan})
    source.fetch(query, "taskpriority", Deadline.after(30), wanted)  # sign in, describe
    samples, calls = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        calls = source.fetch(query, "taskpriority", Deadline.after(30), wanted).calls
        samples.append((time.perf_counter() - started) * 1000)
    return calls, statistics.median(samples)


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    fake = FakeVtiger()
    settings = VtigerSettings.model_validate(
        {"type": "vtiger", "url": fake.url, "username": fake.username, "access_key": fake.access_key}
    )
    wanted = Wanted(top=3, weights=WEIGHTS, since=START + timedelta(days=2), oldest=True)
    print(f"median of {args.runs} warm reads; calls of one read")
    print(f"  {'rows':>5} {'plan':5}  {'counts alone':>18}  {'with top items etc.':>22}  extra calls  time ratio")
    try:
        for rows in (50, 450, 1200):
            seed(fake, rows)
            for plan in ("page", "count"):
                source = VtigerSource("bench", settings, Path())
                base_calls, base_ms = read(source, plan, NOTHING_MORE, args.runs)
                calls, ms = read(source, plan, wanted, args.runs)
                source.close()
                print(
                    f"  {rows:5d} {plan:5}  {base_calls:3d} calls {base_ms:7.1f} ms  "
                    f"{calls:6d} calls {ms:7.1f} ms  {calls - base_calls:11d}  {ms / base_ms:9.2f}x"
                )
    finally:
        fake.close()


if __name__ == "__main__":
    main()
