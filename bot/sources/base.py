"""What every data source gives: counts of open items per category.

A source type is a class with two pydantic models and a fetch method:

- ``Settings``: the source's own block under ``sources:`` in the config
  (``type`` included), validated at start;
- ``Query``: what a KPI using this source counts (the KPI's ``count:`` block),
  validated at start against these rules;
- ``fetch(query, category, deadline, wanted)``: the counts, or a ``SourceError``;
  with ``wanted`` (see `Wanted`) also the heaviest open items, the oldest
  item's creation time and how many items are new, where the source knows them;
- ``check(deadline)``: sign in and prove the source answers (for ``check``);
- ``service``: the service in words, for messages.

Sources never raise anything but ``SourceError`` subclasses from ``fetch``,
and never return a partial or guessed count: unknown is an error, not 0.
Every source names its categories with `CategoryCounts`, so a value is
counted the way the CRM compares it (letter case and surrounding spaces do
not make a new category, and neither do accents); `fold_onto` then gives them the spelling of the
KPI's weights keys.
"""

from __future__ import annotations

import heapq
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from functools import cached_property
from typing import Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from bot.errors import SourceDataError

NO_CATEGORY = "(none)"
"""The category under which items with an empty category field are counted."""


def category_key(value: str) -> str:
    """What spellings of one category share, as Vtiger's database compares them: trimmed, no case, no accents."""
    letters = unicodedata.normalize("NFD", value.strip())
    return "".join(c for c in letters if not unicodedata.combining(c)).casefold()


class CategoryCounts:
    """Counts per category, with each value named as the CRM counts it.

    A value equal to one of the ``known`` categories (a picklist's values, a
    KPI's weights keys) up to letter case, accents and surrounding whitespace
    is counted under that category; any other value under its first trimmed
    spelling seen; an empty or missing value under ``(none)``.
    """

    def __init__(self, known: Iterable[str] = ()) -> None:
        self._names: dict[str, str] = {}
        for name in known:
            if name.strip():
                self._names.setdefault(category_key(name), name.strip())
        self.counts: dict[str, int] = {}

    def add(self, value: object, number: int = 1) -> str:
        """Count ``number`` items whose category field holds ``value``; return the category's name."""
        name = self.name(value)
        self.counts[name] = self.counts.get(name, 0) + number
        return name

    def name(self, value: object) -> str:
        """The category a field holding ``value`` is counted under (the first spelling seen names a new one)."""
        text = "" if value is None else str(value).strip()
        return self._names.setdefault(category_key(text), text) if text else NO_CATEGORY


def fold_onto(counts: Mapping[str, int], categories: Iterable[str]) -> dict[str, int]:
    """``counts`` with each category named as the one of ``categories`` (a KPI's weights keys) it matches."""
    folded = CategoryCounts(categories)
    for name, number in counts.items():
        folded.add(name, number)
    return folded.counts


def with_categories_of(result: FetchResult, categories: Iterable[str]) -> FetchResult:
    """``result`` with its counts and items named as ``categories`` (a KPI's weights keys) name them."""
    folded = CategoryCounts(categories)
    for name, number in result.counts.items():
        folded.add(name, number)
    items = tuple(replace(item, category=folded.name(item.category)) for item in result.items)
    new = tuple(replace(item, category=folded.name(item.category)) for item in result.new_items)
    return replace(result, counts=folded.counts, items=items, new_items=new)


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown keys and is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSettings(StrictModel):
    """The base of every source type's ``Settings``: ``type`` names the type.

    ``cache_seconds``: how old a KPI's last stored reading may be for ``/score``
    to show it instead of reading again (0: always read). ``max_concurrent``:
    how many reads of this source run at once in one process.
    """

    type: str
    cache_seconds: float = Field(default=60, ge=0, le=86400)
    max_concurrent: int = Field(default=8, ge=1, le=64)
    daily_call_limit: int | None = Field(default=None, ge=1)
    """The calls a day the service allows (Vtiger Cloud: 24,000 on some editions); ``check`` warns when the
    configured schedules would need more."""


@dataclass(frozen=True)
class Wanted:
    """What a card asks of a fetch besides the counts.

    ``top``: how many of the heaviest open items to list (0: none), heaviest
    by ``weights`` (a KPI's weights; unweighted and weight-0 items are never
    listed), then oldest first. ``since``: count the items created after it
    (the team's previous post); None: do not count.
    """

    top: int = 0
    weights: Mapping[str, float] = field(default_factory=dict)
    since: datetime | None = None
    oldest: bool = False
    """Whether to find when the oldest open item was created."""
    kind: str = "count"
    """What is counted (`bot.config.KpiKind`): open items (count), those created before ``cutoff`` (aged),
    those closed at or after ``cutoff`` (closed), or one number (value)."""
    cutoff: datetime | None = None
    """aged: count the items created before it; closed: the items closed at or after it."""
    new_in: tuple[str, ...] = ()
    """Categories whose open items created after ``new_after`` are listed (an alert's ``new_items``)."""
    new_after: datetime | None = None
    """List the items of ``new_in`` created after it (the last reading an alert check judged); None: none."""

    @property
    def dates(self) -> bool:
        """Whether anything asked needs the items' creation times."""
        return self.top > 0 or self.since is not None or self.oldest or self.kind == "aged" or self.lists_new

    @property
    def lists_new(self) -> bool:
        """Whether the new items of some categories are to be listed."""
        return bool(self.new_in) and self.new_after is not None and self.kind == "count"

    def listed_new(self, item: Item) -> bool:
        """Whether ``item`` is one of the new items to list (its category in ``new_in``, created after
        ``new_after``)."""
        if not self.lists_new or item.created is None or self.new_after is None:
            return False
        return item.created > self.new_after and self.lists_category(item.category)

    def lists_category(self, category: str) -> bool:
        """Whether ``category`` is one of ``new_in`` (matched as `category_key` matches)."""
        return category_key(category) in self._new_keys

    @cached_property
    def _new_keys(self) -> frozenset[str]:
        return frozenset(category_key(name) for name in self.new_in)

    def keeps(self, created: datetime | None, closed: datetime | None) -> bool:
        """Whether an item created and closed at these times counts for the kind (a record a filter selected)."""
        if self.kind == "aged":
            return created is not None and self.cutoff is not None and created < self.cutoff
        if self.kind == "closed":
            return closed is not None and self.cutoff is not None and closed >= self.cutoff
        return True

    def weight(self, category: str) -> float:
        """The weight of ``category`` (matched as `category_key` matches), 0 when unweighted."""
        return self._keyed.get(category_key(category), 0.0)

    @cached_property
    def _keyed(self) -> dict[str, float]:
        return {category_key(name): weight for name, weight in self.weights.items()}


MAX_NEW_ITEMS = 100
"""The most new items a fetch lists for an alert (one page of Vtiger's query); more are counted."""

NOTHING_MORE = Wanted()
"""Only the counts."""


@dataclass(frozen=True)
class Item:
    """One open item as a card lists it: ``link`` opens it, ``created`` is aware (None: unknown)."""

    title: str
    category: str
    created: datetime | None = None
    link: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """Counts per category, plus how they were obtained (for ``check``) and what else was asked.

    ``items``: the heaviest open items, heaviest then oldest first. ``oldest``:
    when the oldest open item was created; ``oldest_among`` names the categories
    it was looked for in when that is not every category (a count plan reads only
    the heaviest ones). ``created_since``: how many items are newer than
    ``Wanted.since`` (None: not asked, or the source has no creation times).
    """

    counts: dict[str, int]
    plan: str
    calls: int
    details: dict[str, Any] = field(default_factory=dict)
    items: tuple[Item, ...] = ()
    oldest: datetime | None = None
    oldest_among: tuple[str, ...] = ()
    created_since: int | None = None
    value: float | None = None
    """A value KPI's number (its counts are then empty)."""
    closed_since: int | None = None
    """How many items left the count (were closed) after ``Wanted.since`` (None: not asked, or not known)."""
    new_items: tuple[Item, ...] = ()
    """The items of ``Wanted.new_in`` created after ``Wanted.new_after``, oldest first, at most `MAX_NEW_ITEMS`."""
    new_total: int | None = None
    """How many such items there are (None: not asked); more than listed when the list is full."""

    @property
    def rows(self) -> int | None:
        """How many records the source read or counted, when it says (``details["rows"]``)."""
        rows = self.details.get("rows")
        return rows if isinstance(rows, int) else None


class ItemTally:
    """Records read one by one, for everything `Wanted` asks: the heaviest ``top``, the oldest, the new."""

    def __init__(self, wanted: Wanted, dated: bool) -> None:
        self.wanted = wanted
        self.dated = dated
        self.oldest: datetime | None = None
        self.new = 0
        self.listed: list[Item] = []
        """The new items of the categories ``wanted.new_in`` asks for (see `Wanted.listed_new`)."""
        self.listed_total = 0
        self._heap: list[tuple[float, float, int, Item]] = []
        """The items kept, as (weight, -created, -order, item), or (-created, weight, ...) for an aged KPI."""
        self._seen = 0

    def add(self, item: Item) -> None:
        """Take one open item into account."""
        created = item.created
        if created is not None:
            self.oldest = created if self.oldest is None else min(self.oldest, created)
            if self.wanted.since is not None and created > self.wanted.since:
                self.new += 1
        if self.wanted.listed_new(item):
            self.listed_total += 1
            self.listed.append(item)
        weight = self.wanted.weight(item.category)
        if self.wanted.top <= 0 or weight <= 0:
            return
        self._seen += 1
        age = created.timestamp() if created else float("inf")
        # the heap keeps the largest: heaviest, then oldest, then first read (aged: oldest, then heaviest)
        entry = (-age, weight, -self._seen, item) if self.wanted.kind == "aged" else (weight, -age, -self._seen, item)
        if len(self._heap) < self.wanted.top:
            heapq.heappush(self._heap, entry)
        else:
            heapq.heappushpop(self._heap, entry)

    def result(self, counts: dict[str, int], plan: str, calls: int, details: dict[str, Any]) -> FetchResult:
        """The fetch's result with the counts and this tally."""
        return FetchResult(
            counts=counts,
            plan=plan,
            calls=calls,
            details=details,
            items=self.items(),
            oldest=self.oldest,
            created_since=self.new if self.dated and self.wanted.since is not None else None,
            new_items=self.new_items(),
            new_total=self.listed_total if self.dated and self.wanted.lists_new else None,
        )

    def new_items(self) -> tuple[Item, ...]:
        """The new items listed, oldest first, at most `MAX_NEW_ITEMS`."""
        oldest = sorted(self.listed, key=lambda item: item.created or datetime.min.replace(tzinfo=UTC))
        return tuple(oldest[:MAX_NEW_ITEMS])

    def items(self) -> tuple[Item, ...]:
        """The heaviest items seen, heaviest then oldest first."""
        return tuple(entry[3] for entry in sorted(self._heap, reverse=True))


def web_link(value: object) -> str | None:
    """``value`` as a link a card may open: an http(s) URL, else None."""
    text = "" if value is None else str(value).strip()
    return text if urlsplit(text).scheme in {"http", "https"} and urlsplit(text).netloc else None


def parse_time(value: object, zone: tzinfo = UTC) -> datetime | None:
    """An ISO 8601 date or time (``2026-11-20``, ``2026-11-20 10:00:00``, with or without an offset) as an
    aware time, read in ``zone`` when it names none; None for an empty value; ``ValueError`` otherwise."""
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


@dataclass(frozen=True)
class Deadline:
    """An absolute point on the monotonic clock by which a fetch must finish."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """A deadline ``seconds`` from now."""
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        """Whether no time is left."""
        return self.remaining() <= 0.0


class KindQuery(Protocol):
    """A source type's ``Query``: it says whether it can measure a kind of KPI."""

    def unfit_for(self, kind: str) -> str | None:
        """Why this query cannot measure a KPI of ``kind`` (what key it lacks), or None when it can."""
        ...


def value_of(found: object, where: str) -> float:
    """A value KPI's number from what its source gave: a number, never a text, null, boolean or nothing
    (a ``SourceDataError`` saying ``where`` ("path 'p95' selected") and what was there instead)."""
    if isinstance(found, bool) or not isinstance(found, int | float):
        kinds = {str: f"the text {str(found)[:40]!r}", type(None): "nothing (null or missing)", bool: f"{found}"}
        what = kinds.get(type(found)) or ("a list" if isinstance(found, list) else "an object")
        raise SourceDataError(f"{where} {what}, not a number; a value KPI needs a JSON number")
    if found != found or found in (float("inf"), float("-inf")):
        raise SourceDataError(f"{where} {found}, not a finite number")
    return float(found)


class Source(Protocol):
    """A configured data source, ready to fetch counts for KPIs."""

    Settings: ClassVar[type[SourceSettings]]
    Query: ClassVar[type[StrictModel]]
    service: ClassVar[str]
    """The service in words, for messages: "Vtiger did not answer within 8 s"."""

    def fetch(self, query: Any, category: str, deadline: Deadline, wanted: Wanted = NOTHING_MORE) -> FetchResult:
        """Count the items ``query`` selects, grouped by the ``category`` field (see `CategoryCounts`),
        and find what ``wanted`` asks for where the source knows it."""
        ...

    def check(self, deadline: Deadline) -> str:
        """Prove the source answers with the configured credentials; say what it found."""
        ...


@runtime_checkable
class RemembersRows(Protocol):
    """A source whose plan depends on a KPI's last row count (Vtiger's ``auto``).

    A fresh process is given the row count of each KPI's last stored reading,
    so it plans as the process that took that reading would.
    """

    def seed_rows(self, query: Any, category: str, rows: int) -> None:
        """Take ``rows`` as the last row count of ``query``/``category`` unless this process knows a newer one."""
        ...


@dataclass(frozen=True)
class ScanPlan:
    """One read that answers several KPI reads of a batch together, and what it is expected to cost.

    ``members``: the reads it answers (their places in the batch); ``calls``: the calls it takes, counted from
    the members' last row counts; ``alone``: the calls the members would take read one by one.
    """

    members: tuple[int, ...]
    calls: int
    alone: int


Finish = Callable[[Wanted], FetchResult]
"""A member's result from a shared scan, for what its card asks."""


@runtime_checkable
class ScansTogether(Protocol):
    """A source that can answer several KPIs with one read (Vtiger: one scan for KPIs of a common filter)."""

    def plan_scans(self, reads: Sequence[tuple[Any, str]]) -> list[ScanPlan]:
        """The scans that answer some of ``reads`` (``(query, category)`` pairs) in fewer calls than reading
        them one by one; reads no scan takes are left to ``fetch``."""
        ...

    def scan(self, plan: ScanPlan, reads: Sequence[tuple[Any, str]], deadline: Deadline) -> dict[int, Finish]:
        """Run ``plan`` over the batch ``reads``; per member, what makes its result."""
        ...

    def calls_alone(self, query: Any, category: str) -> int:
        """The calls one read of ``query`` by ``category`` takes by itself (sign-in left out)."""
        ...
