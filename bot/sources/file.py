"""The ``file`` source: issues in a local CSV or JSON file (the demo's source).

A file that says nothing is not a zero: an empty file, a CSV whose header
lacks a column the KPI names, or a file that cannot be read is an error. A
CSV with its header and no matching rows, or a JSON ``[]``, is a real 0.

Optional columns name each record's ``title``, ``created`` (an ISO 8601 date
or time, UTC unless it carries an offset) and ``link``: with them the card
lists the heaviest open items, the oldest one's age and what is new.

Kinds: ``aged`` counts the matching records whose ``created`` is before the
cut-off; ``closed`` those whose ``closed_at`` column is at or after it (an
empty one: not closed); ``value`` takes the ``value`` column of the last
matching record (a metrics log appended over time), which must be a number.
"""

from __future__ import annotations

import contextlib
import csv
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, PlainValidator

from bot.errors import SourceDataError, SourceQueryError, SourceUnavailable
from bot.sources.base import (
    NOTHING_MORE,
    CategoryCounts,
    Deadline,
    FetchResult,
    Item,
    ItemTally,
    SourceSettings,
    StrictModel,
    Wanted,
    parse_time,
    value_of,
    web_link,
)


class FileSettings(SourceSettings):
    """``type: file``: a CSV (with a header row) or a JSON list of records."""

    type: Literal["file"]
    path: str
    format: Literal["csv", "json"] | None = None


def _text_or_texts(value: Any) -> str | list[str]:
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return value
    raise ValueError(f"expected a text or a list of texts, got {value!r} (quote numbers and dates: '1')")


class FileQuery(StrictModel):
    """Which records count: each key a field, each value one allowed value or a list."""

    where: dict[str, Annotated[str | list[str], PlainValidator(_text_or_texts)]] = Field(default_factory=dict)
    title: str | None = None
    created: str | None = None
    link: str | None = None
    closed_at: str | None = None
    """The column saying when a record was closed (ISO 8601; empty while open): a closed KPI needs it."""
    value: str | None = None
    """The column holding a value KPI's number (the last matching record's)."""
    left: dict[str, Annotated[str | list[str], PlainValidator(_text_or_texts)]] | None = None
    """A count KPI with ``closed_at``: what its records are once closed (``{team: customer, status: Closed}``),
    so the card also says how many were closed since the last post."""

    @property
    def item_columns(self) -> tuple[str, ...]:
        """The optional columns this query names."""
        return tuple(c for c in (self.title, self.created, self.link, self.closed_at, self.value) if c)

    def unfit_for(self, kind: str) -> str | None:
        """Why this query cannot measure ``kind``: the column it lacks (None when it can)."""
        needs = {
            "closed": ("closed_at", self.closed_at),
            "aged": ("created", self.created),
            "value": ("value", self.value),
        }
        key, given = needs.get(kind, ("", "-"))
        article = "an" if kind == "aged" else "a"
        return None if given else f"{article} {kind} KPI on a file needs count.{key}: the column it reads"


class FileSource:
    """Counts records of a local file, re-read on every fetch."""

    Settings: ClassVar[type[SourceSettings]] = FileSettings
    Query: ClassVar[type[StrictModel]] = FileQuery
    service: ClassVar[str] = "The issues file"

    def __init__(self, name: str, settings: FileSettings, base_dir: Path) -> None:
        self.name = name
        self.path = base_dir / settings.path
        self.format = settings.format or ("json" if self.path.suffix.lower() == ".json" else "csv")

    def fetch(self, query: FileQuery, category: str, deadline: Deadline, wanted: Wanted = NOTHING_MORE) -> FetchResult:
        """Count matching records by ``category`` (empty values count as ``(none)``); list, date and
        count new items from the optional columns."""
        columns, records = self._read()
        allowed_values = {field: [v] if isinstance(v, str) else v for field, v in query.where.items()}
        needed = (*allowed_values, *((category,) if category else ()), *query.item_columns, *(query.left or {}))
        if columns is not None and (missing := [f for f in needed if f not in columns]):
            raise SourceQueryError(
                f"{self.path.name} has no column {missing[0]!r} (its header: {', '.join(columns) or 'empty'}); "
                "the KPI's where and category name it"
            )
        counts = CategoryCounts()
        tally = ItemTally(wanted, dated=query.created is not None)
        last: tuple[int, dict[str, object]] | None = None
        left = self._left(query, wanted)
        closed_since = 0
        for number, record in enumerate(records, start=1):
            missing = [f for f in needed if f not in record]
            if missing:
                raise SourceQueryError(f"{self.path.name}: record {number} has no field {missing[0]!r}")
            if left is not None and all(str(record[f]) in allowed for f, allowed in left.items()):
                closed = self._time(query.closed_at or "", record, number)
                closed_since += closed is not None and wanted.since is not None and closed > wanted.since
            if not all(str(record[f]) in allowed for f, allowed in allowed_values.items()):
                continue
            last = (number, record)
            if wanted.kind == "value":
                continue
            item = self._item(query, record, counts.name(record[category]), number)
            closed = self._time(query.closed_at, record, number) if query.closed_at else None
            if wanted.keeps(item.created, closed):
                counts.add(record[category])
                tally.add(item)
        if wanted.kind == "value":
            return FetchResult(counts={}, plan="read file", calls=1, value=self._value(query, last))
        result = tally.result(counts.counts, "read file", 1, {})
        return result if left is None else replace(result, closed_since=closed_since)

    @staticmethod
    def _left(query: FileQuery, wanted: Wanted) -> dict[str, list[str]] | None:
        """The ``left`` condition as allowed values per field, when a count KPI's card asks what was closed."""
        if query.left is None or query.closed_at is None or wanted.kind != "count" or wanted.since is None:
            return None
        return {field: [v] if isinstance(v, str) else v for field, v in query.left.items()}

    def _value(self, query: FileQuery, last: tuple[int, dict[str, object]] | None) -> float:
        """The value column of the last matching record, as a number."""
        if last is None or not query.value:
            raise SourceDataError(f"{self.path.name}: no record matches the KPI's where, so there is no value")
        number, record = last
        found = record[query.value]
        if self.format == "csv" and isinstance(found, str):  # a CSV cell is text: a JSON file's must be a number
            with contextlib.suppress(ValueError):
                found = float(found) if found.strip() else None
        return value_of(found, f"{self.path.name}: record {number}'s {query.value} is")

    def _time(self, column: str, record: dict[str, object], number: int) -> datetime | None:
        try:
            return parse_time(record[column])
        except ValueError:
            raise SourceDataError(
                f"{self.path.name}: record {number} has {column} {str(record[column])[:40]!r}, "
                "not an ISO 8601 date or time (2026-11-20 or 2026-11-20T10:00:00Z)"
            ) from None

    def _item(self, query: FileQuery, record: dict[str, object], category: str, number: int) -> Item:
        moment = self._time(query.created, record, number) if query.created else None
        title = str(record[query.title]).strip() if query.title else ""
        link = web_link(record[query.link]) if query.link else None
        return Item(title=title, category=category, created=moment, link=link)

    def check(self, deadline: Deadline) -> str:
        """Read the file once."""
        return f"{self.path.name}: {len(self._read()[1])} records"

    def _read(self) -> tuple[list[str] | None, list[dict[str, object]]]:
        """The CSV header (None for JSON) and the records."""
        try:
            text = self.path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise SourceUnavailable(f"cannot read {self.path.name}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise SourceDataError(f"{self.path.name} is not UTF-8 text") from None
        if not text.strip():
            raise SourceDataError(
                f"{self.path.name} is empty; expected "
                + ("a header row (and a row per record)" if self.format == "csv" else "a JSON list of records")
            )
        if self.format == "csv":
            reader = csv.DictReader(text.splitlines())
            records: list[dict[str, object]] = list(reader)
            return list(reader.fieldnames or ()), records
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SourceDataError(f"{self.path.name} is not valid JSON (line {exc.lineno})") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise SourceDataError(f"{self.path.name} must hold a JSON list of records")
        return None, data
