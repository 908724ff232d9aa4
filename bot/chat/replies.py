"""What a handler answers, and its wrapping for each event format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.cards import within_limits
from bot.chat.events import Format


@dataclass(frozen=True)
class Reply:
    """A message for the Space; ``update`` replaces the clicked card instead of posting."""

    message: dict[str, Any]
    update: bool = False


def wrap(reply: Reply, event_format: Format) -> dict[str, Any]:
    """The HTTP response body Chat expects for ``reply`` in this event format.

    Every reply passes the cards' size guard (`within_limits`) here. Classic
    apps answer a `Message` with an `actionResponse`; add-ons answer a
    `hostAppDataAction` (a classic `actionResponse` there fails in the client).
    """
    message = within_limits(reply.message)
    if event_format is Format.ADDON:
        action = "updateMessageAction" if reply.update else "createMessageAction"
        return {"hostAppDataAction": {"chatDataAction": {action: {"message": message}}}}
    kind = "UPDATE_MESSAGE" if reply.update else "NEW_MESSAGE"
    return {**message, "actionResponse": {"type": kind}}
