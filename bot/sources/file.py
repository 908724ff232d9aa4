"""The ``file`` source: issues in a local CSV or JSON file (the demo's source)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from bot.errors import SourceDataError, SourceQueryError, SourceUnavailable
from bot.sources.base import NO_CATEGORY, Deadline, FetchResult, SourceSettings, StrictModel


class FileSettings(SourceSettings):
    """``type: file``: a CSV (with a header row) or a JSON list of records."""

    type: Literal["file"]
    path: str
    format: Literal["csv", "json"] | None = None


class FileQuery(StrictModel):
    """Which records count: each key a field, each value one allowed value or a list."""

    where: dict[str, str | list[str]] = Field(default_factory=dict)


class FileSource:
    """Counts records of a local file, re-read on every fetch."""

    Settings: ClassVar[type[SourceSettings]] = FileSettings
    Query: ClassVar[type[StrictModel]] = FileQuery
    service: ClassVar[str] = "The issues file"

    def __init__(self, name: str, settings: FileSettings, base_dir: Path) -> None:
        self.name = name
        self.path = base_dir / settings.path
        self.format = settings.format or ("json" if self.path.suffix.lower() == ".json" else "csv")

    def fetch(self, query: FileQuery, category: str, deadline: Deadline) -> FetchResult:
        """Count matching records by ``category``; empty values count as ``(none)``."""
        records = self._read()
        wanted = {field: [v] if isinstance(v, str) else v for field, v in query.where.items()}
        counts: Counter[str] = Counter()
        for number, record in enumerate(records, start=1):
            missing = [f for f in (*wanted, category) if f not in record]
            if missing:
                raise SourceQueryError(f"{self.path.name}: record {number} has no field {missing[0]!r}")
            if all(str(record[f]) in allowed for f, allowed in wanted.items()):
                counts[str(record[category] or "").strip() or NO_CATEGORY] += 1
        return FetchResult(counts=dict(counts), plan="read file", calls=1)

    def check(self, deadline: Deadline) -> str:
        """Read the file once."""
        return f"{self.path.name}: {len(self._read())} records"

    def _read(self) -> list[dict[str, object]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SourceUnavailable(f"cannot read {self.path.name}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise SourceDataError(f"{self.path.name} is not UTF-8 text") from None
        if self.format == "csv":
            return list(csv.DictReader(text.splitlines()))
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SourceDataError(f"{self.path.name} is not valid JSON (line {exc.lineno})") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise SourceDataError(f"{self.path.name} must hold a JSON list of records")
        return data
