"""Routing: (event kind, command or action) → handler, through the table the app gives (`handlers.ROUTES`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from bot.chat.events import ChatEvent, Kind, mention_words
from bot.chat.replies import DialogReply, Reply
from bot.context import Services

log = logging.getLogger(__name__)

Handler = Callable[[ChatEvent, Services], Reply | DialogReply | None]
Routes = Mapping[tuple[Kind, str], Handler]
"""The handler table: a kind with ``"*"`` answers every name of that kind that has no entry of its own."""


def route_key(event: ChatEvent, services: Services) -> tuple[Kind, str]:
    """The table key for ``event``: its kind plus the command, action or keyword."""
    if event.kind is Kind.COMMAND:
        name = "score" if event.command_id == services.config.chat.score_command_id else "unknown"
    elif event.kind is Kind.MESSAGE:
        name = "score" if "score" in mention_words(event.text) else "text"
    elif event.kind is Kind.CLICK and event.dialog == "CANCEL_DIALOG":
        name = "dialog-closed"  # the dialog's close icon: its buttons' parameters may not come with it
    elif event.kind is Kind.CLICK:
        name = event.parameters.get("action", "")
    else:
        name = "*"
    return event.kind, name


def dispatch(event: ChatEvent, services: Services, routes: Routes) -> Reply | DialogReply | None:
    """Run the handler ``routes`` has for ``event``; unknown events are logged and answered with nothing."""
    kind, name = route_key(event, services)
    handler = routes.get((kind, name)) or routes.get((kind, "*"))
    if handler is None:
        log.info("ignored event %s (%s %s) in %s", event.raw_type, kind, name or "-", event.space)
        return None
    return handler(event, services)
