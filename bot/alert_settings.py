"""The ``alerts`` settings: defaults at the top level of the configuration, a block per team.

A team alerts only if it has its own ``alerts`` block (``alerts: {}`` takes
every default); the top-level ``alerts`` block only changes the defaults. A
team's block is laid over the top-level one key by key (`merged`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, field_validator, model_validator

from bot.sources.base import StrictModel

_DURATION = re.compile(r"(\d+)\s*([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
MIN_CHECK_EVERY = timedelta(minutes=1)
MAX_CHECK_EVERY = timedelta(days=1)
Level = Literal["warning", "bad"]


def parse_duration(value: Any) -> timedelta:
    """``15m``, ``2h``, ``1d``, ``90s`` or ``0`` as a timedelta; ValueError naming the accepted forms."""
    if isinstance(value, timedelta):
        return value
    if value == 0 or value == "0":
        return timedelta(0)
    match = _DURATION.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{value!r} is not a duration: write a number and a unit, e.g. 90s, 15m, 2h, 1d (or 0)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def format_duration(value: timedelta) -> str:
    """A duration as the configuration writes it (``15m``, ``1d``; ``0``)."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s" if seconds else "0"


Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration)]


@dataclass(frozen=True)
class QuietHours:
    """A daily window in the team's zone, ``start`` included, ``end`` excluded; it may run past midnight."""

    start: time
    end: time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_quiet_hours(value: Any) -> QuietHours | None:
    """``"20:00-08:00"`` as `QuietHours`; None or ``off`` (YAML: false) for none."""
    if value is None or value is False or value == "off":
        return None
    if isinstance(value, QuietHours):
        return value
    start, dash, end = value.partition("-") if isinstance(value, str) else ("", "", "")
    clocks = [_CLOCK.fullmatch(part.strip()) for part in (start, end)]
    if not dash or not all(clocks):
        raise ValueError(f'{value!r} is not a time window: write it as HH:MM-HH:MM, e.g. "20:00-08:00", or off')
    first, last = (time(int(m.group(1)), int(m.group(2))) for m in clocks if m)
    if first == last:
        raise ValueError(f"{value!r} starts and ends at the same time: leave quiet_hours out for none")
    return QuietHours(first, last)


Quiet = Annotated[QuietHours | None, BeforeValidator(parse_quiet_hours), PlainSerializer(lambda q: q and str(q))]


class AlertSettings(StrictModel):
    """When a team hears about its KPIs between scheduled posts (see the alerts documentation)."""

    check_every: Duration = timedelta(minutes=15)
    """How often a tick reads and evaluates the team's KPIs."""
    on: list[Level] = Field(default=["bad"], min_length=1)
    """The statuses whose crossing alerts."""
    pending: int = Field(default=2, ge=1, le=100)
    """Consecutive checks in the worse status before an alert fires."""
    recover_at: Literal["target", "warning"] | float = "target"
    """A firing alert resolves only at or better than this: the target, the warning level, or an index."""
    repeat: Duration = timedelta(days=1)
    """Remind while still firing this long after the last notice (0: never); whole days keep the local time."""
    quiet_hours: Quiet = None
    """Notices falling due inside are held and sent, folded into one message, at the end."""
    new_items: list[str] = Field(default_factory=list)
    """Categories whose new open items alert once each."""
    no_data_after: int = Field(default=3, ge=1, le=1000)
    """Consecutive failed checks before one "cannot read" notice."""

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data: Any) -> Any:
        # YAML 1.1 reads a bare `on` key as true (and `off` as false).
        if isinstance(data, dict) and True in data:
            data = {("on" if key is True else key): value for key, value in data.items()}
        return data

    @field_validator("check_every")
    @classmethod
    def _check_every_range(cls, value: timedelta) -> timedelta:
        if not MIN_CHECK_EVERY <= value <= MAX_CHECK_EVERY:
            raise ValueError(f"must be from 1m to 1d (got {format_duration(value)})")
        return value

    @field_validator("on")
    @classmethod
    def _no_repeated_level(cls, value: list[Level]) -> list[Level]:
        if len(set(value)) != len(value):
            raise ValueError(f"a status is named twice in {value}")
        return value

    @field_validator("recover_at", mode="before")
    @classmethod
    def _recover_word(cls, value: Any) -> Any:
        if value in ("target", "warning") or (isinstance(value, int | float) and not isinstance(value, bool)):
            return value
        raise ValueError(f"{value!r}: write target, warning or an index value")

    @field_validator("new_items")
    @classmethod
    def _categories_named(cls, value: list[str]) -> list[str]:
        if any(not item.strip() for item in value):
            raise ValueError("a category name cannot be empty")
        return value

    @model_validator(mode="after")
    def _recovery_above_the_line(self) -> AlertSettings:
        if self.recover_at == "warning" and "warning" in self.on:
            raise ValueError(
                "recover_at: warning cannot end an alert on warning (it would still be in warning): "
                "use recover_at: target, or on: [bad]"
            )
        if self.repeat and self.repeat < self.check_every:
            raise ValueError(
                f"repeat ({format_duration(self.repeat)}) is shorter than check_every "
                f"({format_duration(self.check_every)}): use 0 for no reminders or a longer repeat"
            )
        return self

    @property
    def alert_on_warning(self) -> bool:
        """Whether crossing into warning already alerts (else only bad does)."""
        return "warning" in self.on


def merged(defaults: AlertSettings | None, team: AlertSettings) -> AlertSettings:
    """The team's block laid over the top-level defaults, key by key, validated again as a whole."""
    base = defaults.model_dump(exclude_unset=True) if defaults else {}
    return AlertSettings.model_validate(base | team.model_dump(exclude_unset=True))
