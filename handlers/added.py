"""Scorebot added to a Space: a welcome card naming the Space's team, or saying how to link one."""

from __future__ import annotations

from html import escape

from bot.cards import welcome_message
from bot.chat.events import ChatEvent
from bot.chat.replies import Reply
from bot.context import Services
from handlers.settings import access


def handle(event: ChatEvent, services: Services) -> Reply:
    """Say what the app does and which team this Space is linked to.

    A Space without a team, where the YAML lets editors link Spaces (``settings.link: editors``), is told
    how: the one who added the app, if an editor, is offered ``/score link TEAM``; anyone else is told who can.
    """
    config = services.config
    team = services.team_for_space(event.space)
    unlinked = None
    if team is None and config.settings.link == "editors" and event.space_type != "DIRECT_MESSAGE":
        example = escape(config.teams[0].id)
        rights = access(event, services)
        if rights.allowed:
            unlinked = (
                "This Space is not linked to a team yet. You can link it: type "
                f"<b>/score link TEAM</b>, e.g. <b>/score link {example}</b> (<b>/score help</b> lists the teams)."
            )
        else:
            who = escape(rights.who_can, quote=False)
            unlinked = (
                f"This Space is not linked to a team yet. Only {who} can link it, with "
                "<b>/score link TEAM</b>; until then, <b>/score TEAM</b> shows any team."
            )
    return Reply(welcome_message(config, team, unlinked))
