"""Data calls against a real Vtiger 8.2: a first read and a later read of seven teams, against the fewest.

Set ``REAL_VTIGER_URL``, ``REAL_VTIGER_USER`` and ``REAL_VTIGER_KEY`` (a Vtiger 8.2 on a loopback address, with
records of its own to spare: ``--seed`` adds them). Nothing else is contacted.

1. ``--seed`` creates the records through the webservice ``create`` operation, as many as each team's filter
   still lacks (so a second run adds none): tasks (``Calendar``) of 150 "Not Started", exactly 100 "In
   Progress", 265 across an OR ("Pending Input" or "Deferred"), 60 "Planned" and 20 "Completed"; tickets
   (``HelpDesk``) of 40 "Open", 12 "Wait For Response", 5 "In Progress" and 10 "Closed". A few tasks have a
   priority in other letter case or none at all.
2. ``--config PATH`` writes a Scorebot config of seven teams, one KPI each, counting open items by priority
   (``top`` from ``--top``), for ``python -m bot --config PATH check --again``.
3. Without ``--config``, it reads every KPI twice through `VtigerSource` (a new source each time, as a new
   process: the later read is given the first read's row count, as a process is given the stored one) and
   prints each read's data calls (``query`` operations, counted at the API: sign-in and ``describe`` apart)
   against the fewest.

The fewest calls that determine a KPI's counts, for its card (``check`` asks for the top items and the oldest,
not for new items), knowing the data: the cheaper of paging, ``rows // 100 + 1`` calls, and counting,
``1 + picklist values + 1`` (count(*), one per value, and the top items' or oldest item's query), plus
``rest // 100 + 1`` pages when ``rest`` records hold an empty or off-list priority (an OR filter reads all its
``rows // 100 + 1`` pages instead); a KPI with no records, 1.

Usage: .venv/bin/python bench/real_vtiger.py [--seed] [--top 3] [--runs 3] [--config PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.sources import Deadline, Wanted
from bot.sources.base import category_key
from bot.sources.vtiger import VtigerQuery, VtigerSource
from bot.sources.vtiger_settings import VtigerSettings

PAGE = 100
PRIORITY = {"Calendar": "taskpriority", "HelpDesk": "ticketpriorities"}
STATUS = {"Calendar": "taskstatus", "HelpDesk": "ticketstatus"}
WEIGHTS = {"Calendar": {"High": 5, "Medium": 2, "Low": 1}, "HelpDesk": {"Urgent": 10, "High": 5, "Normal": 1}}
RECORDS: dict[tuple[str, str], list[tuple[str, int]]] = {
    ("Calendar", "Not Started"): [("High", 40), ("Medium", 50), ("Low", 55), ("high", 3), ("", 2)],
    ("Calendar", "In Progress"): [("High", 30), ("Medium", 30), ("Low", 40)],
    ("Calendar", "Pending Input"): [("High", 40), ("Medium", 50), ("Low", 50)],
    ("Calendar", "Deferred"): [("High", 25), ("Medium", 50), ("Low", 48), ("", 2)],
    ("Calendar", "Planned"): [("High", 20), ("Medium", 20), ("Low", 20)],
    ("Calendar", "Completed"): [("High", 20)],
    ("HelpDesk", "Open"): [("Urgent", 5), ("High", 10), ("Normal", 15), ("Low", 10)],
    ("HelpDesk", "Wait For Response"): [("High", 4), ("Normal", 4), ("Low", 4)],
    ("HelpDesk", "In Progress"): [("Urgent", 1), ("Normal", 4)],
    ("HelpDesk", "Closed"): [("Low", 10)],
}
"""(module, status): the priorities of its records, and how many of each."""
TEAMS: list[tuple[str, str, str]] = [
    ("big", "Calendar", "taskstatus = 'Not Started'"),
    ("hundred", "Calendar", "taskstatus = 'In Progress'"),
    ("either", "Calendar", "taskstatus = 'Pending Input' OR taskstatus = 'Deferred'"),
    ("planned", "Calendar", "taskstatus = 'Planned'"),
    ("open", "HelpDesk", "ticketstatus = 'Open'"),
    ("waiting", "HelpDesk", "ticketstatus = 'Wait For Response'"),
    ("working", "HelpDesk", "ticketstatus = 'In Progress'"),
]
"""Team id, module, filter: one KPI each, open items by priority."""


class Client:
    """The webservice calls seeding needs: sign in, count, create."""

    def __init__(self, url: str, user: str, key: str) -> None:
        self.url = url.rstrip("/") + "/webservice.php"
        self.http = requests.Session()
        token = self._answer(self.http.get(self.url, params={"operation": "getchallenge", "username": user}))
        access = hashlib.md5((token["token"] + key).encode()).hexdigest()  # noqa: S324 (Vtiger's login scheme)
        login = {"operation": "login", "username": user, "accessKey": access}
        answer = self._answer(self.http.post(self.url, data=login))
        self.session, self.user = answer["sessionName"], answer["userId"]

    def query(self, vtql: str) -> Any:
        """The rows of a VTQL query."""
        return self._answer(
            self.http.get(self.url, params={"operation": "query", "sessionName": self.session, "query": vtql})
        )

    def create(self, module: str, element: dict[str, str]) -> Any:
        """A new record."""
        data = {
            "operation": "create",
            "sessionName": self.session,
            "elementType": module,
            "element": json.dumps(element),
        }
        return self._answer(self.http.post(self.url, data=data))

    @staticmethod
    def _answer(response: requests.Response) -> Any:
        body = response.json()
        if not body.get("success"):
            raise SystemExit(f"Vtiger refused a call: {body.get('error')}")
        return body["result"]


def seed(client: Client) -> int:
    """Create the records each (module, status) still lacks; how many were created."""
    created = 0
    for (module, status), priorities in RECORDS.items():
        have = int(client.query(f"SELECT count(*) FROM {module} WHERE {STATUS[module]} = '{status}';")[0]["count"])  # noqa: S608
        wanted = [priority for priority, number in priorities for _ in range(number)]
        for number, priority in enumerate(wanted[have:], start=have):
            title = f"{status} {number}"
            element = {STATUS[module]: status, PRIORITY[module]: priority, "assigned_user_id": client.user}
            if module == "Calendar":
                element |= {
                    "activitytype": "Task",  # else it is stored as an event, which Calendar queries leave out
                    "subject": title,
                    "date_start": "2026-12-01",
                    "due_date": "2026-12-31",
                    "time_start": "09:00:00",
                }
            else:
                element |= {"ticket_title": title}
            client.create(module, element)
            created += 1
    return created


def write_config(path: Path, top: int) -> None:
    """The seven teams' config, the access key from $REAL_VTIGER_KEY."""
    source = {
        "type": "vtiger",
        "url": os.environ["REAL_VTIGER_URL"],
        "username": os.environ["REAL_VTIGER_USER"],
        "access_key": "${REAL_VTIGER_KEY}",
    }
    teams = [
        {
            "id": team,
            "name": f"Team {team}",
            "schedule": "0 9 * * 1-5",
            "deliver": [{"type": "log"}],
            "kpis": [
                {
                    "id": "open",
                    "name": "Open items by priority",
                    "source": "crm",
                    "count": {"module": module, "filter": where},
                    "category": PRIORITY[module],
                    "weights": WEIGHTS[module],
                    "target": 100,
                    "warning": 200,
                    "top": top,
                }
            ],
        }
        for team, module, where in TEAMS
    ]
    config = {
        "chat": {"verify": False},
        "store": "sqlite:///real-vtiger.db",
        "sources": {"crm": source},
        "teams": teams,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@dataclass
class Read:
    """One KPI read: its rows, its categories' counts and its data calls."""

    rows: int
    counts: dict[str, int]
    queries: int


def read(source: VtigerSource, query: VtigerQuery, category: str, wanted: Wanted) -> Read:
    """Read one KPI, counting the ``query`` operations it sends."""
    api, sent = source.api, [0]
    original = api.query

    def counted(vtql: str, module: str, calls: Any) -> Any:
        sent[0] += 1
        return original(vtql, module, calls)

    api.query = counted  # type: ignore[method-assign]
    try:
        result = source.fetch(query, category, Deadline.after(60), wanted)
    finally:
        api.query = original  # type: ignore[method-assign]
    return Read(sum(result.counts.values()), result.counts, sent[0])


def fewest(found: Read, values: tuple[str, ...], either: bool) -> int:
    """The fewest data calls that determine ``found``'s counts for its card (see the module's notes)."""
    if not found.rows:
        return 1
    keys = {category_key(v) for v in values}
    rest = sum(n for c, n in found.counts.items() if category_key(c) not in keys or c == "(none)")
    extra = (found.rows // PAGE + 1) if either else (rest // PAGE + 1)
    return min(found.rows // PAGE + 1, 1 + len(values) + (extra if rest else 0) + 1)


def measure(top: int, runs: int) -> None:
    """Each KPI's data calls, first read and later read, medians of ``runs``, against the fewest."""
    settings = VtigerSettings.model_validate(
        {
            "type": "vtiger",
            "url": os.environ["REAL_VTIGER_URL"],
            "username": os.environ["REAL_VTIGER_USER"],
            "access_key": os.environ["REAL_VTIGER_KEY"],
        }
    )
    firsts: dict[str, list[int]] = {}
    laters: dict[str, list[int]] = {}
    found: dict[str, Read] = {}
    values: dict[str, tuple[str, ...]] = {}
    for _ in range(runs):
        for team, module, where in TEAMS:
            query = VtigerQuery(module=module, filter=where)
            wanted = Wanted(top=top, weights=WEIGHTS[module], oldest=True)  # what check asks
            first_source = VtigerSource("crm", settings, Path())
            first = read(first_source, query, PRIORITY[module], wanted)
            values[team] = tuple(first_source._modules[module].picklists[PRIORITY[module]])
            first_source.close()
            later_source = VtigerSource("crm", settings, Path())
            later_source.seed_rows(query, PRIORITY[module], first.rows)  # the stored row count
            later = read(later_source, query, PRIORITY[module], wanted)
            later_source.close()
            if later.counts != first.counts:
                raise SystemExit(f"{team}: the two reads disagree: {first.counts} against {later.counts}")
            found[team] = first
            firsts.setdefault(team, []).append(first.queries)
            laters.setdefault(team, []).append(later.queries)
    print(f"top: {top}; data calls, medians of {runs} runs (each: a new source, as a new process)")
    print("| team | filter | rows | first read | later read | fewest |")
    print("|---|---|---|---|---|---|")
    sums = [0.0, 0.0, 0]
    for team, _, where in TEAMS:
        least = fewest(found[team], values[team], " OR " in where)
        first_calls, later_calls = statistics.median(firsts[team]), statistics.median(laters[team])
        sums = [sums[0] + first_calls, sums[1] + later_calls, sums[2] + least]
        print(f"| {team} | {where} | {found[team].rows} | {first_calls:g} | {later_calls:g} | {least} |")
    first_sum, later_sum, least_sum = sums
    print(
        f"| all | | {sum(r.rows for r in found.values())} | {first_sum:g} ({first_sum / least_sum:.2f}x) |"
        f" {later_sum:g} ({later_sum / least_sum:.2f}x) | {least_sum} |"
    )


def main() -> None:
    """Seed, write the config, or measure (see the module's notes)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", action="store_true", help="create the records the teams count first")
    parser.add_argument("--top", type=int, default=3, help="the KPIs' top (0: no items listed)")
    parser.add_argument("--runs", type=int, default=3, help="reads of every KPI (the median is shown)")
    parser.add_argument("--config", type=Path, help="only write the seven teams' Scorebot config here")
    args = parser.parse_args()
    if args.seed:
        client = Client(os.environ["REAL_VTIGER_URL"], os.environ["REAL_VTIGER_USER"], os.environ["REAL_VTIGER_KEY"])
        print(f"created {seed(client)} records")
    if args.config:
        write_config(args.config, args.top)
        print(f"wrote {args.config}")
        return
    measure(args.top, args.runs)


if __name__ == "__main__":
    main()
