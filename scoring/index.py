"""The KPI index: Σ weight × count (or a value as it is), judged against a target and a warning level."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

SPARK_BLOCKS = "▁▂▃▄▅▆▇█"
VALUE = "value"
"""The key of a value KPI's one number in its measure (a value KPI has no categories)."""
SPARK_GAP = "·"
"""Drawn for a day without a value, so a gap never looks like a repeated value."""


class Status(StrEnum):
    """How a KPI (or a team) stands; ``UNKNOWN`` when there is no data."""

    GOOD = "good"
    WARNING = "warning"
    BAD = "bad"
    UNKNOWN = "unknown"


_SEVERITY = {Status.GOOD: 0, Status.WARNING: 1, Status.BAD: 2, Status.UNKNOWN: 3}


class Trend(StrEnum):
    """What a change means for a KPI, whichever way it points: better, worse, or the same."""

    BETTER = "better"
    WORSE = "worse"
    SAME = "same"


def trend_of(change: float, lower_is_better: bool) -> Trend:
    """Whether ``change`` (new minus old) made the KPI better or worse, by its direction."""
    if not change:
        return Trend.SAME
    return Trend.BETTER if (change < 0) == lower_is_better else Trend.WORSE


@dataclass(frozen=True)
class KpiRule:
    """How a KPI is weighed and judged."""

    weights: Mapping[str, float]
    target: float
    warning: float
    lower_is_better: bool = True
    value: bool = False
    """Whether the KPI is one number (its measure's `VALUE`), not items weighed by category."""


@dataclass(frozen=True)
class CategoryLine:
    """One category of the breakdown; ``weight`` is None when unweighted."""

    category: str
    count: int
    weight: float | None

    @property
    def points(self) -> float:
        """This category's part of the index (0 when unweighted)."""
        return self.count * (self.weight or 0)


@dataclass(frozen=True)
class KpiScore:
    """A scored KPI: index, status, breakdown, change and trend.

    ``change`` is against the previous value the caller chose (the last post,
    or the previous day), ``week_change`` against the value a week earlier;
    ``sparkline`` draws the daily values given ("" with fewer than two), and
    ``spark_change`` is its last value minus its first; `trend` says what a change
    means by the KPI's direction.
    """

    index: float
    status: Status
    breakdown: tuple[CategoryLine, ...]
    change: float | None
    sparkline: str
    week_change: float | None = None
    spark_change: float | None = None
    lower_is_better: bool = True

    def trend(self, change: float) -> Trend:
        """Whether ``change`` made this KPI better or worse."""
        return trend_of(change, self.lower_is_better)

    @property
    def total_count(self) -> int:
        """How many items were counted, weighted or not."""
        return sum(line.count for line in self.breakdown)

    @property
    def unweighted(self) -> tuple[CategoryLine, ...]:
        """Categories present in the data but absent from the weights."""
        return tuple(line for line in self.breakdown if line.weight is None)


def score_kpi(
    counts: Mapping[str, float],
    rule: KpiRule,
    previous: float | None = None,
    days: Sequence[float | None] = (),
    week_ago: float | None = None,
) -> KpiScore:
    """Score ``counts``; ``previous`` and ``week_ago`` give the changes, ``days`` (one value a day,
    oldest first, None for a day without one) the sparkline. A value KPI's ``counts`` is ``{VALUE: number}``
    and its breakdown is empty."""
    if rule.value:
        weighted, extra = [], []
    else:
        weighted = [CategoryLine(c, int(counts.get(c, 0)), w) for c, w in sorted(rule.weights.items(), key=_heaviest)]
        extra = [CategoryLine(c, int(n), None) for c, n in sorted(counts.items()) if c not in rule.weights and n]
    index = index_of(counts, rule)
    return KpiScore(
        index=index,
        status=judge(index, rule),
        breakdown=tuple(weighted + extra),
        change=None if previous is None else index - previous,
        sparkline=sparkline(days),
        week_change=None if week_ago is None else index - week_ago,
        spark_change=_spark_change(days),
        lower_is_better=rule.lower_is_better,
    )


def _spark_change(values: Sequence[float | None], width: int = 14) -> float | None:
    """The sparkline's last value minus its first (None with fewer than two values)."""
    known = [v for v in list(values)[-width:] if v is not None]
    return known[-1] - known[0] if len(known) >= 2 else None


def index_of(counts: Mapping[str, float], rule: KpiRule) -> float:
    """The index of ``counts`` alone, as `score_kpi` gives it (for past readings a card compares with)."""
    if rule.value:
        return float(counts[VALUE])
    return sum(counts.get(c, 0) * (w or 0) for c, w in sorted(rule.weights.items(), key=_heaviest))


def _heaviest(item: tuple[str, float]) -> tuple[float, str]:
    return (-item[1], item[0])


def judge(index: float, rule: KpiRule) -> Status:
    """Good at or past the target, warning up to the warning level, bad beyond it."""
    if rule.lower_is_better:
        if index <= rule.target:
            return Status.GOOD
        return Status.WARNING if index <= rule.warning else Status.BAD
    if index >= rule.target:
        return Status.GOOD
    return Status.WARNING if index >= rule.warning else Status.BAD


def worst_status(statuses: Sequence[Status]) -> Status:
    """The most severe of ``statuses`` (UNKNOWN outranks BAD); GOOD when empty."""
    return max(statuses, key=_SEVERITY.__getitem__, default=Status.GOOD)


def sparkline(values: Sequence[float | None], width: int = 14) -> str:
    """The last ``width`` values as unicode blocks, a gap mark for None; empty for fewer than two values."""
    recent = list(values)[-width:]
    known = [v for v in recent if v is not None]
    if len(known) < 2:
        return ""
    low, high = min(known), max(known)
    scale = (len(SPARK_BLOCKS) - 1) / (high - low) if high > low else 0
    return "".join(SPARK_GAP if v is None else SPARK_BLOCKS[round((v - low) * scale)] for v in recent)
