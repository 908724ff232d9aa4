"""What a handler answers, and its wrapping for each event format."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from bot.cards import MAX_CARD_WIDGETS, MAX_MESSAGE_BYTES, Encoded, Message, message_bytes, within_limits
from bot.chat.events import ChatEvent, Format

CHAT_MESSAGE_BYTES = 32_000
"""Chat's limit on a message: the whole reply body, as sent, stays within it."""


@dataclass(frozen=True)
class Reply:
    """A message for the Space; ``update`` replaces the clicked card instead of posting.

    ``private``: the answer is meant for the person who asked (help, an unknown
    team, an unlinked Space, a configuration problem), so in a shared Space
    only they see it. An `Encoded` message (a kept card) is sent without being encoded again.
    """

    message: Message | Encoded
    update: bool = False
    private: bool = False


@dataclass(frozen=True)
class DialogReply:
    """A dialog to show (``card``: it opens, or takes the place of the one open), or the dialog closed with
    ``notice`` shown to the user (``card`` None)."""

    card: dict[str, Any] | None
    notice: str = ""


def dialog_body(reply: DialogReply, event_format: Format) -> dict[str, Any]:
    """The HTTP response body that opens, replaces or closes a dialog in this event format.

    Classic apps answer an `actionResponse` of type ``DIALOG`` (a ``dialog`` to show, or an ``actionStatus``
    that closes it); add-ons answer an ``action`` with ``navigations``: ``pushCard`` shows a card (to open the
    dialog and for each step inside it, as Google's own Chat add-on samples do), ``endNavigation:
    CLOSE_DIALOG`` closes it, with a notification. A card over Chat's limits is not sent: the dialog closes
    with a notice instead (`dialog_fits`).
    """
    card = reply.card if reply.card is not None and dialog_fits(reply.card) else None
    notice = reply.notice if card is not None or reply.card is None else "These settings are too large to show."
    if event_format is Format.ADDON:
        if card is None:
            action: dict[str, Any] = {"navigations": [{"endNavigation": {"action": "CLOSE_DIALOG"}}]}
            if notice:
                action["notification"] = {"text": notice}
        else:
            action = {"navigations": [{"pushCard": card}]}
        return {"action": action}
    if card is None:
        status = {"statusCode": "OK", "userFacingMessage": notice} if notice else {"statusCode": "OK"}
        return {"actionResponse": {"type": "DIALOG", "dialogAction": {"actionStatus": status}}}
    return {"actionResponse": {"type": "DIALOG", "dialogAction": {"dialog": {"body": card}}}}


def dialog_fits(card: dict[str, Any]) -> bool:
    """Whether a dialog's card is within Chat's limits: `MAX_CARD_WIDGETS` widgets and `MAX_MESSAGE_BYTES`."""
    widgets = sum(len(section.get("widgets", [])) for section in card.get("sections", []))
    return widgets <= MAX_CARD_WIDGETS and message_bytes(card) <= MAX_MESSAGE_BYTES


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

    Classic apps answer a `Message` with an `actionResponse`; add-ons answer a
    `hostAppDataAction` (a classic `actionResponse` there fails in the client).
    The size guard (`within_limits`) is the last step: the message gets what
    the final body leaves of `CHAT_MESSAGE_BYTES` once its wrapping and viewer
    are in (at most `MAX_MESSAGE_BYTES`), so the body as sent never passes Chat's limit.
    """
    given = reply.message
    message = json.loads(given.json) if isinstance(given, Encoded) else given
    return _body(within_limits(message, _room(reply, event_format, viewer)), reply.update, event_format, viewer)


def _room(reply: Reply, event_format: Format, viewer: str | None) -> int:
    """The bytes the message may take: what its wrapping and viewer leave of `CHAT_MESSAGE_BYTES`, at most
    `MAX_MESSAGE_BYTES`."""
    wrapping = message_bytes(_body({}, reply.update, event_format, viewer)) - len("{}")
    return min(MAX_MESSAGE_BYTES, CHAT_MESSAGE_BYTES - wrapping)


def body_json(reply: Reply, event_format: Format, viewer: str | None = None) -> str:
    """`wrap`'s body as JSON text. An `Encoded` message within what its wrapping leaves is put in as it is:
    its text takes the place of a stand-in key in the wrapping's text."""
    given = reply.message
    if isinstance(given, Encoded):
        frame, room = _frame(reply.update, event_format, viewer)
        if len("{}") < len(given.json) <= room:
            return frame.replace(_STAND_IN_JSON, given.json[1:-1], 1)
    return _json(wrap(reply, event_format, viewer))


@functools.lru_cache(maxsize=64)
def _frame(update: bool, event_format: Format, viewer: str | None) -> tuple[str, int]:
    """The wrapping's JSON text around the stand-in key, and the bytes it leaves the message (`_room`)."""
    room = _room(Reply({}, update=update), event_format, viewer)
    return _json(_body({_STAND_IN: 0}, update, event_format, viewer)), room


_STAND_IN = "\ue002"
_STAND_IN_JSON = '"\\ue002":0'
"""The stand-in key and value as `_json` writes them (the first key of every wrapping's message)."""


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def _body(message: Message, update: bool, event_format: Format, viewer: str | None) -> dict[str, Any]:
    """``message`` in the wrapping of ``event_format``, with its viewer."""
    if viewer:
        message = {**message, "privateMessageViewer": {"name": viewer}}
    if event_format is Format.ADDON:
        action = "updateMessageAction" if update else "createMessageAction"
        return {"hostAppDataAction": {"chatDataAction": {action: {"message": message}}}}
    kind = "UPDATE_MESSAGE" if update else "NEW_MESSAGE"
    return {**message, "actionResponse": {"type": kind}}
