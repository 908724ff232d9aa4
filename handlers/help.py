"""A message that asks for nothing Scorebot knows: the help card."""

from __future__ import annotations

from bot.cards import help_message
from bot.chat.events import ChatEvent
from bot.chat.replies import Reply
from bot.context import Services


def handle(event: ChatEvent, services: Services) -> Reply | None:
    """Help, for the asker alone, except for the message that added the app by @mention (already welcomed)."""
    if event.added_by_mention:
        return None
    return Reply(help_message(services.config), private=True)
