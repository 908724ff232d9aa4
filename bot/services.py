"""The app's services, built once from the configuration and passed to handlers.

Time, the store and the sources come in from here, so tests replace them by
building Services with their own values rather than by patching.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from bot.config import Config, TeamConfig
from bot.errors import ConfigError
from bot.reports import Reporter, ScanShare, TeamReport
from bot.schedule.delivery import Delivery
from bot.schedule.templates import validate_templates
from bot.secrets import register
from bot.sources import Source, build_source
from bot.store import Store, resolve_url


def utc_now() -> datetime:
    """The current time in UTC (the production clock)."""
    return datetime.now(UTC)


@dataclass
class Services:
    """Everything a handler, the scheduler or the CLI needs besides the event."""

    config: Config
    store: Store
    sources: dict[str, Source]
    reporter: Reporter
    clock: Callable[[], datetime]
    delivery: Delivery
    """Posts outside the tick: a Refresh click's update of a live card."""

    def report(
        self,
        team: TeamConfig,
        origin: str,
        *,
        record: bool = True,
        slot: datetime | None = None,
        cached: bool = False,
        scans: Mapping[str, ScanShare] | None = None,
    ) -> TeamReport:
        """Read the team's KPIs now (the path shared by /score, Refresh, schedules, preview and send).

        ``origin`` is who asks (``bot.store.POST``, ``SCORE``, ...); ``record`` False writes nothing;
        ``cached`` shows a stored reading younger than its source's ``cache_seconds`` instead (``/score``);
        ``scans``: the team's parts of scans `Reporter.prefetch` started for several teams (the tick).
        """
        zone = self.config.zone(team).key
        return self.reporter.report(team, zone, origin, record=record, slot=slot, cached=cached, scans=scans)


def open_store(url: str, where: str) -> Store:
    """The store at ``url``, or a one-line `ConfigError` naming ``where`` the URL came from (password hidden)."""
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        parsed = None
    if parsed is None or "@" in (parsed.host or "") or "@" in (parsed.username or ""):
        # An unencoded @ : / in the password: SQLAlchemy cannot tell where the password ends.
        register(_password_part(url))
        raise ConfigError(
            f"{where}: not a database URL: {_shown_url(url)} (use sqlite:///FILE or "
            "postgresql://USER:PASSWORD@HOST/DB, with @ : / # ? and % in the password percent-encoded: p@ss → p%40ss)"
        )
    register(parsed.password)
    shown = parsed.render_as_string(hide_password=True)
    if not shown.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
        raise ConfigError(f"{where}: {shown}: only sqlite:///FILE and postgresql://... stores are supported")
    try:
        return Store(url)
    except sa.exc.SQLAlchemyError as exc:
        reason = type(exc.orig).__name__ if isinstance(exc, sa.exc.DBAPIError) else type(exc).__name__
        raise ConfigError(f"{where}: cannot open the store at {shown} ({reason}: {_first_line(exc)})") from None


def _password_part(url: str) -> str:
    """What stands between the user's ``:`` and the last ``@`` of a URL's user part: the password, however written."""
    _scheme, found, rest = url.partition("://")
    user_info = rest.rpartition("@")[0] if found else ""
    return user_info.partition(":")[2]


def _shown_url(url: str) -> str:
    """``url`` as it may be shown: any password replaced by ``***``, even in a URL that does not parse."""
    scheme, found, rest = url.partition("://")
    if not found or "@" not in rest:
        return url
    user_info, _, host = rest.rpartition("@")
    user, colon, _password = user_info.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}"


def _first_line(exc: sa.exc.SQLAlchemyError) -> str:
    text = str(exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc)
    return text.strip().splitlines()[0] if text.strip() else "no detail"


def build_services(config: Config, clock: Callable[[], datetime] = utc_now, store_url: str | None = None) -> Services:
    """Services for ``config``; the store URL is ``store_url``, else $SCOREBOT_STORE, else the config's."""
    validate_templates(config)
    base = config.path.parent if config.path else Path.cwd()
    where = "store URL argument" if store_url else "$SCOREBOT_STORE" if os.environ.get("SCOREBOT_STORE") else "store"
    if where == "store" and config.path:
        where = f"{config.path}: store"
    store = open_store(resolve_url(store_url or os.environ.get("SCOREBOT_STORE") or config.store, base), where)
    sources = {name: build_source(name, settings, base) for name, settings in config.sources.items()}
    reporter = Reporter(
        sources,
        store,
        clock,
        config.fetch_budget_seconds,
        cache_seconds={name: settings.cache_seconds for name, settings in config.sources.items()},
        max_concurrent={name: settings.max_concurrent for name, settings in config.sources.items()},
    )
    delivery = Delivery(config.chat, store, clock, base_dir=base, pace_seconds=config.schedule.pace_seconds)
    return Services(config=config, store=store, sources=sources, reporter=reporter, clock=clock, delivery=delivery)
