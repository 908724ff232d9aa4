"""Signed chart URLs: ``/charts/<team>/<date>.png?[kpi=…&]exp=…&sig=…``.

``sig`` is an HMAC-SHA256, keyed with ``charts.secret``, over the team, the
date, the KPI (empty for a one-KPI team's chart) and the expiry (Unix seconds).
A link made at any time of a day expires at the same moment (UTC midnight
after ``charts.link_days`` days), so a day's cards share one URL and Chat's
image proxy can keep fetching it long after the post.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from bot.config import Config, TeamConfig
from bot.errors import VerificationError

STATUS_LINK_LIFETIME = timedelta(days=1)
"""How long the chart links on the status page stay valid."""


class ChartLinkError(VerificationError):
    """A chart URL whose signature is missing, wrong or expired (answer 403)."""


def sign(secret: str, team_id: str, day: date, kpi_id: str, expires: int) -> str:
    """The signature of one chart URL (URL-safe base64, no padding)."""
    message = f"{team_id}\n{day.isoformat()}\n{kpi_id}\n{expires}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def check(
    secret: str, team_id: str, day: date, kpi_id: str, expires: str | None, sig: str | None, now: datetime
) -> None:
    """Raise `ChartLinkError` unless ``sig`` signs this chart and ``expires`` is not past ``now``."""
    if not expires or not sig:
        raise ChartLinkError("missing exp or sig")
    if not expires.isdigit() or len(expires) > 12:
        raise ChartLinkError("exp is not a Unix time")
    if not hmac.compare_digest(sign(secret, team_id, day, kpi_id, int(expires)), sig):
        raise ChartLinkError("wrong signature")
    if int(expires) < now.timestamp():
        raise ChartLinkError("link expired")


def link_expiry(now: datetime, lifetime: timedelta) -> int:
    """The expiry of links made at ``now``: the UTC midnight after ``now`` + ``lifetime``, in Unix seconds."""
    end = datetime.combine((now.astimezone(UTC) + lifetime).date() + timedelta(days=1), time(0), UTC)
    return int(end.timestamp())


def chart_path(secret: str, team_id: str, day: date, kpi_id: str, expires: int) -> str:
    """The signed path (with query) of one chart."""
    query = {"kpi": kpi_id} if kpi_id else {}
    query |= {"exp": str(expires), "sig": sign(secret, team_id, day, kpi_id, expires)}
    return f"/charts/{team_id}/{day.isoformat()}.png?{urlencode(query)}"


def kpi_param(team: TeamConfig, kpi_id: str) -> str:
    """The KPI part of a team's chart URL: empty for a one-KPI team (its chart is the team's)."""
    return "" if len(team.kpis) == 1 else kpi_id


def chart_paths(config: Config, team: TeamConfig, now: datetime, lifetime: timedelta) -> Mapping[str, str]:
    """Signed paths of the team's charts for the local day of ``now``, by KPI id; empty when charts are off."""
    if config.charts.secret is None:
        return {}
    secret = config.charts.secret.get_secret_value()
    day = now.astimezone(config.zone(team)).date()
    expires = link_expiry(now, lifetime)
    return {kpi.id: chart_path(secret, team.id, day, kpi_param(team, kpi.id), expires) for kpi in team.kpis}


def card_images(config: Config, team: TeamConfig, now: datetime) -> Mapping[str, str]:
    """The chart image URLs for a team's card, by KPI id: empty unless ``public_url`` and a secret are set."""
    if not config.public_url:
        return {}
    paths = chart_paths(config, team, now, timedelta(days=config.charts.link_days))
    return {kpi_id: config.public_url + path for kpi_id, path in paths.items()}
