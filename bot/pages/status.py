"""``GET /status`` and ``GET /status/<team>``: every team's state, and one team's history, for whoever runs Scorebot.

Server-rendered HTML (Jinja2 templates beside this file, no script), built
from the store only: viewing it never reads a source. Access is decided by
``status.access`` (`bot.pages.access`); the page shows no secret: targets
are named by their Space, sources by name and type.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, render_template, request

from bot.alerts.status import Firing, firing_alerts
from bot.cards import value_text
from bot.chart_links import STATUS_LINK_LIFETIME, chart_paths
from bot.config import Config, TeamConfig
from bot.context import Services
from bot.delivery import target_key
from bot.google_tokens import CertCache, CertsUnavailable
from bot.pages.access import AccessDenied, check_access
from bot.pages.series import DaySeries, points, team_series
from bot.reports import measure, rule_of
from bot.slots import next_slots
from bot.store import CLAIMED, FAILED, PENDING, DeliveryRecord, Reading, SlotRun
from bot.team_settings import TeamSettings
from scoring import KpiScore, Status, score_kpi, worst_status

log = logging.getLogger(__name__)
PROBLEM_WINDOW = timedelta(days=7)
"""Failed and pending slots this recent are listed on the overview."""
POSTED_STATES = ("delivered", "failed", "skipped")
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class KpiLine:
    """One KPI on the status page."""

    name: str
    status: Status
    index: str
    change: str
    as_of: str
    trend: str
    """What the change means by the KPI's direction: "better", "worse" or "same" ("" without one)."""
    chart: str | None
    chart_alt: str


@dataclass(frozen=True)
class SlotLine:
    """One scheduled slot and what became of it."""

    slot: str
    state: str
    kind: str
    detail: str
    targets: str


@dataclass(frozen=True)
class TeamLine:
    """One team on the overview."""

    id: str
    name: str
    zone: str
    status: Status
    kpis: tuple[KpiLine, ...]
    last_post: SlotLine | None
    problems: tuple[SlotLine, ...]
    next_slot: str
    targets: str
    overrides: str = ""
    """The team's own settings over the file's, and who changed them last ("" if none)."""


@dataclass(frozen=True)
class SourceLine:
    """A source and its last successful read."""

    name: str
    type: str
    last_read: str
    kpis: int


@dataclass(frozen=True)
class HistoryRow:
    """One local day of a team's readings: per KPI, the day's last index and when and how it was read."""

    day: date
    cells: tuple[str, ...]


def local(moment: datetime, zone: ZoneInfo) -> str:
    """A moment as the team reads it: "Tue 2 Dec 10:00 EST"."""
    at = moment.astimezone(zone)
    return f"{at:%a} {at.day} {at:%b %H:%M %Z}"


def failure_kind(run: SlotRun, deliveries: Sequence[DeliveryRecord]) -> str:
    """Why a slot is not delivered, in a few words: rejected, delivery error, source down, in progress."""
    outcomes = {d.outcome for d in deliveries if d.slot == run.slot}
    if "rejected" in outcomes:
        return "rejected by the target"
    if "error" in outcomes:
        return "delivery error"
    if run.detail and run.detail.startswith(("could not refresh", "skipped", "posted stale")):
        return "source could not be read"
    if run.state == CLAIMED:
        return "being sent"
    return run.state


def overrides_text(current: TeamSettings, zone: ZoneInfo) -> str:
    """The team's own settings in one line: "own settings: schedule 0 10 * * *, kpis open (ana@example.com,
    Mon 7 Dec 09:58 UTC)"; ignored ones named as such; "" if it has none."""
    values = current.overrides.values
    if not values:
        return ""
    ignored = dict(current.ignored)
    parts = []
    for name, value in values.items():
        if name == "snooze":
            shown = f"until {local(datetime.fromisoformat(value['until']), zone)}"
        else:
            shown = value if isinstance(value, str) else json.dumps(value)
        parts.append(f"{name} {shown}" + (" (ignored)" if name in ignored else ""))
    by = current.overrides.changed_by
    when = local(current.overrides.changed_at, zone) if current.overrides.changed_at else ""
    return f"own settings: {', '.join(parts)} ({by}, {when})"


class StatusPages:
    """Builds what the templates show, from the configuration and the store."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.config: Config = services.config

    def overview(self, now: datetime) -> tuple[list[TeamLine], list[SourceLine]]:
        """Every team's line and every source's health."""
        latest: dict[tuple[str, str], Reading] = {}
        teams = []
        for team in (t.team for t in self.services.settings.teams()):
            readings = self.services.store.latest_readings(team.id)
            latest |= {(team.id, kpi_id): reading for kpi_id, reading in readings.items()}
            teams.append(self.team_line(team, now, readings))
        return teams, self._sources(latest)

    def firing(self) -> list[Firing]:
        """Every firing alert, worst first."""
        return firing_alerts(self.services.store, self.config)

    def team_line(self, team: TeamConfig, now: datetime, readings: Mapping[str, Reading] | None = None) -> TeamLine:
        """The team's line: status, KPIs with charts, last post, problems, next slot."""
        zone = self.config.zone(team)
        store = self.services.store
        if readings is None:
            readings = store.latest_readings(team.id)
        series = team_series(store, team, zone, self.config.charts.days, now)
        charts = chart_paths(self.config, team, now, STATUS_LINK_LIFETIME)
        kpis = tuple(
            self._kpi_line(team, kpi_id, readings.get(kpi_id), series[kpi_id], charts, zone) for kpi_id in series
        )
        runs = store.slot_runs(team.id, limit=200)
        deliveries = store.deliveries(team.id, limit=400)
        posted = next((r for r in runs if r.state in POSTED_STATES), None)
        recent = [r for r in runs if r.slot >= now - PROBLEM_WINDOW and r.state in (FAILED, PENDING, CLAIMED)]
        upcoming = next_slots(team.schedule, zone, now, 1) if team.schedule else []
        current = self.services.settings.team(team.id)
        snoozed = current is not None and current.snoozed(now) and current.snooze
        return TeamLine(
            id=team.id,
            name=team.name,
            zone=zone.key,
            status=worst_status([k.status for k in kpis]),
            kpis=kpis,
            last_post=self._slot_line(posted, deliveries, zone) if posted else None,
            problems=tuple(self._slot_line(r, deliveries, zone) for r in recent),
            next_slot=(
                f"snoozed until {local(snoozed.until, zone)}"
                if snoozed
                else local(upcoming[0], zone)
                if upcoming
                else "no schedule"
            ),
            targets=", ".join(target_key(t) for t in team.deliver) or "no targets",
            overrides=overrides_text(current, zone) if current else "",
        )

    def _kpi_line(
        self,
        team: TeamConfig,
        kpi_id: str,
        reading: Reading | None,
        series: DaySeries,
        charts: Mapping[str, str],
        zone: ZoneInfo,
    ) -> KpiLine:
        kpi = next(k for k in team.kpis if k.id == kpi_id)
        chart = charts.get(kpi_id)
        alt = f"{kpi.name}: the index day by day, last {len(series)} days"
        if reading is None:
            return KpiLine(kpi.name, Status.UNKNOWN, "no data yet", "", "never read", "", chart, alt)
        score = _score(reading, team, kpi_id)
        index = score.index
        unit = None if kpi.counted else kpi.unit
        today = reading.taken_at.astimezone(zone).date()
        earlier = [(d, v) for d, v in points(team, kpi_id, series) if v is not None and d < today]
        trend = ""
        if earlier:
            day, value = earlier[-1]
            change = f"{_delta(index - value, unit)} vs {day:%a} {day.day} {day:%b}"
            trend = score.trend(index - value).value
        else:
            change = "no earlier day in the chart"
        as_of = local(reading.taken_at, zone)
        return KpiLine(kpi.name, score.status, value_text(index, unit), change, as_of, trend, chart, alt)

    def _slot_line(self, run: SlotRun, deliveries: Sequence[DeliveryRecord], zone: ZoneInfo) -> SlotLine:
        mine = [d for d in deliveries if d.slot == run.slot]
        targets = "; ".join(f"{d.target}: {d.outcome}" for d in reversed(mine))
        kind = "" if run.state == "delivered" else failure_kind(run, deliveries)
        return SlotLine(local(run.slot, zone), run.state, kind, run.detail or "", targets)

    def _sources(self, latest: dict[tuple[str, str], Reading]) -> list[SourceLine]:
        zone = ZoneInfo(self.config.timezone)
        lines = []
        for name, settings in self.config.sources.items():
            kpis = [(team, kpi) for team in self.config.teams for kpi in team.kpis if kpi.source == name]
            times = [latest[(t.id, k.id)].taken_at for t, k in kpis if (t.id, k.id) in latest]
            last = local(max(times), zone) if times else "never"
            lines.append(SourceLine(name, settings.type, last, len(kpis)))
        return lines

    def history(self, team: TeamConfig, now: datetime) -> tuple[list[HistoryRow], list[SlotLine]]:
        """The team's daily readings (newest day first) and its recent slots with their deliveries."""
        zone = self.config.zone(team)
        series = team_series(self.services.store, team, zone, self.config.charts.days, now)
        rows = []
        days = [day for day, _ in next(iter(series.values()))]
        for i, day in reversed(list(enumerate(days))):
            cells = []
            for kpi in team.kpis:
                reading = series[kpi.id][i][1]
                if reading is None:
                    cells.append("—")
                    continue
                at = reading.taken_at.astimezone(zone)
                cells.append(f"{_num(_score(reading, team, kpi.id).index)} · {at:%H:%M} · {reading.origin}")
            rows.append(HistoryRow(day, tuple(cells)))
        store = self.services.store
        deliveries = store.deliveries(team.id, limit=400)
        posts = [self._slot_line(r, deliveries, zone) for r in store.slot_runs(team.id, limit=60)]
        return rows, posts


def _score(reading: Reading, team: TeamConfig, kpi_id: str) -> KpiScore:
    """The reading scored with today's weights and levels."""
    kpi = next(k for k in team.kpis if k.id == kpi_id)
    return score_kpi(measure(kpi, reading), rule_of(kpi))


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _delta(value: float, unit: str | None = None) -> str:
    if not value:
        return "= no change"
    return f"▲ +{value_text(value, unit)}" if value > 0 else f"▼ −{value_text(-value, unit)}"


def create_status_blueprint(services: Services, keys: CertCache | None = None) -> Blueprint:
    """The blueprint serving the status pages, behind ``status.access``."""
    settings = services.config.status
    iap_keys = keys or CertCache(settings.iap_keys_url)
    pages = StatusPages(services)
    blueprint = Blueprint("status", __name__, template_folder="templates")

    @blueprint.before_request
    def guard() -> Response | None:
        try:
            headers = {name.lower(): value for name, value in request.headers.items()}
            who = check_access(settings, request.remote_addr, headers, iap_keys)
        except CertsUnavailable as exc:
            log.error("GET %s: cannot check IAP assertions now: %s", request.path, exc)
            return _page("error.html", 503, message="Cannot check who you are right now; try again in a minute.")
        except AccessDenied as exc:
            log.warning("GET %s refused for %s: %s", request.path, request.remote_addr, exc)
            return _page("error.html", 403, message="Not allowed.")
        log.info("GET %s for %s", request.path, who)
        return None

    @blueprint.get("/status")
    def overview() -> Response:
        now = services.clock()
        teams, sources = pages.overview(now)
        zone = ZoneInfo(services.config.timezone)
        alerts = [(alert, local(alert.since, zone) if alert.since else "") for alert in pages.firing()]
        return _page("status.html", 200, teams=teams, sources=sources, alerts=alerts, now=local(now, zone))

    @blueprint.get("/status/<team_id>")
    def team_page(team_id: str) -> Response:
        team = services.team(team_id)
        if team is None:
            abort(404)
        now = services.clock()
        zone = services.config.zone(team)
        rows, posts = pages.history(team, now)
        names = [k.name for k in team.kpis]
        line = pages.team_line(team, now)
        return _page("team.html", 200, team=line, kpi_names=names, rows=rows, posts=posts, now=local(now, zone))

    return blueprint


def _page(template: str, status: int, **context: object) -> Response:
    response = Response(render_template(template, **context), status=status, mimetype="text/html")
    response.headers.update(SECURITY_HEADERS)
    return response
