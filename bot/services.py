"""Composition: the app's services (`bot.context.Services`), built once from the configuration.

This module sits above the faces (chat, schedule, pages) and the handlers: it
wires the store, the sources, delivery and the clock's handler together, and
validates the post templates, so that nothing below has to import upwards.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa

from bot.config import Config
from bot.context import Services
from bot.delivery import Delivery
from bot.errors import ConfigError
from bot.kept_cards import KeptCards
from bot.reports import Reporter
from bot.schedule.templates import validate_templates
from bot.secrets import register
from bot.settings_access import ChatMemberships, SpaceRoles
from bot.settings_view import SettingsView, warn_ignored
from bot.sources import build_source
from bot.store import Store, resolve_url
from handlers import scheduled

T = TypeVar("T")


def utc_now() -> datetime:
    """The current time in UTC (the production clock)."""
    return datetime.now(UTC)


def open_store(url: str, where: str) -> Store:
    """The store at ``url``, or a one-line `ConfigError` naming ``where`` the URL came from (password hidden);
    a store whose schema is behind this version's raises `SchemaError` (see `bot.store.migrate`)."""
    return use_store_url(url, where, Store)


def use_store_url(url: str, where: str, use: Callable[[str], T]) -> T:
    """``use(url)`` once ``url`` is a store URL Scorebot supports; a bad URL, or a store that cannot be
    reached, is a one-line `ConfigError` naming ``where`` the URL came from (password hidden)."""
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
        return use(url)
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


def store_location(config: Config, store_url: str | None = None) -> tuple[str, str]:
    """The store's URL (``store_url``, else $SCOREBOT_STORE, else the config's; a relative SQLite path taken
    from the config file's folder) and where it came from, for messages."""
    base = config.path.parent if config.path else Path.cwd()
    where = "store URL argument" if store_url else "$SCOREBOT_STORE" if os.environ.get("SCOREBOT_STORE") else "store"
    if where == "store" and config.path:
        where = f"{config.path}: store"
    return resolve_url(store_url or os.environ.get("SCOREBOT_STORE") or config.store, base), where


def build_services(config: Config, clock: Callable[[], datetime] = utc_now, store_url: str | None = None) -> Services:
    """Services for ``config``; the store URL is ``store_url``, else $SCOREBOT_STORE, else the config's."""
    validate_templates(config)
    base = config.path.parent if config.path else Path.cwd()
    store = open_store(*store_location(config, store_url))
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
    view = SettingsView(config, store)
    warn_ignored(view)
    return Services(
        config=config,
        store=store,
        sources=sources,
        reporter=reporter,
        clock=clock,
        delivery=delivery,
        scheduled_post=scheduled.handle,
        space_roles=SpaceRoles(ChatMemberships(config.chat, base)),
        settings=view,
        kept_cards=KeptCards(reporter, store, clock),
    )
