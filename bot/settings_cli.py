"""`python -m bot settings TEAM [--reset [FIELD]] [--limit N]`: a team's overrides and their history; a reset.

A reset is audited like a change made from Chat, as made by ``python -m bot settings``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.context import Services
from bot.team_settings import FIELDS, TeamSettings

Command = Callable[[argparse.Namespace, Services], int]
ALL = "all"
CLI_USER = "python -m bot settings"
"""Who the audit names for a reset made from the command line."""


def add_commands(subparsers: Any) -> dict[str, Command]:
    """Register ``settings`` on ``subparsers``; return its handler by name."""
    settings = subparsers.add_parser("settings", help="a team's own settings (overrides) and their history")
    settings.add_argument("team", help="the team's id")
    settings.add_argument(
        "--reset",
        nargs="?",
        const=ALL,
        choices=[*FIELDS, ALL],
        metavar="FIELD",
        help=f"clear the team's overrides (of one field: {', '.join(FIELDS)}); audited",
    )
    settings.add_argument("--limit", type=int, default=20, help="history rows to show (default 20)")
    return {"settings": cmd_settings}


def cmd_settings(args: argparse.Namespace, services: Services) -> int:
    """Print the team's overrides (each beside the file's value) and their history; with ``--reset``, clear
    them first."""
    current = services.settings.team(args.team, fresh=True)
    if current is None:
        known = ", ".join(t.id for t in services.config.teams)
        print(f"no team {args.team!r}; teams: {known}", file=sys.stderr)
        return 2
    if args.reset:
        field = None if args.reset == ALL else args.reset
        cleared = services.store.reset_overrides(args.team, field, who=CLI_USER, at=services.clock())
        print(f"reset: {', '.join(cleared)}" if cleared else "reset: nothing to clear")
        current = services.settings.team(args.team, fresh=True)
        assert current is not None  # noqa: S101 (the team was found above)
    print_settings(current, services.config.zone(current.team), services.clock(), args.limit, services)
    return 0


def print_settings(current: TeamSettings, zone: ZoneInfo, now: datetime, limit: int, services: Services) -> None:
    """The overrides, what is ignored and why, and the audited history, newest first."""
    overrides, yaml_team = current.overrides, current.yaml
    print(f"team {yaml_team.id}: editable here: {', '.join(services.config.settings.editable) or 'nothing'}")
    if not overrides.values:
        print("overrides: none (the configuration file's settings apply)")
    else:
        changed = f"{_local(overrides.changed_at, zone)} by {overrides.changed_by}" if overrides.changed_at else ""
        print(f"overrides (version {overrides.version}, last changed {changed}):")
        for name in sorted(overrides.values, key=lambda n: FIELDS.index(n) if n in FIELDS else len(FIELDS)):
            print(f"  {name}: {_shown(name, overrides.values[name], zone)}  (file: {_file_value(name, current)})")
    for name, why in current.ignored:
        print(f"  ignored: {name}: {why}")
    if current.snoozed(now) and current.snooze:
        print(f"snoozed now: no scheduled posts until {_local(current.snooze.until, zone)}")
    history = services.store.settings_history(yaml_team.id, limit)
    print("history (newest first):" if history else "history: none")
    for change in history:
        old, new = _shown(change.field, change.old, zone), _shown(change.field, change.new, zone)
        print(f"  {_local(change.at, zone)}  {change.who}  {change.field}: {old} → {new}  {change.outcome}")


def _shown(name: str, value: Any, zone: ZoneInfo) -> str:
    if value is None:
        return "(file)"
    if name == "snooze" and isinstance(value, dict):
        until = datetime.fromisoformat(value["until"])
        return f"until {_local(until, zone)}{', alerts too' if value.get('alerts') else ''}"
    return value if isinstance(value, str) else json.dumps(value)


def _file_value(name: str, current: TeamSettings) -> str:
    team = current.yaml
    values: dict[str, Any] = {
        "schedule": team.schedule or "none",
        "timezone": team.timezone or "the configuration's",
        "live": ", ".join(sorted({getattr(t, "live", "off") for t in team.deliver if t.type == "chat_api"})) or "off",
        "alerts": "on" if team.alerts else "off",
        "snooze": "none",
        "kpis": ", ".join(k.id for k in team.kpis),
    }
    return str(values.get(name, "?"))


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M %Z}" if moment else "never"
