"""Chat events, classic and add-on, parsed into one `ChatEvent`.

Parsing is pure: a dict in, a `ChatEvent` out, tolerant of everything Google
was seen to send (numbers as floats or strings, missing keys, extra keys).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

WORD = re.compile(r"[a-z0-9-]+")
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")
DIALOG_EVENTS = ("REQUEST_DIALOG", "SUBMIT_DIALOG", "CANCEL_DIALOG")
USER_NAME = re.compile(r"users/[\x21-\x2e\x30-\x7e]{1,254}")
"""A user's resource name: ``users/{id}`` or ``users/{email}`` (printable ASCII without a slash, 254 at most)."""


def mention_words(text: str) -> list[str]:
    """The lowercase words of a message, punctuation dropped ("what's the score?" → ..., "score")."""
    return WORD.findall(text.lower())


class Kind(StrEnum):
    """What happened, whatever the event format."""

    COMMAND = "command"
    MESSAGE = "message"
    CLICK = "click"
    ADDED = "added"
    REMOVED = "removed"
    OTHER = "other"


class Format(StrEnum):
    """The event's wire format, which decides the reply's shape."""

    CLASSIC = "classic"
    ADDON = "addon"


@dataclass(frozen=True)
class ChatEvent:
    """One user or Chat action, normalised."""

    kind: Kind
    format: Format
    command_id: int | None = None
    text: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    space: str | None = None
    space_type: str | None = None
    """SPACE, GROUP_CHAT or DIRECT_MESSAGE (None when the event does not say)."""
    user: str | None = None
    """The asker's ``users/...`` name; None when the event has none, or one of another shape or length."""
    message_name: str | None = None
    """The message the event concerns: for a click, the message whose button was clicked."""
    message_client_id: str | None = None
    """That message's ``clientAssignedMessageId`` (``client-...``), when the app chose its id."""
    added_by_mention: bool = False
    raw_type: str = ""
    user_email: str | None = None
    """The asker's email as the event gives it (``user.email``), None when absent or not an address."""
    dialog: str | None = None
    """``REQUEST_DIALOG``, ``SUBMIT_DIALOG`` or ``CANCEL_DIALOG`` for a dialog event, else None."""
    form: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """A dialog's inputs by widget name: ``stringInputs`` values, a date as its milliseconds since the epoch."""


def parse_event(body: dict[str, Any]) -> ChatEvent:
    """Normalise a classic (`type` at top level) or add-on (`chat` payload) event."""
    if "type" in body:
        return _classic(body)
    return _addon(body)


def _classic(body: dict[str, Any]) -> ChatEvent:
    raw_type = str(body.get("type"))
    message = _dict(body.get("message"))
    base = ChatEvent(
        kind=Kind.OTHER,
        format=Format.CLASSIC,
        space=_space(body.get("space"), message),
        space_type=_space_type(body.get("space"), message),
        user=_user(body.get("user")),
        message_name=_name(message),
        message_client_id=_client_id(message),
        raw_type=raw_type,
        user_email=_email(body.get("user")),
        dialog=_dialog(body),
        form=_form(_dict(body.get("common")).get("formInputs")),
    )
    if raw_type in ("MESSAGE", "APP_COMMAND"):
        command_id = _command_id(message, body.get("appCommandMetadata"))
        kind = Kind.COMMAND if command_id is not None else Kind.MESSAGE
        return replace(base, kind=kind, command_id=command_id, text=_argument(message))
    if raw_type == "CARD_CLICKED":
        params = _click_parameters(_dict(body.get("common")), _dict(body.get("action")))
        return replace(base, kind=Kind.CLICK, parameters=params)
    if raw_type == "ADDED_TO_SPACE":
        return replace(base, kind=Kind.ADDED, added_by_mention=bool(message))
    if raw_type == "REMOVED_FROM_SPACE":
        return replace(base, kind=Kind.REMOVED)
    return base


_ADDON_PAYLOADS = {
    "appCommandPayload": Kind.COMMAND,
    "messagePayload": Kind.MESSAGE,
    "buttonClickedPayload": Kind.CLICK,
    "addedToSpacePayload": Kind.ADDED,
    "removedFromSpacePayload": Kind.REMOVED,
}


def _addon(body: dict[str, Any]) -> ChatEvent:
    chat = _dict(body.get("chat"))
    name, kind = next(((n, k) for n, k in _ADDON_PAYLOADS.items() if n in chat), ("", Kind.OTHER))
    payload = _dict(chat.get(name))
    message = _dict(payload.get("message"))
    base = ChatEvent(
        kind=kind,
        format=Format.ADDON,
        space=_space(payload.get("space"), message),
        space_type=_space_type(payload.get("space"), message),
        user=_user(chat.get("user")),
        message_name=_name(message),
        message_client_id=_client_id(message),
        raw_type=name or "unknown add-on payload",
        user_email=_email(chat.get("user")),
        dialog=_dialog(payload),
        form=_form(_dict(body.get("commonEventObject")).get("formInputs")),
    )
    if kind in (Kind.COMMAND, Kind.MESSAGE):
        command_id = _command_id(message, payload.get("appCommandMetadata"))
        return replace(
            base,
            kind=Kind.COMMAND if command_id is not None else Kind.MESSAGE,
            command_id=command_id,
            text=_argument(message),
            added_by_mention=_mention_added_app(message),
        )
    if kind is Kind.CLICK:
        params = _click_parameters(_dict(body.get("commonEventObject")), {})
        return replace(base, parameters=params)
    if kind is Kind.ADDED:
        return replace(base, added_by_mention=bool(payload.get("interactionAdd")))
    return base


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    """IDs arrive as 1, "1", 1.0 or "1.0"."""
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def _command_id(message: dict[str, Any], metadata: Any) -> int | None:
    slash = _dict(message.get("slashCommand"))
    if "commandId" in slash:
        return _int(slash["commandId"])
    meta = _dict(metadata)
    if meta.get("appCommandType", "SLASH_COMMAND") == "SLASH_COMMAND" and "appCommandId" in meta:
        return _int(meta["appCommandId"])
    return None


def _argument(message: dict[str, Any]) -> str:
    text = message.get("argumentText")
    if not isinstance(text, str):
        text = message.get("text") if not message.get("slashCommand") else ""
    return " ".join(str(text or "").split())


def _space(space: Any, message: dict[str, Any]) -> str | None:
    name = _dict(space).get("name") or _dict(message.get("space")).get("name")
    return name if isinstance(name, str) else None


def _space_type(space: Any, message: dict[str, Any]) -> str | None:
    kind = _dict(space).get("spaceType") or _dict(message.get("space")).get("spaceType")
    return kind if isinstance(kind, str) else None


def _name(node: dict[str, Any]) -> str | None:
    name = node.get("name")
    return name if isinstance(name, str) else None


def _client_id(message: dict[str, Any]) -> str | None:
    value = message.get("clientAssignedMessageId")
    return value if isinstance(value, str) else None


def _click_parameters(common: dict[str, Any], action: dict[str, Any]) -> dict[str, str]:
    params = {str(k): str(v) for k, v in _dict(common.get("parameters")).items()}
    for item in _list(action.get("parameters")):
        if isinstance(item, dict) and "key" in item:
            params.setdefault(str(item["key"]), str(item.get("value", "")))
    function = common.get("invokedFunction") or action.get("actionMethodName")
    if isinstance(function, str) and function and "action" not in params:
        params["action"] = str(function)
    return params


def _mention_added_app(message: dict[str, Any]) -> bool:
    return any(_dict(_dict(a).get("userMention")).get("type") == "ADD" for a in _list(message.get("annotations")))


def _user(value: Any) -> str | None:
    """The ``name`` of an event's ``user`` if it is a `USER_NAME`, else None (replies to no one in particular)."""
    name = _dict(value).get("name")
    return name if isinstance(name, str) and USER_NAME.fullmatch(name) else None


def _email(value: Any) -> str | None:
    """The ``email`` of an event's ``user``, if it looks like an address."""
    email = _dict(value).get("email")
    return email if isinstance(email, str) and EMAIL.fullmatch(email) else None


def _dialog(node: dict[str, Any]) -> str | None:
    """The dialog event type of a classic event or an add-on payload (``isDialogEvent`` with ``dialogEventType``)."""
    kind = node.get("dialogEventType")
    if kind in DIALOG_EVENTS and node.get("isDialogEvent") is not False:
        return str(kind)
    return None


def _form(value: Any) -> dict[str, tuple[str, ...]]:
    """Form inputs by widget name: strings as given, a date (or date and time) as its milliseconds since the epoch."""
    form: dict[str, tuple[str, ...]] = {}
    for name, inputs in _dict(value).items():
        node = _dict(inputs)
        strings = _list(_dict(node.get("stringInputs")).get("value"))
        date = _dict(node.get("dateInput")) or _dict(node.get("dateTimeInput"))
        if strings:
            form[str(name)] = tuple(str(item) for item in strings)
        elif "msSinceEpoch" in date:
            form[str(name)] = (str(date["msSinceEpoch"]),)
    return form
