"""A team's own message text (Jinja2) and thread keys, checked at start.

``template`` (Jinja2, sandboxed, undefined names are errors) replaces the
message's plain-text part; the card stays the formatter's. Its variables:

    team      {id, name, status, crm_url}
    kpis      a list of KPIs, each {id, name, index, target, warning, status,
              change (vs the last post, else an earlier day), week_change (vs
              7 days ago, once there is such history), breakdown: [{category,
              count, weight, points}],
              stale (the reason, or None), as_of, crm_url}
    kpi       the same KPIs by id: {{ kpi["open-issues"].index }}
    crm_url   the team's CRM link (else the first KPI's), or None
    slot      the slot's local time, "2026-11-09 10:00"
    date      the slot's local date, "2026-11-09"
    stale     whether any KPI could not be read now

At start a template may use no other name, and must render for sample
reports in every state (all good, warning, bad, stale, no data yet), so a
typo in a branch taken only on a bad day is caught then, not at 10:00.

A webhook or Chat API target's ``thread`` is a Python format string over
``team``, ``date``, ``month`` ("2026-11"), ``iso_year``, ``week`` ("46") and
``iso_week`` ("2026-W46"), e.g. "{team}-{iso_week}": one thread a week.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, Template, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from bot.config import Config, LogTarget, TeamConfig
from bot.errors import ConfigError
from bot.reports import KpiReport, TeamReport, rule_of
from scoring import Status, score_kpi

log = logging.getLogger(__name__)

# Chat's text is not HTML: nothing to escape.
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True)
SAMPLE_SLOT = datetime(2026, 1, 5, 10, 0)
NAMES = frozenset({"team", "kpis", "kpi", "crm_url", "slot", "date", "stale"})
"""The names `template_context` gives a template."""
SAMPLE_STATES = ("good", "warning", "bad", "stale", "no data")


@lru_cache(maxsize=128)
def _compiled(source: str) -> Template:
    return _ENV.from_string(source)


def template_context(report: TeamReport, slot_local: datetime) -> dict[str, Any]:
    """The variables a team's template sees for ``report`` at a slot (local time)."""
    team = report.team
    kpis = [_kpi_context(k) for k in report.kpis]
    crm_url = team.crm_url or next((k.kpi.crm_url for k in report.kpis if k.kpi.crm_url), None)
    return {
        "team": {"id": team.id, "name": team.name, "status": report.status.value, "crm_url": crm_url},
        "kpis": kpis,
        "kpi": {k["id"]: k for k in kpis},
        "crm_url": crm_url,
        "slot": f"{slot_local:%Y-%m-%d %H:%M}",
        "date": f"{slot_local:%Y-%m-%d}",
        "stale": not report.fresh,
    }


def _kpi_context(report: KpiReport) -> dict[str, Any]:
    kpi, score = report.kpi, report.score
    return {
        "id": kpi.id,
        "name": kpi.name,
        "index": _number(score.index) if score else None,
        "target": _number(kpi.target),
        "warning": _number(kpi.warning),
        "status": report.status.value,
        "change": _number(score.change) if score else None,
        "week_change": _number(score.week_change) if score else None,
        "breakdown": [
            {"category": b.category, "count": b.count, "weight": _number(b.weight), "points": _number(b.points)}
            for b in (score.breakdown if score else ())
        ],
        "stale": report.stale_reason,
        "as_of": report.as_of.isoformat() if report.as_of else None,
        "crm_url": kpi.crm_url,
    }


def _number(value: float | None) -> float | int | None:
    """Whole numbers as ints, so a template prints 11 rather than 11.0."""
    return int(value) if value is not None and float(value).is_integer() else value


def render_text(team: TeamConfig, report: TeamReport, slot_local: datetime) -> str | None:
    """The team's template rendered for ``report``; None without a template or if it fails now."""
    if not team.template:
        return None
    try:
        return _compiled(team.template).render(template_context(report, slot_local)).strip()
    except (TemplateError, TypeError, ValueError, ArithmeticError) as exc:
        # Checked at start against a sample; real data (e.g. a KPI without data) can still trip it.
        log.warning("team %s: template failed (%s: %s); using the default text", team.id, type(exc).__name__, exc)
        return None


def thread_key(template: str, team_id: str, slot_local: datetime) -> str:
    """A thread key from a ``thread`` format string, for a slot's local time."""
    year, week, _ = slot_local.isocalendar()
    values = {
        "team": team_id,
        "date": f"{slot_local:%Y-%m-%d}",
        "month": f"{slot_local:%Y-%m}",
        "iso_year": str(year),
        "week": f"{week:02d}",
        "iso_week": f"{year}-W{week:02d}",
    }
    return template.format_map(values)


def sample_report(team: TeamConfig, zone: ZoneInfo, state: str = "good") -> TeamReport:
    """A made-up report for ``team`` with every KPI in ``state`` (one of `SAMPLE_STATES`), to check its template."""
    generated = SAMPLE_SLOT.replace(tzinfo=zone)
    kpis = []
    for kpi in team.kpis:
        score = score_kpi(
            dict.fromkeys(kpi.weights, 1), rule_of(kpi), previous=kpi.target, days=[kpi.target, 1], week_ago=kpi.target
        )
        report = KpiReport(kpi=kpi, score=score, as_of=generated)
        if state in ("good", "warning", "bad"):
            report = dataclasses.replace(report, score=dataclasses.replace(score, status=Status(state)))
        elif state == "stale":
            report = dataclasses.replace(report, as_of=generated - timedelta(hours=1), stale_reason="source down")
        else:
            report = KpiReport(kpi=kpi, score=None, as_of=None, stale_reason="no data yet")
        kpis.append(report)
    return TeamReport(team=team, kpis=tuple(kpis), generated_at=generated, zone=zone.key)


def _check_names(source: str) -> None:
    """Raise `TemplateError` if ``source`` uses a name the context does not give (in any branch)."""
    unknown = meta.find_undeclared_variables(_ENV.parse(source)) - NAMES - set(_ENV.globals)
    if unknown:
        names = ", ".join(map(repr, sorted(unknown)))
        raise TemplateError(f"unknown name {names} (known: {', '.join(sorted(NAMES))})")


def validate_templates(config: Config) -> None:
    """Check every team's template (names, and a render per sample state) and thread key.

    Raises `ConfigError` naming the key.
    """
    file = config.path or "config"
    for i, team in enumerate(config.teams):
        zone = config.zone(team)
        if team.template:
            state = None
            try:
                _check_names(team.template)
                for state in SAMPLE_STATES:
                    _compiled(team.template).render(template_context(sample_report(team, zone, state), SAMPLE_SLOT))
            except (TemplateError, TypeError, ValueError, ArithmeticError) as exc:
                sample = f" (sample report: {state})" if state else ""
                raise ConfigError(f"{file}: teams[{i}].template: {_describe(exc)}{sample}") from None
        for j, target in enumerate(team.deliver):
            if isinstance(target, LogTarget) or not target.thread:
                continue
            try:
                thread_key(target.thread, team.id, SAMPLE_SLOT)
            except (KeyError, IndexError, ValueError, AttributeError) as exc:
                raise ConfigError(
                    f"{file}: teams[{i}].deliver[{j}].thread: bad thread key template ({type(exc).__name__}: {exc});"
                    " known names: team, date, month, iso_year, week, iso_week"
                ) from None


def _describe(exc: Exception) -> str:
    line = getattr(exc, "lineno", None)
    where = f" (line {line})" if line else ""
    return f"{type(exc).__name__}{where}: {exc}"
