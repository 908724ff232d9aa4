"""Pure scoring: category counts in, a KPI index and its judgement out.

No I/O, no clock, no Flask: every function here is a plain function of its
arguments.
"""

from scoring.index import (
    VALUE,
    CategoryLine,
    KpiRule,
    KpiScore,
    Status,
    Trend,
    index_of,
    score_kpi,
    sparkline,
    trend_of,
    worst_status,
)

__all__ = [
    "VALUE",
    "CategoryLine",
    "KpiRule",
    "KpiScore",
    "Status",
    "Trend",
    "index_of",
    "score_kpi",
    "sparkline",
    "trend_of",
    "worst_status",
]
