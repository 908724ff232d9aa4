"""What alert checks cost the CRM against the scheduled tick: 200 teams x 2 KPIs, checked every 15 minutes.

Against the Vtiger stand-in of `bench.scale` (`bench.scale_data.StandIn`, every
call ``--delay`` seconds late), each run on a new SQLite store, every tick in a
fresh process (`tests.tick_worker`, as ``python -m bot tick`` runs it):

1. Three scheduled ticks of every team, a minute apart (`bench.scale.due`),
   each in a new process on the same store: the first fills it (row counts,
   a first post), the second posts after it; the third, every team having
   posted before (what the card counts as new since), is the baseline: one
   scheduled tick of the teams.
2. The same teams with ``alerts: {check_every: 15m, new_items: [Urgent]}``
   (the priority KPI weighs Urgent, so it lists its new Urgent items too) and
   ``cache_seconds: 0`` (checks 15 minutes apart never find a reading younger
   than a minute; here they run seconds apart on the wall clock): two checks
   15 minutes apart, nothing else due. The first is every KPI's first reading;
   the second is a check as every later one is, and is set against the tick.

Figures per run: data calls (``query``) at the stand-in, and the seconds from
"go" until the process exits (the tick posts 200 webhooks, ``--webhook-delay``
late each; a check with no crossing posts nothing). Printed per run, then the
medians and their ratios.

Usage: .venv/bin/python bench/bench_alerts.py [--teams 200] [--delay 0.1] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scale import TickRun, due, run_ticks, webhooks
from bench.scale_data import KPIS, StandIn, Team, generate, write_config
from bot.alerts.check import check_at

CHECK_EVERY = timedelta(minutes=15)


def with_alerts(path: Path, target: Path) -> Path:
    """``path``'s config with every team checked every 15 minutes, alerting on new Urgent items, uncached."""
    data = yaml.safe_load(path.read_text())
    for source in data["sources"].values():
        source["cache_seconds"] = 0
    for team in data["teams"]:
        team["alerts"] = {"check_every": "15m", "new_items": ["Urgent"]}
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def one_run(
    number: int, args: argparse.Namespace, vtiger: StandIn, teams: list[Team], folder: Path
) -> tuple[TickRun, TickRun]:
    """The baseline tick (the third) and the second check of one run, on a new store."""
    chat = webhooks(teams, args.webhook_delay)
    try:
        store = f"sqlite:///{folder / f'alerts-{number}.db'}"
        slot, cron = due(3)
        config = write_config(
            folder / f"tick-{number}.yaml", teams, vtiger=vtiger, webhook=chat, store=store, cron=cron
        )
        log = folder / f"run-{number}.log"
        ticks = [run_ticks(config, store, slot + timedelta(seconds=s), 1, vtiger, chat, log) for s in (30, 90, 150)]
        checked = with_alerts(config, folder / f"alerts-{number}.yaml")
        first = check_at(slot + timedelta(minutes=3), CHECK_EVERY) + CHECK_EVERY + timedelta(seconds=20)
        checks = [run_ticks(checked, store, first + n * CHECK_EVERY, 1, vtiger, chat, log) for n in (0, 1)]
    finally:
        chat.close()
    named = [(f"tick {n + 1}", run) for n, run in enumerate(ticks)] + [
        (f"check {n + 1}", c) for n, c in enumerate(checks)
    ]
    for name, run in named:
        print(
            f"  run {number} {name}: {run.calls.data} data calls (+{run.calls.login} login, {run.calls.describe}"
            f" describe); {run.to_exit:.2f} s go to exit; outcomes {dict(run.states)}",
            flush=True,
        )
    return ticks[2], checks[1]


def main(argv: list[str] | None = None) -> int:
    """Run ``--runs`` runs and print their figures and medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds the Vtiger stand-in takes a call")
    parser.add_argument("--webhook-delay", type=float, default=0.05, help="seconds a webhook takes to answer")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    teams = generate(args.teams, seed=args.seed)
    vtiger = StandIn(teams, args.delay)
    print(f"{args.teams} teams x {len(KPIS)} KPIs, Vtiger stand-in {args.delay * 1000:.0f} ms a call", flush=True)
    try:
        with tempfile.TemporaryDirectory() as folder:
            pairs = [one_run(n, args, vtiger, teams, Path(folder)) for n in range(1, args.runs + 1)]
    finally:
        vtiger.close()
    tick_calls = statistics.median(t.calls.data for t, _ in pairs)
    check_calls = statistics.median(c.calls.data for _, c in pairs)
    tick_wall = statistics.median(t.to_exit for t, _ in pairs)
    check_wall = statistics.median(c.to_exit for _, c in pairs)
    checked = all(c.states.get("alert checked", 0) == args.teams for _, c in pairs)
    print(f"medians of {args.runs} runs (at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC):")
    print(f"  scheduled tick: {tick_calls:.0f} data calls, {tick_wall:.2f} s")
    print(f"  alert check:    {check_calls:.0f} data calls, {check_wall:.2f} s; every team checked: {checked}")
    print(f"  calls, check / tick: {check_calls / tick_calls:.2f} (goal <= 1.10)")
    print(f"  wall time, check / tick: {check_wall / tick_wall:.2f} (goal <= 1.00)")
    return 0 if checked and check_calls <= 1.1 * tick_calls and check_wall <= tick_wall else 1


if __name__ == "__main__":
    sys.exit(main())
