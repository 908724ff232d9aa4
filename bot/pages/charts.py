"""``GET /charts/<team>/<date>.png?[kpi=…&]exp=…&sig=…``: a KPI's trend chart, for Chat's image proxy.

A wrong, missing or expired signature (or a date that is not one) is answered
403 before anything else is looked at; a well-signed link to a team or KPI that
is no longer configured, or to a future date, 404. Charts are rendered once per team, KPI, day
and data: a burst of views of one card renders one PNG (`ChartCache`).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import date, datetime

from flask import Blueprint, Response, abort, request
from werkzeug.exceptions import NotFound

from bot.chart_links import ChartLinkError, check
from bot.config import Config, TeamConfig
from bot.context import Services
from bot.pages.chart import ChartSpec, render_png
from bot.pages.series import day_end, points, team_series

log = logging.getLogger(__name__)
CACHE_ENTRIES = 512
"""Rendered charts kept in memory (about 16 KB each)."""


class ChartCache:
    """Rendered PNGs by key; one render per key even when many requests ask at once."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self.entries = entries
        self.renders = 0
        self._lock = threading.Lock()
        self._pngs: OrderedDict[Hashable, bytes] = OrderedDict()

    def get(self, key: Hashable, render: Callable[[], bytes]) -> bytes:
        """The PNG for ``key``, rendered by ``render`` the first time."""
        with self._lock:
            png = self._pngs.get(key)
            if png is None:
                png = render()
                self.renders += 1
                self._pngs[key] = png
                if len(self._pngs) > self.entries:
                    self._pngs.popitem(last=False)
            else:
                self._pngs.move_to_end(key)
            return png


def chart_png(services: Services, cache: ChartCache, team: TeamConfig, kpi_id: str, day: date) -> bytes:
    """The chart of ``team``'s KPI for the local ``day`` (the last ``charts.days`` days up to it)."""
    config = services.config
    zone = config.zone(team)
    kpi = next(k for k in team.kpis if k.id == kpi_id)
    series = team_series(services.store, team, zone, config.charts.days, day_end(day, zone, services.clock()))
    values = points(team, kpi_id, series[kpi_id])
    spec = ChartSpec(kpi.name, tuple(values), kpi.target, kpi.warning, kpi.lower_is_better)
    return cache.get((team.id, kpi_id, day, spec), lambda: render_png(spec))


def create_charts_blueprint(services: Services, cache: ChartCache | None = None) -> Blueprint | None:
    """The blueprint serving signed chart URLs, or None (with one warning) when ``charts.secret`` is not set."""
    config = services.config
    if config.charts.secret is None:
        log.warning("charts are off: charts.secret is not set (cards show the text sparkline)")
        return None
    secret = config.charts.secret.get_secret_value()
    charts = cache or ChartCache()
    blueprint = Blueprint("charts", __name__)

    @blueprint.get("/charts/<team_id>/<day_text>.png")
    def chart(team_id: str, day_text: str) -> Response:
        kpi_param = request.args.get("kpi", "")
        now = services.clock()
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            day = None
        try:
            if day is None:
                raise ChartLinkError("not a date")
            check(secret, team_id, day, kpi_param, request.args.get("exp"), request.args.get("sig"), now)
        except ChartLinkError as exc:
            log.warning("GET /charts/%s/%s.png refused: %s", team_id, day_text, exc)
            abort(403)
        team, kpi_id = _chart_of(config, team_id, kpi_param, day, now)
        png = chart_png(services, charts, team, kpi_id, day)
        response = Response(png, mimetype="image/png")
        today = now.astimezone(config.zone(team)).date()
        response.headers["Cache-Control"] = "public, max-age=" + ("86400" if day < today else "300")
        return response

    return blueprint


def _chart_of(config: Config, team_id: str, kpi_param: str, day: date, now: datetime) -> tuple[TeamConfig, str]:
    """The team and KPI a well-signed link names; 404 when they are gone or the day is in the future."""
    team = config.team(team_id)
    if team is None:
        log.warning("GET /charts/%s: no such team (removed from the config?)", team_id)
        raise NotFound()
    if day > now.astimezone(config.zone(team)).date():
        raise NotFound()
    if not kpi_param and len(team.kpis) == 1:
        return team, team.kpis[0].id
    if any(k.id == kpi_param for k in team.kpis):
        return team, kpi_param
    log.warning("GET /charts/%s: no KPI %r", team_id, kpi_param)
    raise NotFound()
