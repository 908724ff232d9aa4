"""Scheduling commands of `python -m bot`:

tick [--now ISO-TIME] [--dry-run | --force]   post each team's latest due slot (for any external cron)
send TEAM [--dry-run]   post the team's card to its targets now, or print what would be posted
history TEAM            recent readings, slots, deliveries and the outbox's posts
schedule                each team's next slots in its own time zone
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import textwrap
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bot.card_text import message_as_text, message_summary
from bot.cards import value_text
from bot.config import TeamConfig
from bot.context import Services
from bot.delivery import manual_message_id, message_id, target_key
from bot.errors import DeliveryError
from bot.schedule.tick import ERROR, Scheduler, TeamPlan
from bot.slots import next_slots
from bot.sources import Deadline
from bot.store import FAILED, SEND, to_utc

Command = Callable[[argparse.Namespace, Services], int]


def add_commands(subparsers: Any) -> dict[str, Command]:
    """Register tick, send, history and schedule on ``subparsers``; return their handlers by name.

    Each parser also gets ``handler`` as a default, for callers that dispatch on it.
    """
    tick = subparsers.add_parser("tick", help="post each team's latest scheduled slot that is due")
    tick.add_argument(
        "--now",
        type=parse_instant,
        help="tick as of this ISO time (default: now; naive = UTC); refused beyond the grace period from the clock"
        " unless --dry-run or --force",
    )
    mode = tick.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print what the tick would claim and post; write nothing")
    mode.add_argument("--force", action="store_true", help="really post as of a --now beyond the grace period")
    send = subparsers.add_parser("send", help="post a team's card to its targets now")
    send.add_argument("team", help="the team's id")
    send.add_argument("--dry-run", action="store_true", help="print what would be posted, post nothing")
    history = subparsers.add_parser("history", help="a team's recent readings, slots and deliveries")
    history.add_argument("team", help="the team's id")
    history.add_argument("--limit", type=positive_int, default=10, help="rows of each kind to show (default 10)")
    schedule = subparsers.add_parser("schedule", help="each team's next scheduled slots")
    schedule.add_argument("--count", type=positive_int, default=3, help="slots to show per team (default 3)")
    handlers: dict[str, Command] = {
        "tick": cmd_tick,
        "send": cmd_send,
        "history": cmd_history,
        "schedule": cmd_schedule,
    }
    for name, handler in handlers.items():
        subparsers.choices[name].set_defaults(handler=handler)
    return handlers


def positive_int(text: str) -> int:
    """A whole number of 1 or more, for counts and limits."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {number}")
    return number


def parse_instant(text: str) -> datetime:
    """An ISO 8601 time, in UTC; without an offset it is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from None
    return to_utc(moment)


def cmd_tick(args: argparse.Namespace, services: Services) -> int:
    """Run one tick (or, with --dry-run, print what it would do); exit 1 if a slot failed, 2 if refused,
    3 if the tick's deadline came before some teams (named in the summary)."""
    clock = services.clock()
    grace = timedelta(minutes=services.config.schedule.grace_minutes)
    if args.now and abs(args.now - clock) > grace and not (args.dry_run or args.force):
        print(
            f"error: --now {args.now.isoformat()} is more than the grace period ({grace.total_seconds() / 60:g} min)"
            f" from the clock ({clock.isoformat()}); add --dry-run to see what that tick would do, or --force to"
            " really post as of then",
            file=sys.stderr,
        )
        return 2
    if args.dry_run:
        print_plans(Scheduler(services).plan(args.now or clock))
        return 0
    result = Scheduler(services).tick(args.now)
    for outcome in result.outcomes:
        detail = f": {outcome.detail}" if outcome.detail else ""
        print(f"{outcome.team_id} {outcome.slot.isoformat()} {outcome.state}{detail}")
    print(f"tick at {result.now.isoformat()}: {result.summary()}")
    if result.count(FAILED) or result.count(ERROR):
        return 1
    return 3 if result.not_reached else 0


def print_plans(plans: list[TeamPlan]) -> None:
    """Print what a tick would do for each team (``tick --dry-run``)."""
    for team in plans:
        plan, prefix = team.catchup, f"{team.team_id}:"
        first = " (first tick for this team)" if team.first_tick else ""
        if plan.wait_reason:
            print(f"{prefix} nothing now: {plan.wait_reason}")
        elif plan.work is None:
            print(f"{prefix} nothing due{first}")
        else:
            kind = "last attempt at " if plan.last_attempt else ""
            print(
                f"{prefix} would claim {plan.work.isoformat()}{first} and post it ({kind}messageId"
                f" {message_id(team.team_id, plan.work)}) to {', '.join(team.targets)}"
            )
        if plan.older:
            print(
                f"{prefix} would record {len(plan.older)} older slots superseded once it is posted"
                f" ({_span(plan.older)})"
            )
        if plan.outdated:
            print(f"{prefix} would record {len(plan.outdated)} slots superseded now ({_span(plan.outdated)})")
        if team.missed:
            print(f"{prefix} would record {len(team.missed)} slots missed ({_span(team.missed)})")
        if team.snoozed:
            print(f"{prefix} would record {len(team.snoozed)} slots snoozed ({_span(team.snoozed)})")
    print("dry run: nothing was claimed, posted or written")


def _span(slots: tuple[datetime, ...]) -> str:
    return slots[0].isoformat() if len(slots) == 1 else f"{slots[0].isoformat()} … {slots[-1].isoformat()}"


def cmd_send(args: argparse.Namespace, services: Services) -> int:
    """Post the team's card to each of its targets now (recorded in the history), or print it.

    Each run posts with a fresh ``messageId``: two sends in the same second are two messages.
    A dry run writes nothing to the store.
    """
    team = _team(services, args.team)
    if team is None:
        return 2
    if not team.deliver:
        print(f"team {team.id} has no deliver targets", file=sys.stderr)
        return 2
    scheduler = Scheduler(services)
    now = services.clock()
    report = services.report(team, SEND, record=not args.dry_run, slot=now)
    mid = manual_message_id(team.id, now)
    failures = 0
    for target in team.deliver:
        post = dataclasses.replace(scheduler.post_for(team, now, report, target), message_id=mid)
        key = target_key(target)
        if args.dry_run:
            thread = f", thread {post.thread_key}" if post.thread_key else ""
            print(f"→ {key} (messageId {post.message_id}{thread})")
            print(json.dumps(post.message, indent=2, ensure_ascii=False))
            continue
        try:
            sent = scheduler.delivery.send(target, post, Deadline.after(services.config.schedule.deadline_seconds))
        except DeliveryError as exc:
            failures += 1
            outcome = "error" if exc.retryable else "rejected"
            services.store.record_delivery(team.id, now, key, outcome, services.clock(), detail=str(exc))
            print(f"FAIL {key}: {exc}")
            continue
        outcome = "already" if sent.already else "delivered"
        services.store.record_delivery(team.id, now, key, outcome, services.clock(), message_id=post.message_id)
        print(f"ok   {key}: {outcome}")
    return 1 if failures else 0


def cmd_history(args: argparse.Namespace, services: Services) -> int:
    """Print the team's recent readings (with their origin), slots, delivery attempts and outbox posts."""
    team = _team(services, args.team)
    if team is None:
        return 2
    store, zone = services.store, services.config.zone(team)

    def local(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")

    print(f"{team.name} ({team.id}), times in {zone.key}")
    print("readings:")
    units = {kpi.id: kpi.unit for kpi in team.kpis if not kpi.counted}
    for reading in store.recent_readings(team.id, args.limit):
        slot = f" for {local(reading.slot)}" if reading.slot else ""
        if reading.kpi_id in units:
            measured = f"value {value_text(reading.index, units[reading.kpi_id])}"
        else:
            counts = ", ".join(f"{c}={n}" for c, n in sorted(reading.counts.items())) or "none"
            rows = f", {reading.rows} rows" if reading.rows is not None else ""
            measured = f"index {reading.index:g}  ({counts}{rows})"
        print(f"  {local(reading.taken_at)}  {reading.kpi_id}  {measured}  {reading.origin}{slot}")
    print("slots:")
    for run in store.slot_runs(team.id, limit=args.limit):
        detail = f"  {run.detail}" if run.detail else ""
        wait = f"  (not retried before {local(run.retry_at)}: Retry-After)" if run.retry_at else ""
        print(f"  {local(run.slot)}  {run.state}  attempts {run.attempts}{detail}{wait}")
    print("deliveries:")
    for record in store.deliveries(team.id, limit=args.limit):
        detail = f"  {record.detail}" if record.detail else ""
        mid = f"  {record.message_id}" if record.message_id else ""
        print(f"  {local(record.at)}  slot {local(record.slot)}  {record.target}  {record.outcome}{mid}{detail}")
    posted = store.outbox(team.id, limit=args.limit)
    if posted:
        print("outbox (the log target's posts, newest first; the newest in full):")
        for entry in posted:
            print(f"  {local(entry.created_at)}  slot {local(entry.slot)}  {message_summary(entry.message)}")
        print(textwrap.indent(message_as_text(posted[0].message), "    "))
    return 0


def cmd_schedule(args: argparse.Namespace, services: Services) -> int:
    """Print each team's schedule (as it runs: its own settings applied), zone and next slots in local time;
    a snoozed team's from the snooze's end."""
    now = services.clock()
    for current in services.settings.teams(fresh=True):
        team = current.team
        zone = services.config.zone(team)
        if not team.schedule:
            print(f"{team.id}: no schedule")
            continue
        targets = ", ".join(target_key(t) for t in team.deliver) or "no targets"
        print(f"{team.id}: {team.schedule!r} in {zone.key} → {targets}")
        after = now
        if current.snooze and current.snoozed(now):
            print(f"  snoozed until {current.snooze.until.astimezone(zone):%Y-%m-%d %H:%M %Z}")
            after = current.snooze.until - timedelta(microseconds=1)  # a slot at the end is not held
        for slot in next_slots(team.schedule, zone, after, args.count):
            print(f"  {slot.astimezone(zone):%Y-%m-%d %H:%M %Z}  ({slot:%Y-%m-%d %H:%M} UTC)")
    return 0


def _team(services: Services, team_id: str) -> TeamConfig | None:
    team = services.team(team_id)
    if team is None:
        known = ", ".join(t.id for t in services.config.teams)
        print(f"no team {team_id!r}; teams: {known}", file=sys.stderr)
    return team
