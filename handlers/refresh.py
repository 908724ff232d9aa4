"""The Refresh button: read the data again and update the card in place."""

from __future__ import annotations

from bot.cards import help_message, team_message
from bot.chat.events import ChatEvent
from bot.chat.replies import Reply
from bot.services import Services
from bot.store import REFRESH


def handle(event: ChatEvent, services: Services) -> Reply:
    """Replace the clicked card with a fresh one for the team it carries."""
    config = services.config
    team = config.team(event.parameters.get("team", ""))
    if team is None:
        return Reply(help_message(config, "This card's team no longer exists."), update=True)
    report = services.report(team, REFRESH)
    return Reply(team_message(report, refresh_function=config.chat.button_function), update=True)
