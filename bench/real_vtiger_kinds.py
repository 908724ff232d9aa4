"""Closed and aged KPIs against a real Vtiger 8.2: each plan's counts per priority against a direct SQL count.

Set ``REAL_VTIGER_URL``, ``REAL_VTIGER_USER`` and ``REAL_VTIGER_KEY`` as for ``bench/real_vtiger.py`` (a Vtiger
8.2 on a loopback address), and have its MariaDB reachable as root over the local socket through the ``mariadb``
client (``MYSQL`` names another; database ``VTIGER_DB``, default vtiger802). Nothing else is contacted.

1. Creates HelpDesk tickets titled ``kinds 000`` to ``kinds 259`` through the webservice ``create`` operation,
   only those missing (a second run creates none): priorities Low, Normal, High and Urgent in turn, statuses
   Open, Closed, In Progress, Closed, Wait For Response in turn (two in five closed).
2. A bench-only step, outside anything Scorebot does: spreads those tickets' ``createdtime`` over the last 90
   days by direct SQL on ``vtiger_crmentity``, and their ``modifiedtime`` after it (a closed ticket's somewhere
   up to now, an open one's within hours), the same way on every run relative to its start. Four of them sit on
   the cut-offs: created exactly 30 days ago and a second earlier (aged over 30: only the latter), modified
   exactly 7 days ago and a second earlier (closed in 7: only the former). Vtiger keeps both columns in its
   server's default zone (``$default_timezone`` in config.inc.php, UTC as installed), whatever zone its user
   has chosen (a user set to America/New_York created tickets stamped in UTC and read and compared the same
   stored values), and the webservice returns and compares them as stored: ``VTIGER_CRM_TIMEZONE`` (default
   UTC) is that zone, Scorebot's ``crm_timezone``.
3. Reads closed KPIs (``ticketstatus = 'Closed'``, 7 and 30 days) and aged KPIs (``ticketstatus != 'Closed'``,
   30 and 60 days) through `VtigerSource`, asked what a card asks (`bot.reports.wanted_of`, top 3, titled by
   ``ticket_title``), once with each plan (page, count, auto; a new source each; an aged KPI also from the
   shared scan of its filter's count KPI, ``scan``), and compares each priority's count with SQL's count of the
   same window (``deleted = 0``, the cut-off written in the CRM's zone); for aged KPIs, the top items with the
   three oldest in SQL's order (``createdtime``, then record number).

Prints one row a read (source count / SQL count per priority, data calls: ``query`` operations) and exits 1 on
any difference.

Usage: .venv/bin/python bench/real_vtiger_kinds.py
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.real_vtiger import Client
from bot.config import KpiConfig
from bot.reports import wanted_of
from bot.sources import Deadline
from bot.sources.base import NO_CATEGORY, FetchResult
from bot.sources.vtiger import VtigerQuery, VtigerSource
from bot.sources.vtiger_settings import VtigerSettings

TICKETS = 260
PREFIX = "kinds "
SPREAD = timedelta(days=90)
PRIORITIES = ("Low", "Normal", "High", "Urgent")
STATUSES = ("Open", "Closed", "In Progress", "Closed", "Wait For Response")
WEIGHTS = {"Urgent": 10.0, "High": 5.0, "Normal": 2.0, "Low": 1.0}
TOP = 3
KPIS: list[tuple[str, int, str, str]] = [
    ("closed", 7, "ticketstatus = 'Closed'", "t.status = 'Closed' AND e.modifiedtime >= %s"),
    ("closed", 30, "ticketstatus = 'Closed'", "t.status = 'Closed' AND e.modifiedtime >= %s"),
    ("aged", 30, "ticketstatus != 'Closed'", "t.status != 'Closed' AND e.createdtime < %s"),
    ("aged", 60, "ticketstatus != 'Closed'", "t.status != 'Closed' AND e.createdtime < %s"),
]
"""Kind, days, the KPI's filter, and the same window in SQL (%s: the quoted cut-off)."""
PLANS = {"closed": ("page", "count", "auto"), "aged": ("page", "count", "auto", "scan")}
"""Each kind's plans; scan: an aged KPI read from the shared scan of its filter's count KPI (two pages here)."""
FROM = "vtiger_troubletickets t JOIN vtiger_crmentity e ON e.crmid = t.ticketid WHERE e.deleted = 0"


def sql(statement: str) -> list[list[str]]:
    """The rows ``statement`` returns, run by the mariadb client as root on database ``VTIGER_DB``."""
    command = [os.environ.get("MYSQL", "mariadb"), "-uroot", "-N", "-B", os.environ.get("VTIGER_DB", "vtiger802")]
    done = subprocess.run(command, input=statement, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode:
        raise SystemExit(f"mariadb failed: {done.stderr.strip()}")
    return [line.split("\t") for line in done.stdout.splitlines()]


def quoted(text: str) -> str:
    """``text`` as an SQL string literal (the bench's own values: no quotes or backslashes in them)."""
    if "'" in text or "\\" in text:
        raise ValueError(f"unexpected quote in {text!r}")
    return f"'{text}'"


def status_of(number: int) -> str:
    return STATUSES[(number // len(PRIORITIES)) % len(STATUSES)]


def tickets() -> dict[str, int]:
    """The bench's tickets in the database: title -> record number."""
    rows = sql(f"SELECT t.title, t.ticketid FROM {FROM} AND t.title LIKE {quoted(PREFIX + '%')};")  # noqa: S608
    return {title: int(number) for title, number in rows}


def seed(client: Client) -> int:
    """Create the tickets still missing; how many were created."""
    have = tickets()
    created = 0
    for number in range(TICKETS):
        title = f"{PREFIX}{number:03d}"
        if title in have:
            continue
        element = {
            "ticket_title": title,
            "ticketstatus": status_of(number),
            "ticketpriorities": PRIORITIES[number % len(PRIORITIES)],
            "assigned_user_id": client.user,
        }
        client.create("HelpDesk", element)
        created += 1
    return created


def spread(now: datetime, zone: ZoneInfo) -> None:
    """Set every bench ticket's createdtime and modifiedtime (see the module's notes), in ``zone``."""

    def stamp(moment: datetime) -> str:
        return quoted(moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"))

    opened = [n for n in range(TICKETS) if status_of(n) != "Closed"]
    closed = [n for n in range(TICKETS) if status_of(n) == "Closed"]
    edges = {  # number -> (created, modified) exactly on a cut-off, or a second before it
        opened[0]: (now - timedelta(days=30), now - timedelta(days=29)),
        opened[1]: (now - timedelta(days=30, seconds=1), now - timedelta(days=29)),
        closed[0]: (now - timedelta(days=20), now - timedelta(days=7)),
        closed[1]: (now - timedelta(days=20), now - timedelta(days=7, seconds=1)),
    }
    updates = []
    for title, record in sorted(tickets().items()):
        number = int(title.removeprefix(PREFIX))
        draw = random.Random(number)  # a fixed spread
        created = now - SPREAD * (number + draw.random()) / TICKETS
        if status_of(number) == "Closed":
            modified = created + (now - created) * draw.random()
        else:
            modified = created + timedelta(hours=draw.uniform(0, 12))
        created, modified = edges.get(number, (created, modified))
        times = f"createdtime = {stamp(created)}, modifiedtime = {stamp(min(modified, now))}"
        updates.append(f"UPDATE vtiger_crmentity SET {times} WHERE crmid = {record};")  # noqa: S608
    sql("\n".join(updates))


def read(settings: VtigerSettings, kpi: KpiConfig, plan: str, now: datetime) -> tuple[FetchResult, int]:
    """One KPI read with ``plan`` by a new source, as a card asks for it; the result and its data calls."""
    source = VtigerSource("crm", settings, Path())
    try:
        if plan == "scan":  # the aged KPI and a count KPI of its filter, as one team's card reads them
            query = VtigerQuery.model_validate(kpi.count)
            reads = [(query, kpi.category), (query, kpi.category)]
            scans = source.plan_scans(reads)
            if len(scans) != 1:
                raise SystemExit(f"expected one shared scan of the count and aged KPIs, not {scans}")
            result = source.scan(scans[0], reads, Deadline.after(60))[1](wanted_of(kpi, None, now))
        else:
            query = VtigerQuery.model_validate(kpi.count | {"plan": plan})
            result = source.fetch(query, kpi.category, Deadline.after(60), wanted_of(kpi, None, now))
    finally:
        source.close()
    return result, int(result.details["queries"])


def sql_counts(window: str, cutoff: str) -> dict[str, int]:
    """SQL's count per priority of the tickets in ``window`` (empty priorities as `NO_CATEGORY`)."""
    where = window % quoted(cutoff)
    rows = sql(f"SELECT t.priority, count(*) FROM {FROM} AND {where} GROUP BY t.priority;")  # noqa: S608
    return {(p if p not in ("", "NULL") else NO_CATEGORY): int(n) for p, n in rows}


def sql_oldest(window: str, cutoff: str) -> list[tuple[str, str]]:
    """The three oldest weighted tickets in ``window`` as SQL orders them: (title, createdtime)."""
    where = window % quoted(cutoff)
    weighted = ", ".join(quoted(p) for p in WEIGHTS)
    rows = sql(
        f"SELECT t.title, e.createdtime FROM {FROM} AND {where} AND t.priority IN ({weighted})"  # noqa: S608
        f" ORDER BY e.createdtime, e.crmid LIMIT {TOP};"
    )
    return [(title, created) for title, created in rows]


def main() -> None:
    """Seed, spread, read every KPI with every plan, compare with SQL (see the module's notes)."""
    zone = ZoneInfo(os.environ.get("VTIGER_CRM_TIMEZONE", "UTC"))
    settings = VtigerSettings.model_validate(
        {
            "type": "vtiger",
            "url": os.environ["REAL_VTIGER_URL"],
            "username": os.environ["REAL_VTIGER_USER"],
            "access_key": os.environ["REAL_VTIGER_KEY"],
            "crm_timezone": zone.key,
        }
    )
    client = Client(os.environ["REAL_VTIGER_URL"], os.environ["REAL_VTIGER_USER"], os.environ["REAL_VTIGER_KEY"])
    print(f"created {seed(client)} tickets")
    now = datetime.now(UTC).replace(microsecond=0)
    spread(now, zone)
    user = quoted(os.environ["REAL_VTIGER_USER"])
    users = sql(f"SELECT time_zone FROM vtiger_users WHERE user_name = {user};")  # noqa: S608
    print(f"{len(tickets())} bench tickets; times in {zone.key} (the user's own zone: {users[0][0]}); now {now}")
    print(f"| kind | days | plan | {' | '.join(PRIORITIES)} | all | data calls | Scorebot's plan |")
    print(f"|---|---|---|{'---|' * len(PRIORITIES)}---|---|---|")
    differences: list[str] = []
    for kind, days, where, window in KPIS:
        cutoff = (now - timedelta(days=days)).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
        expected = sql_counts(window, cutoff)
        oldest = sql_oldest(window, cutoff) if kind == "aged" else []
        kpi = KpiConfig.model_validate(
            {
                "id": f"{kind}{days}",
                "name": f"{kind} {days} days",
                "source": "crm",
                "kind": kind,
                "days": days,
                "count": {"module": "HelpDesk", "filter": where, "title": "ticket_title"},
                "category": "ticketpriorities",
                "weights": WEIGHTS,
                "target": 100,
                "warning": 100,
                "top": TOP,
            }
        )
        for plan in PLANS[kind]:
            result, queries = read(settings, kpi, plan, now)
            found = {c: n for c, n in result.counts.items() if n}
            cells = [f"{found.get(p, 0)}/{expected.get(p, 0)}" for p in PRIORITIES]
            total = f"{sum(found.values())}/{sum(expected.values())}"
            print(f"| {kind} | {days} | {plan} | {' | '.join(cells)} | {total} | {queries} | {result.plan} |")
            if found != expected:
                differences.append(f"{kind} {days} {plan}: {found} against SQL's {expected}")
            if kind == "aged":
                items = [
                    (i.title, i.created.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"))
                    for i in result.items
                    if i.created
                ]
                if items != oldest:
                    differences.append(f"{kind} {days} {plan}: top items {items} against SQL's oldest {oldest}")
    for kind, days, _, window in KPIS:
        if kind == "aged":
            cutoff = (now - timedelta(days=days)).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
            print(
                f"aged {days}: top items, as SQL's three oldest: {', '.join(t for t, _ in sql_oldest(window, cutoff))}"
            )
    for line in differences:
        print(f"DIFFERENT: {line}")
    if differences:
        raise SystemExit(1)
    print("every read matches SQL")


if __name__ == "__main__":
    main()
