"""The Refresh button: read the data again and update the card in place."""

from __future__ import annotations

import logging

from bot.cards import Message, help_message, team_message
from bot.chat.events import ChatEvent
from bot.chat.replies import Reply
from bot.config import TeamConfig
from bot.context import Services
from bot.delivery import Post, live_message_id
from bot.errors import DeliveryError
from bot.store import REFRESH
from handlers.settings import settings_button

log = logging.getLogger(__name__)
LIVE_UPDATE_SECONDS = 5.0
"""How long a click waits for the Chat API to update a live card (Chat waits about 30 s for the answer)."""


def handle(event: ChatEvent, services: Services) -> Reply:
    """Replace the clicked card with a fresh one for the team it carries.

    A click on the team's live card of the current period also updates that
    message through the Chat API, the way the period's scheduled posts do. A
    card whose team left the configuration is left alone, and the clicker
    alone is told why.
    """
    config = services.config
    team = services.team(event.parameters.get("team", ""))
    if team is None:
        note = "This card's team is no longer in Scorebot's configuration; ask whoever runs Scorebot."
        return Reply(help_message(config, note), private=True)
    report = services.report(team, REFRESH)
    button = settings_button(services, team, event.space)
    message = team_message(report, refresh_function=config.chat.button_function, settings=button)
    update_live_card(event, services, team, message)
    return Reply(message, update=True)


def update_live_card(event: ChatEvent, services: Services, team: TeamConfig, message: Message) -> bool:
    """Update the clicked message through the Chat API if it is ``team``'s live card of the current period.

    Returns whether it was updated. A failure is logged, not raised: the
    click's own answer still refreshes the card the user sees.
    """
    target = team.live_target(event.space)
    if target is None:
        return False
    now = services.clock()
    live_id = live_message_id(team.id, target.live, now.astimezone(services.config.zone(team)))
    if live_id not in (event.message_client_id, (event.message_name or "").rpartition("/")[2]):
        return False
    try:
        services.delivery.attempt(target, Post(team.id, now, message, live_id, live=True), lambda: LIVE_UPDATE_SECONDS)
    except DeliveryError as exc:
        log.warning("team %s: live card %s not updated through the Chat API: %s", team.id, live_id, exc)
        return False
    return True
