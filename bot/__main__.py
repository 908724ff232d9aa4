"""Scorebot's command line: `python -m bot COMMAND`.

serve     run the Chat app (and the in-process scheduler)
preview   print a team's card (or every team's, "all") as text, or as the exact message JSON
check     validate the configuration, read every KPI once (--again: twice), report
tick      post every scheduled slot that is due (for any cron)
send      post a team's card to its targets now (--dry-run: print it)
demo      the demo: fresh store with 60 days of generated history, then serve
history   a team's recent readings, slots and deliveries
alerts    each KPI's alert state, since when, and its last transitions
schedule  each team's next scheduled slots, in its zone
settings  a team's own settings (overrides of the file) and their history; --reset [FIELD] clears them
db        the store's schema: `db upgrade` to this version's revision (a deploy step), `db current` where it is
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.alert_cards import AlertNotice, alert_message, alerts_status_message
from bot.alerts.status import team_alert_states
from bot.callplan import DAYS, daily_calls, tick_calls
from bot.card_text import dialog_as_text, message_as_text
from bot.cards import items_line, kind_words, overview_message, overview_page_size, team_message, value_text
from bot.config import DEMO_CONFIG, ChartSettings, Config, TeamConfig, check_public_url, is_loopback, load_config
from bot.context import Services
from bot.demo import DEMO_DAYS, current_counts, seed_history
from bot.errors import ConfigError, ScorebotError, SourceError
from bot.logs import setup_logging
from bot.overview import overview
from bot.reports import TeamReport, measure_of, rule_of, wanted_of
from bot.schedule.cli import add_commands
from bot.schedule.tick import start_background_ticker
from bot.secrets import scrubbed_output
from bot.services import build_services, store_location, use_store_url
from bot.settings_cli import add_commands as add_settings_commands
from bot.settings_dialog import settings_card
from bot.sources import Deadline, with_categories_of
from bot.store import SCORE, make_engine
from bot.store.migrate import read_state, upgrade
from bot.team_settings import effective_team
from scoring import Status, score_kpi

log = logging.getLogger("bot")
Command = Callable[[argparse.Namespace, Services], int]


def cmd_serve(args: argparse.Namespace, services: Services) -> int:
    """Run the Chat app under waitress (`bot.server`, as app.yaml does); exit 2 at once if the address is taken."""
    from bot.app import create_app
    from bot.server import listen, reason, serve

    config = services.config
    if not config.chat.verify:
        if not is_loopback(args.host):
            log.error("chat.verify is false: serve listens only on a loopback address (got %s)", args.host)
            return 2
        log.warning("request verification is OFF (chat.verify: false): for local trials only")
    try:
        listener = listen(args.host, args.port)
    except OSError as exc:
        log.error("cannot listen on %s port %d: %s (choose another with --port)", args.host, args.port, reason(exc))
        return 2
    app = create_app(services=services, allow_unverified=True)
    stop = threading.Event()
    start_background_ticker(services, stop)
    log.info(
        "Scorebot on http://%s:%d (config %s); scheduler ticks every %g s",
        args.host,
        args.port,
        config.path,
        config.schedule.tick_seconds,
    )
    try:
        serve(app, listener)
    finally:
        stop.set()
    return 0


def cmd_demo(args: argparse.Namespace, services: Services) -> int:
    """Recreate the demo's own store with generated history, sign charts with a key made now, and serve."""
    config = services.config
    if config.path != DEMO_CONFIG.resolve():
        raise ConfigError(f"demo runs on the bundled {DEMO_CONFIG.name} only (got {config.path})")
    services.store.engine.dispose()
    store_file = DEMO_CONFIG.parent / "demo.db"
    for leftover in (store_file, Path(f"{store_file}-wal"), Path(f"{store_file}-shm")):
        leftover.unlink(missing_ok=True)
    charts = ChartSettings(secret=SecretStr(secrets.token_urlsafe(32)))
    config = config.model_copy(update={"charts": charts, "public_url": args.public_url})
    demo = build_services(config, store_url=f"sqlite:///{store_file}")
    written = seed_history(demo.store, config, demo.clock(), today=current_counts(demo))
    log.info("demo store %s: %d readings over %d days generated", store_file, written, DEMO_DAYS)
    log.info("status page: http://%s:%d/status", args.host, args.port)
    return cmd_serve(args, demo)


def cmd_preview(args: argparse.Namespace, services: Services) -> int:
    """Print the team's card as `/score` would answer it; ``all``: the overview, every page."""
    if args.team == "all":
        return preview_all(args, services)
    team = services.team(args.team)
    if team is None:
        print(f"no team {args.team!r}; teams: {', '.join(t.id for t in services.config.teams)}", file=sys.stderr)
        return 2
    if args.settings:
        return preview_settings(args, services, team)
    report = services.report(team, SCORE, record=False)  # a preview shows; it writes nothing
    if args.alert:
        message = preview_alert(services, report)
    else:
        message = team_message(report, refresh_function=services.config.chat.button_function)
    print(json.dumps(message, indent=2, ensure_ascii=False) if args.format == "json" else message_as_text(message))
    return 0


def preview_settings(args: argparse.Namespace, services: Services, team: TeamConfig) -> int:
    """Print the team's settings dialog as an editor opening it now would see it (reads the store, writes nothing)."""
    config = services.config
    if not config.settings.editable:
        print("teams cannot change settings from Chat: settings.editable is empty", file=sys.stderr)
        return 2
    current = effective_team(config, config.team(team.id) or team, services.store.team_overrides(team.id))
    card = settings_card(config, current, services.clock(), function=config.chat.button_function)
    print(json.dumps(card, indent=2, ensure_ascii=False) if args.format == "json" else dialog_as_text(card))
    return 0


def preview_alert(services: Services, report: TeamReport) -> dict[str, Any]:
    """The alert card the team's worst KPI would give if it crossed into its status now (bad, if it is fine)."""
    team = report.team
    worst = max(report.kpis, key=lambda k: (k.status is Status.BAD, k.status is Status.WARNING))
    level = "warning" if worst.status is Status.WARNING else "bad"
    items = tuple(json.loads(AlertNotice.items_json(worst.fetch.items))) if worst.fetch else ()
    index = worst.score.index if worst.score else None
    notice = AlertNotice(
        "fire", worst.kpi, report.generated_at, level, index, report.generated_at, None, None, "good", items
    )
    zone = services.config.zone(team)
    return alert_message(
        team, [notice], zone, report.generated_at, refresh_function=services.config.chat.button_function
    )


def cmd_alerts(args: argparse.Namespace, services: Services) -> int:
    """Print each KPI's alert state, since when, and its last transitions."""
    team = services.team(args.team)
    if team is None:
        print(f"no team {args.team!r}; teams: {', '.join(t.id for t in services.config.teams)}", file=sys.stderr)
        return 2
    states = team_alert_states(services.store, team) if team.alerts else []
    print(alerts_status_message(team, states, services.config.zone(team))["text"])
    return 0


def preview_all(args: argparse.Namespace, services: Services) -> int:
    """Print `/score all` from the stored readings, every page (it reads no source and writes nothing)."""
    now = services.clock()
    teams = overview(services.config, services.store, now, [t.team for t in services.settings.teams()])
    function = services.config.chat.button_function
    pages = max(1, -(-len(teams) // overview_page_size(teams, now, function)))
    messages = [overview_message(teams, now, page=page, button_function=function) for page in range(pages)]
    if args.format == "json":
        print(json.dumps(messages if pages > 1 else messages[0], indent=2, ensure_ascii=False))
    else:
        print("\n\n".join(message_as_text(message) for message in messages))
    return 0


def cmd_check(args: argparse.Namespace, services: Services) -> int:
    """Sign in to every source, read every KPI once; print counts, index, plan, calls (the top items' query
    included), time, the top items and the oldest; with ``--again``, read every KPI a second time, as later
    reads plan it from the first read's row count; then each source's calls for a tick of every scheduled team
    and on the busiest day of the schedules, against its ``daily_call_limit``. Fail on any error."""
    config = services.config
    print(f"config {config.path}: {len(config.sources)} sources, {len(config.teams)} teams: valid")
    failures = 0
    for name, source in services.sources.items():
        try:
            detail = source.check(Deadline.after(config.fetch_budget_seconds))
        except SourceError as exc:
            failures += 1
            print(f"FAIL source {name}: {exc}")
        else:
            print(f"ok   source {name}: {detail}")
    measured: dict[tuple[str, str], int] = {}
    failures += read_every_kpi(services, measured, "first read" if args.again else "")
    if args.again:
        failures += read_every_kpi(services, measured, "later read")
    print_call_plan(services, measured)
    return 1 if failures else 0


def read_every_kpi(services: Services, measured: dict[tuple[str, str], int], which: str) -> int:
    """Read every KPI once and print what each read found and cost (``which``: "first read", "later read", or
    "" when there is one); put each read's calls in ``measured``; return the failures."""
    config, failures = services.config, 0
    data: dict[str, int] = defaultdict(int)
    if which:
        print(f"{which}:")
    for team in config.teams:
        for kpi in team.kpis:
            started = time.monotonic()
            kind = "" if kpi.kind == "count" else f", {kind_words(kpi)}"
            label = f"{team.id}/{kpi.id} (source {kpi.source}{kind})"
            wanted = wanted_of(kpi, None, services.clock())
            try:
                result = services.sources[kpi.source].fetch(
                    kpi.count, kpi.category, Deadline.after(config.fetch_budget_seconds), wanted
                )
                result = with_categories_of(result, kpi.weights)
                score = score_kpi(measure_of(kpi, result), rule_of(kpi))
            except SourceError as exc:
                failures += 1
                print(f"FAIL {label}: {exc}")
                continue
            elapsed = (time.monotonic() - started) * 1000
            measured[(team.id, kpi.id)] = result.calls
            queries = result.details.get("queries")
            data[kpi.source] += queries if isinstance(queries, int) else result.calls
            if kpi.counted:
                listed = ", ".join(f"{c}={n}" for c, n in sorted(result.counts.items())) or "none"
                print(f"ok   {label}: index {score.index:g} ({score.status.value}); counts {listed}")
            else:
                print(f"ok   {label}: value {value_text(score.index, kpi.unit)} ({score.status.value})")
            spent = f"; {queries} data calls" if isinstance(queries, int) else ""
            print(f"     plan: {result.plan}; {result.calls} calls; {elapsed:.0f} ms{spent}")
            if kpi.counted:
                print(f"     {items_line(result, services.clock(), oldest=kpi.kind != 'closed')}")
    for name, calls in data.items():
        print(f"data calls source {name}{': ' + which if which else ''}: {calls} (sign-in and describe not counted)")
    return failures


def print_call_plan(services: Services, measured: dict[tuple[str, str], int]) -> None:
    """Each source's calls for one tick of every scheduled team and on the schedules' busiest day (the teams as
    they run: their own schedules and alerts)."""
    running = services.config.model_copy(update={"teams": [t.team for t in services.settings.teams()]})
    scheduled = [team for team in running.teams if team.schedule and team.deliver]
    ticks = tick_calls(services.sources, scheduled, measured)
    days = daily_calls(running, services.sources, measured, services.clock())
    for name in services.sources:
        if name not in ticks:
            continue
        tick = ticks[name]
        print(f"calls source {name}: a tick of every scheduled team: {tick.calls} (read one by one: {tick.alone})")
        for scan in tick.scans:
            print(f"     shared scan: {scan}")
        day = days.get(name)
        if day is None:
            continue
        limit = f"; daily_call_limit {day.limit:,}" if day.limit else ""
        line = f"busiest of the next {DAYS} days {day.busiest}: {day.calls:,} calls (average {day.average:,.0f}){limit}"
        if day.over:
            print(f"WARN source {name}: {line}: over the limit (sign-in and describe not counted)")
        else:
            print(f"     {line} (sign-in and describe not counted)")


def cmd_db(args: argparse.Namespace, config: Config) -> int:
    """``db upgrade``: bring the store to this version's head revision; ``db current``: print its revision
    and whether it is head (exit 1 if not). Run without opening the store as other commands do (that refuses
    a store behind head)."""
    url, where = store_location(config)
    return use_store_url(url, where, _db_upgrade if args.action == "upgrade" else _db_current)


def _db_upgrade(url: str) -> int:
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        before, after = upgrade(engine)
        took = f"in {(time.perf_counter() - started) * 1000:.0f} ms"
    finally:
        engine.dispose()
    store = f"store {engine.url.render_as_string(hide_password=True)}"
    if before.at_head:
        print(f"{store}: at {after.revision} (head) already")
    elif before.empty:
        print(f"{store}: created at {after.revision} (head) {took}")
    elif before.revision is None:
        print(f"{store}: schema {before.legacy} from before revisions upgraded to {after.revision} (head) {took}")
    else:
        print(f"{store}: upgraded from {before.revision} to {after.revision} (head) {took}")
    return 0


def _db_current(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            state = read_state(conn)
    finally:
        engine.dispose()
    print(state.describe())
    return 0 if state.at_head else 1


def _public_url(text: str) -> str:
    try:
        return check_public_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    """The argument parser and the function behind each subcommand."""
    parser = argparse.ArgumentParser(prog="python -m bot", description="Scorebot, KPI cards for Google Chat.")
    parser.add_argument("--config", help="config file (default: $SCOREBOT_CONFIG, else the bundled demo)")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default INFO)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the Chat app")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    preview = commands.add_parser("preview", help="print a team's card")
    preview.add_argument("team", help="the team's id, or all for every team (from stored readings)")
    preview.add_argument(
        "--format", choices=["text", "json"], default="text", help="text for people, json for the exact message"
    )
    preview.add_argument("--alert", action="store_true", help="the alert card its worst KPI would give now")
    preview.add_argument("--settings", action="store_true", help="the team's settings dialog, as an editor sees it")
    check = commands.add_parser("check", help="validate the config and read every KPI once")
    check.add_argument(
        "--again", action="store_true", help="read every KPI a second time, as later reads plan it (its calls too)"
    )
    alerts = commands.add_parser("alerts", help="each KPI's alert state and its last transitions")
    alerts.add_argument("team", help="the team's id")
    demo = commands.add_parser("demo", help="the demo, with 60 days of generated history")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    demo.add_argument(
        "--public-url", type=_public_url, help="put chart images in cards, at this address (e.g. http://127.0.0.1:8080)"
    )
    table: dict[str, Command] = {
        "serve": cmd_serve,
        "preview": cmd_preview,
        "check": cmd_check,
        "demo": cmd_demo,
        "alerts": cmd_alerts,
    }
    table.update(add_commands(commands))
    table.update(add_settings_commands(commands))
    db = commands.add_parser("db", help="the store's schema: upgrade it, or show its revision")
    db.add_argument(
        "action",
        choices=["upgrade", "current"],
        help="upgrade: to this version's head revision (a deploy step); current: the revision, and whether it is head",
    )
    for sub in commands.choices.values():
        sub.add_argument("--config", default=argparse.SUPPRESS, help="config file")
    return parser, table


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, load the config, run the command; return the exit code. Known secrets never reach the output."""
    with scrubbed_output():
        parser, table = build_parser()
        args = parser.parse_args(argv)
        setup_logging(args.log_level)
        try:
            config: Config = load_config(args.config)
            if args.command == "db":
                return cmd_db(args, config)
            services = build_services(config)
            try:
                return table[args.command](args, services)
            finally:
                services.store.engine.dispose()  # the store's connections closed, not left to the collector
        except ScorebotError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
