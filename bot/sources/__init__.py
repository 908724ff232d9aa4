"""Data source types, by the ``type`` name used in the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.sources.base import (
    Deadline,
    FetchResult,
    Finish,
    Item,
    RemembersRows,
    ScanPlan,
    ScansTogether,
    Source,
    SourceSettings,
    Wanted,
    fold_onto,
    with_categories_of,
)
from bot.sources.file import FileSource
from bot.sources.http import HttpSource
from bot.sources.vtiger import VtigerSource

SOURCE_TYPES: dict[str, Any] = {
    "file": FileSource,
    "http": HttpSource,
    "vtiger": VtigerSource,
}


def build_source(name: str, settings: SourceSettings, base_dir: Path) -> Source:
    """A ready source for the validated ``settings`` of the source called ``name``."""
    source_type = SOURCE_TYPES[settings.type]
    source: Source = source_type(name=name, settings=settings, base_dir=base_dir)
    return source


__all__ = [
    "SOURCE_TYPES",
    "Deadline",
    "FetchResult",
    "Finish",
    "Item",
    "RemembersRows",
    "ScanPlan",
    "ScansTogether",
    "Source",
    "Wanted",
    "build_source",
    "fold_onto",
    "with_categories_of",
]
