"""What a handler answers, and its wrapping for each event format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.cards import within_limits
from bot.chat.events import ChatEvent, Format


@dataclass(frozen=True)
class Reply:
    """A message for the Space; ``update`` replaces the clicked card instead of posting.

    ``private``: the answer is meant for the person who asked (help, an unknown
    team, an unlinked Space, a configuration problem), so in a shared Space
    only they see it.
    """

    message: dict[str, Any]
    update: bool = False
    private: bool = False


def private_viewer(reply: Reply, event: ChatEvent, enabled: bool = True) -> str | None:
    """The user ``reply`` is shown to alone (their ``users/...`` name), or None when everyone sees it.

    Only a new message can be private: ``privateMessageViewer`` is set when a
    message is created and cannot change, so an update of a card everyone sees
    stays public. A direct message is private already, and an event without a
    user names no one to show it to.
    """
    if not (enabled and reply.private and not reply.update and event.user):
        return None
    return None if event.space_type == "DIRECT_MESSAGE" else event.user


def wrap(reply: Reply, event_format: Format, viewer: str | None = None) -> dict[str, Any]:
    """The HTTP response body Chat expects for ``reply`` in this event format, shown to ``viewer`` alone if given.

    Every reply passes the cards' size guard (`within_limits`) here. Classic
    apps answer a `Message` with an `actionResponse`; add-ons answer a
    `hostAppDataAction` (a classic `actionResponse` there fails in the client).
    """
    message = within_limits(reply.message)
    if viewer:
        message = {**message, "privateMessageViewer": {"name": viewer}}
    if event_format is Format.ADDON:
        action = "updateMessageAction" if reply.update else "createMessageAction"
        return {"hostAppDataAction": {"chatDataAction": {action: {"message": message}}}}
    kind = "UPDATE_MESSAGE" if reply.update else "NEW_MESSAGE"
    return {**message, "actionResponse": {"type": kind}}
