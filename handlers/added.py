"""Scorebot added to a Space: a welcome card naming the Space's team."""

from __future__ import annotations

from bot.cards import welcome_message
from bot.chat.events import ChatEvent
from bot.chat.replies import Reply
from bot.context import Services


def handle(event: ChatEvent, services: Services) -> Reply:
    """Say what the app does and which team this Space is linked to."""
    config = services.config
    return Reply(welcome_message(config, config.team_for_space(event.space)))
