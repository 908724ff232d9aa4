"""Scorebot removed from a Space: nothing to say (the app cannot reply)."""

from __future__ import annotations

import logging

from bot.chat.events import ChatEvent
from bot.chat.replies import Reply
from bot.context import Services

log = logging.getLogger(__name__)


def handle(event: ChatEvent, services: Services) -> Reply | None:
    """Log the removal; answer nothing."""
    log.info("removed from %s", event.space)
    return None
