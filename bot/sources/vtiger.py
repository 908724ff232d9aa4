"""The ``vtiger`` source: open items per category, counted in Vtiger CRM with few calls.

VTQL has no GROUP BY and returns at most 100 rows, so there are two plans.
Their costs below leave out the login (webservice: getchallenge + login, once a
session) and ``describe`` (once a cache period); ``FetchResult.calls`` counts
those too when they happen:

- ``page``: ``SELECT <category> ... ORDER BY id LIMIT 100``, each next page
  ``... AND id > '<the last id read>'`` (keyset paging: records added or
  removed meanwhile shift no page), until a short page, grouped here:
  ``rows // 100 + 1`` calls (a page of exactly 100 rows needs one more page
  to prove it was the last).
- ``count``: ``count(*)`` of the total, then one per picklist value: ``1 +
  len(values)`` calls. The rest (total minus those counts) holds records whose
  category is empty or not in the picklist (admins rename and remove values;
  old records keep them), so when it is not 0 those records are read too:
  ``... AND cat != 'v1' AND cat != 'v2' ...`` paged as above, ``rest // 100 +
  1`` more calls, grouped by their real value (``field = ''`` does not work on
  Vtiger 8.2, and no ``!=`` matches NULL: what the pages miss is counted as
  ``(none)``). With an ``OR`` filter the chain would repeat in every
  alternative, so all ``total // 100 + 1`` pages are read instead.

What a card asks besides the counts (`Wanted`) costs nothing more when the
records are paged: the pages then also carry ``id``, ``createdtime`` and the
title fields, and the heaviest items, the oldest and the new ones come from
them. After ``count(*)`` per category it costs at most two queries: one
``SELECT id, <title>, <category>, createdtime ... AND <category> IN (<the
heaviest categories>) ORDER BY createdtime LIMIT n;`` (n is ``top`` when those
categories share one weight; when the heaviest weight holds fewer than ``top``
items the next weights join in, and n is all their items, at most 100, ranked
here; beyond 100 only the heavier ones are listed), whose first row is also
the oldest of those categories (with ``top: 0``, or no weighted category
holding items, ``... ORDER BY createdtime LIMIT 1`` finds the oldest
instead), and one ``count(*) ... AND createdtime > '<since>'`` for the new
ones. Times are read and written in ``crm_timezone``.
Each record links to its detail view, ``{url}/index.php?module=M&view=Detail&record=N``.

``auto`` (the default) pages when the category has no picklist values VTQL
can write. Otherwise it plans by the KPI's last row count (this process's, or
the stored one a fresh process is given): counting costs ``1 + len(values)``
calls plus the queries above that the card asks for; paging costs the pages.
When the row count says paging costs more, it counts: ``count(*)`` first, then
per value, unless the total has shrunk so far that the pages are now fewer.
Otherwise (paging is cheaper, or nothing is known yet) it pages, with no
``count(*)``, for as long as paging costs no more than counting would: after
that many full pages, ``count(*)`` tells whether the pages left or the counts
per value cost fewer calls, and it goes on with those (the pages read are
kept as the first pages). A stale row count thus costs calls, never
correctness: at most the counting calls once more than the cheaper plan. The
rest is unknown until counted, so records with an empty or off-list category
make the count plan cost more than ``auto`` assumed.

Vtiger's ``=`` compares as its database does: letter case, accents and
trailing spaces do not count (``taskpriority = 'High'`` matches ``high``,
``HIGH `` and ``Hígh``), and so every view of Vtiger counts. Both plans name categories
with the same `CategoryCounts`, so the pages and the rest of the count plan
fold such values onto the picklist value too, and the plans always agree.
"""

from __future__ import annotations

import difflib
import itertools
import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from bot.errors import SourceDataError, SourceError, SourceQueryError
from bot.sources.base import (
    MAX_NEW_ITEMS,
    NO_CATEGORY,
    NOTHING_MORE,
    CategoryCounts,
    Deadline,
    FetchResult,
    Finish,
    Item,
    ItemTally,
    ScanPlan,
    SourceSettings,
    StrictModel,
    Wanted,
    category_key,
    parse_time,
)
from bot.sources.http import Calls
from bot.sources.vtiger_api import SERVICE, UnknownModule, VtigerApi, make_api
from bot.sources.vtiger_settings import VtigerSettings
from bot.sources.vtiger_vtql import IDENTIFIER, Condition, Filter, parse_filter, quotable

log = logging.getLogger(__name__)

PAGE = 100
"""Rows per VTQL query: Vtiger clamps any LIMIT above 100."""
SCAN_PAGES = 3
"""The most pages one shared scan reads: more members make more scans, which run side by side, each well
inside the fetch budget."""
CARD_EXTRAS = 2
"""The queries a card's top items and new items cost after counting per category (see the module's notes)."""
CREATED = "createdtime"
MODIFIED = "modifiedtime"
WINDOW_KEYS = {"aged": " [aged]", "closed": " [closed]"}
"""What a windowed kind adds to a read's row-count key, so its rows are not taken for its filter's open count."""
_WEBSERVICE_ID = re.compile(r"\d+x(\d+)")


class VtigerQuery(StrictModel):
    """What a KPI counts: records of ``module`` matching ``filter`` (a VTQL condition)."""

    module: str = Field(pattern=f"^{IDENTIFIER.pattern}$")
    filter: str = ""
    plan: Literal["auto", "count", "page"] = "auto"
    title: str | None = Field(default=None, pattern=f"^{IDENTIFIER.pattern}$")
    """The field a listed item is called by; default: the module's label fields (``describe``)."""
    closed_at: str = Field(default=MODIFIED, pattern=f"^{IDENTIFIER.pattern}$")
    """A closed KPI: the date field its window applies to (the filter selects the closed status values)."""

    left: str | None = None
    """A count KPI: what its items are once closed (``ticketstatus = 'Closed'``), so the card also says how
    many were closed since the last post (those whose ``closed_at`` is after it; one more ``count(*)``)."""

    @field_validator("left")
    @classmethod
    def _valid_left(cls, value: str | None) -> str | None:
        if value is not None:
            parse_filter(value)
        return value

    def unfit_for(self, kind: str) -> str | None:
        """Why this query cannot measure ``kind`` (None when it can)."""
        if kind == "value":
            return "Vtiger KPIs count records; a value KPI reads an http or file source"
        if kind in ("closed", "aged") and self.condition.joiner == "OR" and len(self.condition.conditions) > 1:
            return f"a {kind} KPI's filter joins its conditions with AND (use IN ('a', 'b') for alternatives)"
        return None

    @field_validator("filter")
    @classmethod
    def _valid_filter(cls, value: str) -> str:
        parse_filter(value)
        return value

    @property
    def condition(self) -> Filter:
        """The parsed filter."""
        return parse_filter(self.filter)


@dataclass(frozen=True)
class _Module:
    fields: frozenset[str]
    picklists: Mapping[str, tuple[str, ...]]
    expires: float
    label_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Read:
    """What one fetch reads: the module, the filter, the category, and which columns make an item."""

    module: str
    where: Filter
    category: str
    values: tuple[str, ...]
    titles: tuple[str, ...]
    wanted: Wanted

    def columns(self, items: bool) -> str:
        """The SELECT list: the category alone, or everything an item needs."""
        if not items:
            return self.category
        return ",".join(dict.fromkeys(("id", *self.titles, self.category, CREATED)))


class VtigerSource:
    """Counts Vtiger records per category value through the webservice or REST API."""

    Settings: ClassVar[type[SourceSettings]] = VtigerSettings
    Query: ClassVar[type[StrictModel]] = VtigerQuery
    service: ClassVar[str] = SERVICE

    def __init__(self, name: str, settings: VtigerSettings, base_dir: Path) -> None:
        self.name = name
        self.settings = settings
        self.api: VtigerApi = make_api(settings)
        self._modules: dict[str, _Module] = {}
        self._modules_lock = threading.Lock()
        self._last_rows: dict[tuple[str, str, str], int] = {}

    def fetch(
        self, query: VtigerQuery, category: str, deadline: Deadline, wanted: Wanted = NOTHING_MORE
    ) -> FetchResult:
        """Count the records ``query`` selects per value of ``category`` (folded onto its picklist values),
        and find what ``wanted`` asks for (see the module's notes for what that costs)."""
        calls = Calls(deadline, SERVICE)
        where = self._windowed(query, wanted)
        if not IDENTIFIER.fullmatch(category):
            raise SourceQueryError(f"category {category!r} is not a Vtiger field name")
        module = self._module(query.module, calls)
        titles = (query.title,) if query.title else tuple(f for f in module.label_fields if f in module.fields)
        for name in (*where.fields, category, *titles, *((CREATED,) if wanted.dates else ())):
            if name not in module.fields:
                close = difflib.get_close_matches(name, module.fields, n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise SourceQueryError(f"Vtiger module {query.module!r} has no field {name!r}{hint}")
        values = module.picklists.get(category)
        plain = values is not None and all(quotable(v) for v in values)
        if query.plan == "count" and not plain:
            raise SourceQueryError(
                f"plan count needs {category!r} to be a picklist field of {query.module} with plain values; "
                "use plan auto or page"
            )
        read = _Read(query.module, where, category, values or (), titles, wanted)
        key = (query.module, query.filter + WINDOW_KEYS.get(wanted.kind, ""), category)
        known = self._last_rows.get(key) if query.plan == "auto" else None
        counting = 1 + len(read.values) + _extras(wanted)  # the count plan's calls when no record is off the list
        if query.plan == "page" or not plain or not values:
            result = self._page(read, calls)
        elif query.plan == "count" or (known is not None and known // PAGE + 1 > counting):
            result = self._counted(read, calls, query.plan == "count")
        else:  # paging is the cheaper plan, or nothing is known yet
            result = self._page_or_count(read, calls, counting)
        self._last_rows[key] = result.details["rows"]
        if query.left and wanted.kind == "count" and wanted.since is not None:
            since = wanted.since.astimezone(self.settings.zone).strftime("%Y-%m-%d %H:%M:%S")
            left = parse_filter(query.left)
            closed = self._count(query.module, left.where(Condition(query.closed_at, ">", (since,))), calls)
            result = replace(result, closed_since=closed, calls=calls.count)
        return replace(result, details={**result.details, "queries": calls.queries})

    def _counted(self, read: _Read, calls: Calls, only_count: bool) -> FetchResult:
        """``count(*)`` in all, then per category; unless ``only_count``, every page instead when the total
        shows that paging costs fewer calls (the row count the plan was chosen by has changed since)."""
        total = self._count(read.module, read.where.where(), calls)
        if total == 0:
            result = self._result({}, "count(*) per category", calls, 0)
            return replace(result, created_since=0 if read.wanted.since is not None else None)
        if only_count or len(read.values) + _extras(read.wanted) < total // PAGE + 1:
            return self._count_extras(read, self._per_value(read, total, calls), calls)
        return self._page(read, calls)

    def _page_or_count(self, read: _Read, calls: Calls, counting: int) -> FetchResult:
        """Every page, while paging costs no more than counting would (``counting`` calls); after that many full
        pages, ``count(*)`` tells whether the pages left or the counts per category cost fewer calls."""
        walk = self._walker(read)
        walk.run(calls, limit=counting)
        if walk.done:
            return self._result(walk.counts.counts, "page records", calls, walk.rows, walk.tally)
        total = self._count(read.module, read.where.where(), calls)
        if max(total - walk.rows, 0) // PAGE + 1 <= len(read.values) + _extras(read.wanted):
            walk.run(calls)
            return self._result(walk.counts.counts, "page records", calls, walk.rows, walk.tally)
        return self._count_extras(read, self._per_value(read, total, calls), calls)

    def _windowed(self, query: VtigerQuery, wanted: Wanted) -> Filter:
        """The query's filter, with an aged or closed KPI's window as one more condition, in ``crm_timezone``:
        ``createdtime < 'cut-off'`` (aged), ``<closed_at> >= 'cut-off'`` (closed)."""
        where = query.condition
        if wanted.kind not in WINDOW_KEYS or wanted.cutoff is None:
            return where
        if where.joiner == "OR" and len(where.conditions) > 1:
            raise SourceQueryError(query.unfit_for(wanted.kind) or "an OR filter cannot take a window")
        cutoff = wanted.cutoff.astimezone(self.settings.zone).strftime("%Y-%m-%d %H:%M:%S")
        window = (
            Condition(CREATED, "<", (cutoff,)) if wanted.kind == "aged" else Condition(query.closed_at, ">=", (cutoff,))
        )
        return Filter((*where.conditions, window), "AND")

    def seed_rows(self, query: VtigerQuery, category: str, rows: int) -> None:
        """Take ``rows`` as the KPI's last row count (from the store) unless this process read it since."""
        self._last_rows.setdefault((query.module, query.filter, category), rows)

    def plan_scans(self, reads: Sequence[tuple[VtigerQuery, str]]) -> list[ScanPlan]:
        """The shared scans that answer some of ``reads`` in fewer calls than reading them one by one.

        Reads of one module (and title field) whose filters are the same, or differ only in one field's
        ``=``/``IN`` value ("team = X"), are read together: the common filter with that field ``IN`` every
        member's values, paged, each row given to the members whose values it matches as Vtiger's ``=``
        compares. A scan's cost is counted from the members' last row counts, against what each would cost
        alone: its cheaper plan, as ``auto`` chooses it. Reads of one filter whose row count is not known
        yet share a probe: its pages answer them all, as long as paging costs no more than counting each
        (after that many full pages, each is read alone, as one known to be larger). An explicit ``count``
        plan and an ``OR`` filter are read alone.
        """
        classes: dict[_Class, list[int]] = {}
        for at, (query, _) in enumerate(reads):
            where = query.condition
            if query.plan != "count" and not query.left and (where.joiner == "AND" or len(where.conditions) < 2):
                classes.setdefault((query.module, query.title, frozenset(where.conditions)), []).append(at)
        rows = {c: self._rows_of(reads, ats) for c, ats in classes.items()}
        splits: dict[tuple[str, str | None, frozenset[Condition], str], list[_Class]] = {}
        for module, title, conditions in classes:
            if rows[(module, title, conditions)] is None:
                continue
            for condition in conditions:
                if condition.op in ("=", "IN"):
                    key = (module, title, conditions - {condition}, condition.field)
                    splits.setdefault(key, []).append((module, title, conditions))
        taken: set[_Class] = set()
        plans: list[ScanPlan] = []
        for (_, _, rest, field), split in sorted(splits.items(), key=lambda entry: -len(entry[1])):
            group = [(c, classes[c]) for c in split if c not in taken]
            if len(group) > 1:
                found = self._chunk(reads, group, rest, field)
                planned = {at for plan in found for at in plan.members}
                taken.update(c for c, ats in group if ats[0] in planned)
                plans += found
        for c, ats in classes.items():
            if c in taken or len(ats) < 2:
                continue
            if rows[c] is None:
                where = Filter(tuple(sorted(c[2], key=repr)))
                plans.append(
                    _Scan(tuple(ats), 1, len(ats), c[0], c[1], where, None, tuple((at, None) for at in ats), True)
                )
            else:
                plans += self._chunk(reads, [(c, ats)], c[2], None)
        return plans

    def _rows_of(self, reads: Sequence[tuple[VtigerQuery, str]], members: list[int]) -> int | None:
        """The last row count of a filter (whichever category its reads count by), None if never read."""
        known = [self._last_rows[key] for key in map(_row_key, (reads[at] for at in members)) if key in self._last_rows]
        return max(known, default=None)

    def _chunk(
        self,
        reads: Sequence[tuple[VtigerQuery, str]],
        group: list[tuple[_Class, list[int]]],
        rest: frozenset[Condition],
        field: str | None,
    ) -> list[ScanPlan]:
        """``group``'s filters, in scans of at most `SCAN_PAGES` pages each, where a scan costs fewer calls."""
        limit = SCAN_PAGES * PAGE - 1
        chunks: list[list[tuple[_Class, list[int]]]] = [[]]
        rows_in = [0]
        for c, ats in group:
            rows = self._rows_of(reads, ats) or 0
            if rows > limit:
                continue
            if rows_in[-1] + rows > limit:
                chunks.append([])
                rows_in.append(0)
            chunks[-1].append((c, ats))
            rows_in[-1] += rows
        plans: list[ScanPlan] = []
        module, title = group[0][0][0], group[0][0][1]
        for chunk, rows in zip(chunks, rows_in, strict=True):
            members = tuple(at for _, ats in chunk for at in ats)
            alone = sum(self.calls_alone(*reads[at]) for at in members)
            calls = rows // PAGE + 1
            if len(members) < 2 or calls >= alone:
                continue
            # each member filter's own condition on the split field: what the common filter leaves out
            own = {c: next(iter(c[2] - rest)) for c, _ in chunk} if field else {}
            routes = tuple(
                (at, frozenset(category_key(v) for v in own[c].values) if field else None)
                for c, ats in chunk
                for at in ats
            )
            where = Filter(tuple(sorted(rest, key=repr)))
            if field:
                values = tuple(dict.fromkeys(v for condition in own.values() for v in condition.values))
                where = Filter((*where.conditions, Condition(field, "IN", values)))
            plans.append(_Scan(members, calls, alone, module, title, where, field, routes))
        return plans

    def calls_alone(self, query: VtigerQuery, category: str) -> int:
        """What ``fetch`` would cost for this read, by its last row count (login and describe left out): the
        cheaper of its pages and counting; a read whose row count is not known, at least its first page."""
        rows = self._last_rows.get((query.module, query.filter, category))
        if rows is None:
            return 1  # the first page: all of it when it is short
        counting = self._counting(query, category)
        return rows // PAGE + 1 if counting is None else min(rows // PAGE + 1, counting)

    def _counting(self, query: VtigerQuery, category: str) -> int | None:
        """What the count plan costs this read with the card's extras (`CARD_EXTRAS`) when no record's category
        is off the picklist; None when it can only be paged."""
        module = self._modules.get(query.module)
        values = module.picklists.get(category) if module else None
        if query.plan == "page" or not values or not all(quotable(v) for v in values):
            return None
        return 1 + len(values) + CARD_EXTRAS

    def scan(self, plan: ScanPlan, reads: Sequence[tuple[VtigerQuery, str]], deadline: Deadline) -> dict[int, Finish]:
        """Page through ``plan``'s common filter once; per member, what makes its result from its rows."""
        assert isinstance(plan, _Scan)  # noqa: S101 (plans come from plan_scans)
        calls = Calls(deadline, SERVICE)
        module = self._module(plan.module, calls)
        categories = tuple(dict.fromkeys(reads[at][1] for at in plan.members))
        titles = (plan.title,) if plan.title else tuple(f for f in module.label_fields if f in module.fields)
        for name in (*plan.where.fields, *categories, *titles, CREATED):
            if name not in module.fields or not IDENTIFIER.fullmatch(name):
                raise SourceQueryError(f"Vtiger module {plan.module!r} has no field {name!r}")
        columns = ",".join(dict.fromkeys(("id", *titles, *categories, CREATED, *((plan.split,) if plan.split else ()))))
        rows: dict[int, list[dict[str, Any]]] = {at: [] for at in plan.members}
        # a probe (row counts unknown) pages while that costs no more than its members would alone, counted
        limit = None
        if plan.probe:
            costs = [self._counting(*reads[at]) for at in plan.members]
            limit = None if None in costs else sum(c or 0 for c in costs)
        walk = _Keyset(self, plan.module, plan.where, (), columns)
        for page in walk.next_pages(calls, limit):
            for row in page:
                value = category_key(str(_value(row, plan.split, plan.module) or "")) if plan.split else ""
                for at, values in plan.routes:
                    if values is None or value in values:
                        rows[at].append(row)
        if not walk.done:  # more records than paging them pays for: each member is read alone, counted
            for at in plan.members:
                self._last_rows[_row_key(reads[at])] = walk.rows
            raise SourceDataError(f"the records of {plan.module} filled {_pages(walk.pages)}")
        pages = walk.pages
        how = f"shared scan of {len(plan.members)} KPIs: {_pages(pages)}"
        return {at: self._finisher(reads[at], module, titles, rows[at], how, calls, plan) for at in plan.members}

    def _finisher(
        self,
        read: tuple[VtigerQuery, str],
        module: _Module,
        titles: tuple[str, ...],
        rows: list[dict[str, Any]],
        how: str,
        scanned: Calls,
        plan: ScanPlan,
    ) -> Finish:
        """What makes one member's result from its rows of a shared scan, for what its card asks."""
        query, category = read
        calls, queries = scanned.count, scanned.queries
        values = module.picklists.get(category) or ()
        self._last_rows[_row_key(read)] = len(rows)

        def finish(wanted: Wanted) -> FetchResult:
            one = _Read(query.module, query.condition, category, values, titles, wanted)
            counts, tally = CategoryCounts(values), ItemTally(wanted, dated=True)
            for row in rows:  # an aged KPI keeps the rows created before its cut-off (a count keeps every row)
                value = _value(row, category, query.module)
                item = self._item(one, row, counts.name(value))
                if wanted.keeps(item.created, None):
                    counts.add(value)
                    tally.add(item)
            details = {"rows": len(rows), "api": self.settings.api, "scan": id(plan), "queries": queries}
            return tally.result(counts.counts, how, calls, details)

        return finish

    def check(self, deadline: Deadline) -> str:
        """Sign in and list the modules (``listtypes``): proves url, api, username and access key."""
        calls = Calls(deadline, SERVICE)
        types = _module_names(self.api.listtypes(calls))
        if types is None:
            raise SourceDataError("Vtiger's listtypes answer has no module list")
        return f"signed in as {self.settings.username} ({self.settings.api} API); {len(types)} modules"

    def close(self) -> None:
        """Release pooled connections (the Vtiger session is left to expire)."""
        self.api.transport.close()

    def _per_value(self, read: _Read, total: int, calls: Calls) -> FetchResult:
        module, where, category, values = read.module, read.where, read.category, read.values
        counts = CategoryCounts(values)
        for value in values:
            number = self._count(module, where.where(Condition(category, "=", (value,))), calls)
            if number:
                counts.add(value, number)
        counted = sum(counts.counts.values())
        rest = total - counted
        if rest < 0:
            raise _mismatch(module, f"{counted} by {category} > {total} in all")
        plan = "count(*) per category"
        if not rest:
            return self._result(counts.counts, plan, calls, total)
        if where.joiner == "OR":
            # the != chain would repeat in every alternative of the filter: read every record instead
            every = CategoryCounts(values)
            pages = self._group(module, where, (), category, calls, every)
            rows = sum(every.counts.values())
            return self._result(every.counts, f"{plan} + {_pages(pages)} of all records", calls, rows)
        others = tuple(Condition(category, "!=", (value,)) for value in values)
        pages = self._group(module, where, others, category, calls, counts)
        found = sum(counts.counts.values()) - counted
        missed = rest - found  # NULL matches no !=: an empty category
        if missed < 0:
            raise _mismatch(module, f"{found} outside the picklist > {rest} left")
        if missed:
            counts.add(None, missed)
        return self._result(counts.counts, f"{plan} + {_pages(pages)} of other values", calls, total)

    def _page(self, read: _Read, calls: Calls) -> FetchResult:
        """Every record, paged."""
        walk = self._walker(read)
        walk.run(calls)
        return self._result(walk.counts.counts, "page records", calls, walk.rows, walk.tally)

    def _walker(self, read: _Read) -> _Walk:
        """A walk through ``read``'s records, each counted by its category and, when the card asks for dates,
        tallied as an item."""
        return _Walk(self, read.module, read.where, (), read.category, CategoryCounts(read.values), read)

    def _group(
        self,
        module: str,
        where: Filter,
        others: tuple[Condition, ...],
        category: str,
        calls: Calls,
        counts: CategoryCounts,
    ) -> int:
        """Add the records ``where`` and ``others`` select to ``counts`` by ``category``; the pages read."""
        walk = _Walk(self, module, where, others, category, counts)
        walk.run(calls)
        return walk.pages

    def _count_extras(self, read: _Read, result: FetchResult, calls: Calls) -> FetchResult:
        """The heaviest items (with the oldest among them) and the new ones, after counting per category."""
        wanted = read.wanted
        listed = wanted.top > 0 and self._heaviest(read, result, calls)
        if listed:
            result = listed
        elif wanted.oldest and any(result.counts.values()):
            result = self._oldest(read, result, calls)
        if wanted.since is not None:
            since = wanted.since.astimezone(self.settings.zone).strftime("%Y-%m-%d %H:%M:%S")
            where = read.where.where(Condition(CREATED, ">", (since,)))
            result = replace(result, created_since=self._count(read.module, where, calls))
        if wanted.lists_new:
            result = self._new_listed(read, result, calls)
        return replace(result, calls=calls.count)

    def _new_listed(self, read: _Read, result: FetchResult, calls: Calls) -> FetchResult:
        """One query for the new items an alert lists (`Wanted.new_in` created after ``new_after``), oldest
        first; a full page is counted as "at least a page" (`MAX_NEW_ITEMS`)."""
        wanted = read.wanted
        names = tuple(c for c, n in result.counts.items() if n and quotable(c) and wanted.lists_category(c))
        if not names or wanted.new_after is None:
            return replace(result, new_items=(), new_total=0)
        after = wanted.new_after.astimezone(self.settings.zone).strftime("%Y-%m-%d %H:%M:%S")
        where = read.where.where(Condition(read.category, "IN", names), Condition(CREATED, ">", (after,)))
        columns = read.columns(items=True)
        # module and the columns are checked identifiers; where() quotes every value
        vtql = f"SELECT {columns} FROM {read.module}{where} ORDER BY {CREATED} LIMIT {MAX_NEW_ITEMS};"  # noqa: S608
        tally = ItemTally(wanted, dated=True)
        naming = CategoryCounts(read.values)
        for row in self._rows(self.api.query(vtql, read.module, calls), read.module):
            tally.add(self._item(read, row, naming.add(_value(row, read.category, read.module))))
        return replace(result, new_items=tally.new_items(), new_total=tally.listed_total)

    def _oldest(self, read: _Read, result: FetchResult, calls: Calls) -> FetchResult:
        """One query for the oldest item, when no heaviest items are listed."""
        columns = read.columns(items=True)
        # module and the columns are checked identifiers; where() quotes every value
        vtql = f"SELECT {columns} FROM {read.module}{read.where.where()} ORDER BY {CREATED} LIMIT 1;"  # noqa: S608
        tally = ItemTally(NOTHING_MORE, dated=True)
        naming = CategoryCounts(read.values)
        for row in self._rows(self.api.query(vtql, read.module, calls), read.module):
            tally.add(self._item(read, row, naming.add(_value(row, read.category, read.module))))
        return replace(result, oldest=tally.oldest)

    def _heaviest(self, read: _Read, result: FetchResult, calls: Calls) -> FetchResult | None:
        """One query for the ``top`` heaviest, then oldest, items (see the module's notes); None when no
        category with open items weighs anything."""
        wanted, counts = read.wanted, result.counts
        listable = [(wanted.weight(c), c, n) for c, n in counts.items() if n and c != NO_CATEGORY and quotable(c)]
        heavy = sorted((entry for entry in listable if entry[0] > 0), key=lambda entry: -entry[0])
        tiers = [list(group) for _, group in itertools.groupby(heavy, key=lambda entry: entry[0])]
        chosen: list[list[tuple[float, str, int]]] = []
        listed = 0  # the open items of the chosen categories
        for tier in tiers:
            if listed >= wanted.top:
                break
            chosen.append(tier)
            listed += sum(n for _, _, n in tier)
        if wanted.kind == "aged":  # the oldest of every weighted category, whatever its weight
            chosen, listed = [[entry for tier in tiers for entry in tier]], wanted.top
        if len(chosen) > 1 and listed > PAGE:
            listed -= sum(n for _, _, n in chosen.pop())  # only the heavier ones: fewer than top, all listed
        if not chosen:
            return None
        names = tuple(c for tier in chosen for _, c, _ in tier)
        limit = wanted.top if len(chosen) == 1 else listed
        where = read.where.where(Condition(read.category, "IN", names))
        columns = read.columns(items=True)
        # module and the columns are checked identifiers; where() quotes every value
        vtql = f"SELECT {columns} FROM {read.module}{where} ORDER BY {CREATED} LIMIT {limit};"  # noqa: S608
        tally = ItemTally(wanted, dated=True)
        naming = CategoryCounts(read.values)
        for row in self._rows(self.api.query(vtql, read.module, calls), read.module):
            tally.add(self._item(read, row, naming.add(_value(row, read.category, read.module))))
        everything = {c for c, n in counts.items() if n}
        among = () if everything <= set(names) else names
        return replace(result, items=tally.items(), oldest=tally.oldest, oldest_among=among)

    def _item(self, read: _Read, row: Mapping[str, object], category: str) -> Item:
        title = " ".join(str(row.get(f) or "").strip() for f in read.titles).strip()
        try:
            created = parse_time(row.get(CREATED), self.settings.zone)
        except ValueError:
            raise SourceDataError(
                f"Vtiger's {read.module}.{CREATED} holds {str(row.get(CREATED))[:40]!r}, not a date and time"
            ) from None
        number = _WEBSERVICE_ID.fullmatch(str(row.get("id") or ""))
        link = (
            f"{self.settings.url}/index.php?module={read.module}&view=Detail&record={number.group(1)}"
            if number
            else None
        )
        return Item(title=title, category=category, created=created, link=link)

    def _count(self, module: str, where: str, calls: Calls) -> int:
        result = self.api.query(f"SELECT count(*) FROM {module}{where};", module, calls)  # noqa: S608
        rows = self._rows(result, module)
        value = rows[0].get("count") if len(rows) == 1 else None
        try:
            number = int(str(value))
        except ValueError:
            number = -1
        if number < 0:
            raise SourceDataError(f"Vtiger answered count(*) on {module} with {result!r:.80}, not a count")
        return number

    @staticmethod
    def _rows(result: Any, module: str) -> list[dict[str, Any]]:
        if not isinstance(result, list) or not all(isinstance(r, dict) for r in result):
            raise SourceDataError(f"Vtiger answered a query on {module} with something other than a list of rows")
        if len(result) > PAGE:
            raise SourceDataError(f"Vtiger returned {len(result)} rows for a query on {module}, more than {PAGE}")
        return result

    def _result(
        self, counts: dict[str, int], plan: str, calls: Calls, rows: int, tally: ItemTally | None = None
    ) -> FetchResult:
        log.debug("%s: %s, %d rows, %d calls", self.name, plan, rows, calls.count)
        details = {"rows": rows, "api": self.settings.api}
        if tally is not None:
            return tally.result(counts, plan, calls.count, details)
        return FetchResult(counts=counts, plan=plan, calls=calls.count, details=details)

    def _module(self, name: str, calls: Calls) -> _Module:
        """The fields and picklist values of module ``name``, described at most once per cache period."""
        cached = self._modules.get(name)
        if cached and cached.expires > time.monotonic():
            return cached
        if not self._modules_lock.acquire(timeout=calls.deadline.remaining()):
            raise calls.timed_out()
        try:
            cached = self._modules.get(name)
            if cached and cached.expires > time.monotonic():
                return cached
            try:
                result = self.api.describe(name, calls)
            except UnknownModule as exc:
                raise UnknownModule(f"{exc}{self._module_hint(name, calls)}") from None
            module = _describe(name, result, time.monotonic() + self.settings.describe_cache_seconds)
            self._modules[name] = module
            return module
        finally:
            self._modules_lock.release()

    def _module_hint(self, name: str, calls: Calls) -> str:
        """A suggestion from ``listtypes`` for a module name Vtiger does not know (best effort)."""
        try:
            types = _module_names(self.api.listtypes(calls))
        except SourceError:
            return ""
        close = difflib.get_close_matches(name, types or [], n=3, cutoff=0.5)
        return f" (similar modules: {', '.join(close)})" if close else ""


_Class = tuple[str, str | None, frozenset[Condition]]
"""Reads with one filter: the module, the title field, the filter's conditions."""


@dataclass(frozen=True)
class _Scan(ScanPlan):
    """A shared scan: ``where`` selects every member's records; ``routes`` gives each member the rows whose
    ``split`` value (folded by `category_key`) is one of its values (None: every row)."""

    module: str
    title: str | None
    where: Filter
    split: str | None
    routes: tuple[tuple[int, frozenset[str] | None], ...]
    probe: bool = False
    """Row counts unknown: pages while that costs no more than counting each member (else they are read alone)."""


class _Keyset:
    """The records a filter selects, 100 at a time in id order, each page after the last id read (keyset paging:
    records added or removed meanwhile shift no page)."""

    def __init__(
        self, source: VtigerSource, module: str, where: Filter, others: tuple[Condition, ...], columns: str
    ) -> None:
        """``others`` are ANDed to ``where``; ``columns`` (checked identifiers) are selected."""
        self.source, self.module, self.where, self.others, self.columns = source, module, where, others, columns
        self.pages = self.rows = 0
        self.last: str | None = None
        """The id of the last row read (``9x123``)."""
        self.done = False

    def next_pages(self, calls: Calls, limit: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """The next pages: to the end (a short page), or until ``limit`` pages are read in all."""
        while not self.done and (limit is None or self.pages < limit):
            after = () if self.last is None else (Condition("id", ">", (self.last,)),)
            where = self.where.where(*self.others, *after)
            # module and the columns are checked identifiers; where() quotes every value
            vtql = f"SELECT {self.columns} FROM {self.module}{where} ORDER BY id LIMIT {PAGE};"  # noqa: S608
            rows = self.source._rows(self.source.api.query(vtql, self.module, calls), self.module)
            self.pages += 1
            self.rows += len(rows)
            self.done = len(rows) < PAGE
            if not self.done:
                self._after(rows[-1].get("id"))
            yield rows

    def _after(self, last: object) -> None:
        """Take ``last``, the id of a full page's last row, as where the next page starts."""
        number = _record_number(last)
        if number is None or (self.last is not None and number <= (_record_number(self.last) or 0)):
            raise SourceDataError(f"Vtiger's pages of {self.module} are not in id order (a row's id is {last!r:.30})")
        self.last = str(last)


class _Walk(_Keyset):
    """Pages of records counted by their category and, when a read's card asks for dates, tallied as its items."""

    def __init__(
        self,
        source: VtigerSource,
        module: str,
        where: Filter,
        others: tuple[Condition, ...],
        category: str,
        counts: CategoryCounts,
        read: _Read | None = None,
    ) -> None:
        self.read = read if read is not None and read.wanted.dates else None
        super().__init__(source, module, where, others, self.read.columns(items=True) if self.read else category)
        self.category = category
        self.counts = counts
        self.tally = ItemTally(read.wanted if read else NOTHING_MORE, dated=True)

    def run(self, calls: Calls, limit: int | None = None) -> None:
        """Count the next pages: to the end, or until ``limit`` pages are read in all."""
        for rows in self.next_pages(calls, limit):
            for row in rows:
                name = self.counts.add(_value(row, self.category, self.module))
                if self.read:
                    self.tally.add(self.source._item(self.read, row, name))


def _extras(wanted: Wanted) -> int:
    """The queries a card's asks cost after counting per category: the heaviest items or the oldest, the new, and
    an alert's list of new items."""
    return (wanted.top > 0 or wanted.oldest) + (wanted.since is not None) + wanted.lists_new


def _record_number(value: object) -> int | None:
    """The record number of a webservice id (``9x123``: 123), None when ``value`` is not one."""
    match = _WEBSERVICE_ID.fullmatch(str(value or ""))
    return int(match.group(1)) if match else None


def _row_key(read: tuple[VtigerQuery, str]) -> tuple[str, str, str]:
    return read[0].module, read[0].filter, read[1]


def _value(row: Mapping[str, object], category: str, module: str) -> object:
    """The category value of a query's row."""
    if category not in row:
        raise SourceDataError(f"Vtiger's {module} rows lack the {category!r} column")
    value = row[category]
    if isinstance(value, dict | list):
        raise SourceDataError(f"Vtiger's {module}.{category} holds a {type(value).__name__}, not a value")
    return value


def _module_names(result: Any) -> list[str] | None:
    """The module names in a ``listtypes`` result, or None if it has no list."""
    types = result.get("types") if isinstance(result, dict) else None
    return [str(t) for t in types] if isinstance(types, list) else None


def _pages(number: int) -> str:
    return f"{number} page" if number == 1 else f"{number} pages"


def _mismatch(module: str, detail: str) -> SourceDataError:
    return SourceDataError(
        f"Vtiger's counts for {module} do not add up ({detail}); records may have changed meanwhile, try again"
    )


def _describe(name: str, result: Any, expires: float) -> _Module:
    """Fields and picklist values from a ``describe`` result."""
    fields = result.get("fields") if isinstance(result, dict) else None
    if not isinstance(fields, list):
        raise SourceDataError(f"Vtiger's describe of {name} has no field list")
    names: set[str] = set()
    picklists: dict[str, tuple[str, ...]] = {}
    for item in fields:
        field_name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(field_name, str):
            raise SourceDataError(f"Vtiger's describe of {name} lists a field without a name")
        names.add(field_name)
        kind = item.get("type")
        if isinstance(kind, dict) and kind.get("name") == "picklist":
            options = kind.get("picklistValues") or []
            if not isinstance(options, list):
                raise SourceDataError(f"Vtiger's describe of {name} has malformed picklist values for {field_name}")
            values = [o.get("value") for o in options if isinstance(o, dict)]
            spellings: dict[str, str] = {}  # one value per category Vtiger's = tells apart
            for value in values:
                if value is not None and str(value).strip():
                    spellings.setdefault(category_key(str(value)), str(value))
            picklists[field_name] = tuple(spellings.values())
    labels = result.get("labelFields")
    label_fields = tuple(f.strip() for f in labels.split(",") if f.strip()) if isinstance(labels, str) else ()
    return _Module(frozenset(names), picklists, expires, label_fields)
