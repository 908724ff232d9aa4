"""The routing table: (event kind, command or action) → handler."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.chat.events import ChatEvent, Kind
from bot.chat.replies import Reply
from bot.services import Services
from handlers import added, help, overview, refresh, removed, score
from handlers.score import mention_words

log = logging.getLogger(__name__)

Handler = Callable[[ChatEvent, Services], Reply | None]

ROUTES: dict[tuple[Kind, str], Handler] = {
    (Kind.COMMAND, "score"): score.handle,
    (Kind.COMMAND, "*"): help.handle,
    (Kind.MESSAGE, "score"): score.handle,
    (Kind.MESSAGE, "*"): help.handle,
    (Kind.CLICK, "refresh"): refresh.handle,
    (Kind.CLICK, "overview"): overview.handle_page,
    (Kind.CLICK, "overview-team"): overview.handle_team,
    (Kind.ADDED, "*"): added.handle,
    (Kind.REMOVED, "*"): removed.handle,
}


def route_key(event: ChatEvent, services: Services) -> tuple[Kind, str]:
    """The table key for ``event``: its kind plus the command, action or keyword."""
    if event.kind is Kind.COMMAND:
        name = "score" if event.command_id == services.config.chat.score_command_id else "unknown"
    elif event.kind is Kind.MESSAGE:
        name = "score" if "score" in mention_words(event.text) else "text"
    elif event.kind is Kind.CLICK:
        name = event.parameters.get("action", "")
    else:
        name = "*"
    return event.kind, name


def dispatch(event: ChatEvent, services: Services) -> Reply | None:
    """Run the handler for ``event``; unknown events are logged and answered with nothing."""
    kind, name = route_key(event, services)
    handler = ROUTES.get((kind, name)) or ROUTES.get((kind, "*"))
    if handler is None:
        log.info("ignored event %s (%s %s) in %s", event.raw_type, kind, name or "-", event.space)
        return None
    return handler(event, services)
