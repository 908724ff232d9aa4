"""What every data source gives: counts of open items per category.

A source type is a class with two pydantic models and a fetch method:

- ``Settings``: the source's own block under ``sources:`` in the config
  (``type`` included), validated at start;
- ``Query``: what a KPI using this source counts (the KPI's ``count:`` block),
  validated at start against these rules;
- ``fetch(query, category, deadline)``: the counts, or a ``SourceError``;
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

import time
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

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

    def add(self, value: object, number: int = 1) -> None:
        """Count ``number`` items whose category field holds ``value``."""
        text = "" if value is None else str(value).strip()
        name = self._names.setdefault(category_key(text), text) if text else NO_CATEGORY
        self.counts[name] = self.counts.get(name, 0) + number


def fold_onto(counts: Mapping[str, int], categories: Iterable[str]) -> dict[str, int]:
    """``counts`` with each category named as the one of ``categories`` (a KPI's weights keys) it matches."""
    folded = CategoryCounts(categories)
    for name, number in counts.items():
        folded.add(name, number)
    return folded.counts


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown keys and is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSettings(StrictModel):
    """The base of every source type's ``Settings``: ``type`` names the type."""

    type: str


@dataclass(frozen=True)
class FetchResult:
    """Counts per category, plus how they were obtained (for ``check``)."""

    counts: dict[str, int]
    plan: str = "read"
    calls: int = 1
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int | None:
        """How many records the source read or counted, when it says (``details["rows"]``)."""
        rows = self.details.get("rows")
        return rows if isinstance(rows, int) else None


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


class Source(Protocol):
    """A configured data source, ready to fetch counts for KPIs."""

    Settings: ClassVar[type[SourceSettings]]
    Query: ClassVar[type[StrictModel]]
    service: ClassVar[str]
    """The service in words, for messages: "Vtiger did not answer within 8 s"."""

    def fetch(self, query: Any, category: str, deadline: Deadline) -> FetchResult:
        """Count the items ``query`` selects, grouped by the ``category`` field (see `CategoryCounts`)."""
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
