"""Check Chat messages and cards against the Chat API's own schema, offline.

google-api-python-client ships the Chat API discovery document. Its
``schemas`` become JSON Schema (Draft 7) definitions: every object closed
with ``additionalProperties: false``, enums enforced, int64 fields (strings
in JSON) accepting digit strings and integers. On top come the rules the
discovery document cannot state: a message is at most 32,000 bytes of UTF-8
JSON, a card has at most 100 widgets (nested ones included), a widget has
exactly one kind and an ``onClick`` exactly one action. Add-on replies, which
the document does not describe, are unwrapped by hand.

Every function returns a list of problems, each starting with a JSON path
(``$.cardsV2[0].card.sections[0].widgets[3]: ...``); empty means valid.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import googleapiclient
from jsonschema import Draft7Validator

DISCOVERY_DOC = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / "chat.v1.json"
MAX_MESSAGE_BYTES = 32_000
MAX_CARD_WIDGETS = 100
# Schemas whose instances must set exactly one of their object-valued fields: (what it is, what it sets).
EXACTLY_ONE = {
    "GoogleAppsCardV1Widget": ("widget", "kind"),
    "GoogleAppsCardV1Widgets": ("widget", "kind"),
    "GoogleAppsCardV1NestedWidget": ("widget", "kind"),
    "GoogleAppsCardV1OnClick": ("onClick", "action"),
}
ADDON_ACTIONS = ("createMessageAction", "updateMessageAction")
_INT64_FORMATS = {"int64", "uint64"}


def validate_message(message: Any) -> list[str]:
    """Problems with a ``Message`` (a classic reply, webhook or Chat API body)."""
    return _message_problems(message, "$")


def validate_card(card_with_id: Any) -> list[str]:
    """Problems with one ``CardWithId`` (``{"cardId": ..., "card": {...}}``)."""
    problems = _schema_problems(card_with_id, "CardWithId", "$")
    if isinstance(card_with_id, dict):
        problems += _widget_count_problems(card_with_id.get("card"), "$.card")
    return problems


def validate_addon_response(body: Any) -> list[str]:
    """Problems with an add-on reply: ``hostAppDataAction.chatDataAction.<create|update>MessageAction.message``."""
    node, path = body, "$"
    for allowed in (("hostAppDataAction",), ("chatDataAction",), ADDON_ACTIONS, ("message",)):
        if not isinstance(node, dict) or len(node) != 1 or next(iter(node)) not in allowed:
            found = sorted(node) if isinstance(node, dict) else type(node).__name__
            return [f"{path}: expected an object with exactly one key, one of {list(allowed)} (found {found})"]
        key = next(iter(node))
        node, path = node[key], f"{path}.{key}"
    problems = _message_problems(node, path)
    if isinstance(node, dict) and "actionResponse" in node:
        problems.append(f"{path}.actionResponse: add-on replies cannot carry a classic actionResponse")
    return problems


NAVIGATIONS = ("pushCard", "updateCard", "endNavigation")
"""What an add-on's ``navigations`` hold (as Google's Chat add-on samples answer dialogs: googleworkspace/
add-ons-samples, python/chat/contact-form-app)."""


def validate_addon_dialog(body: Any) -> list[str]:
    """Problems with an add-on dialog answer: ``action`` holding ``navigations`` (one each of
    ``pushCard`` / ``updateCard``, a card checked like any card, or ``endNavigation: {action: CLOSE_DIALOG}``)
    and an optional ``notification: {text}``; nothing else (the discovery document does not describe them)."""
    action = body.get("action") if isinstance(body, dict) and len(body) == 1 else None
    if not isinstance(action, dict) or set(action) - {"navigations", "notification"}:
        return ["$: expected {action: {navigations, notification?}}"]
    problems: list[str] = []
    notification = action.get("notification", {"text": "-"})
    if not (isinstance(notification, dict) and set(notification) == {"text"} and isinstance(notification["text"], str)):
        problems.append("$.action.notification: expected {text: string}")
    navigations = action.get("navigations")
    if not isinstance(navigations, list) or not navigations:
        return [*problems, "$.action.navigations: expected a non-empty list"]
    for i, navigation in enumerate(navigations):
        path = f"$.action.navigations[{i}]"
        if not isinstance(navigation, dict) or len(navigation) != 1 or next(iter(navigation)) not in NAVIGATIONS:
            problems.append(f"{path}: expected exactly one of {list(NAVIGATIONS)}")
            continue
        kind, value = next(iter(navigation.items()))
        if kind == "endNavigation":
            if value != {"action": "CLOSE_DIALOG"}:
                problems.append(f"{path}.endNavigation: expected {{action: CLOSE_DIALOG}}")
            continue
        problems += validate_dialog_card(value, f"{path}.{kind}")
    return problems


def validate_dialog_card(card: Any, path: str = "$") -> list[str]:
    """Problems with a dialog's card (a ``GoogleAppsCardV1Card``): the schema, the widget count and the size."""
    problems = _schema_problems(card, "GoogleAppsCardV1Card", path) + _widget_count_problems(card, path)
    size = len(json.dumps(card, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > MAX_MESSAGE_BYTES:
        problems.append(f"{path}: card is {size} bytes as UTF-8 JSON; the limit is {MAX_MESSAGE_BYTES}")
    return problems


@functools.cache
def chat_json_schema() -> dict[str, Any]:
    """The discovery document's schemas as one JSON Schema with a definition per schema."""
    schemas = json.loads(DISCOVERY_DOC.read_text(encoding="utf-8"))["schemas"]
    definitions = {name: {"title": name, **_convert(schema)} for name, schema in schemas.items()}
    for name in EXACTLY_ONE:
        kinds = [key for key, prop in schemas[name]["properties"].items() if "$ref" in prop]
        definitions[name]["oneOf"] = [{"required": [kind]} for kind in kinds]
    return {"$schema": "http://json-schema.org/draft-07/schema#", "definitions": definitions}


def _convert(prop: dict[str, Any]) -> dict[str, Any]:
    """One discovery schema or property as JSON Schema."""
    if "$ref" in prop:
        return {"$ref": f"#/definitions/{prop['$ref']}"}
    kind = prop.get("type")
    out: dict[str, Any]
    if kind == "object" and "properties" in prop:
        properties = {key: _convert(value) for key, value in prop["properties"].items()}
        out = {"type": "object", "properties": properties, "additionalProperties": False}
    elif kind == "object":
        extra = prop.get("additionalProperties")
        out = {"type": "object", "additionalProperties": _convert(extra) if extra else True}
    elif kind == "array":
        out = {"type": "array", "items": _convert(prop["items"])}
    elif kind == "string" and prop.get("format") in _INT64_FORMATS:
        out = {"type": ["string", "integer"], "pattern": r"^-?[0-9]+$"}
    elif kind in {"string", "integer", "number", "boolean"}:
        out = {"type": kind}
    elif kind == "any":
        out = {}
    else:
        raise ValueError(f"unexpected discovery type {kind!r}")
    if "enum" in prop:
        out["enum"] = list(prop["enum"])
    return out


@functools.cache
def _validator(definition: str) -> Draft7Validator:
    return Draft7Validator({**chat_json_schema(), "$ref": f"#/definitions/{definition}"})


def _message_problems(message: Any, path: str) -> list[str]:
    problems = _schema_problems(message, "Message", path)
    if not isinstance(message, dict):
        return problems
    size = len(json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > MAX_MESSAGE_BYTES:
        problems.append(f"{path}: message is {size} bytes as UTF-8 JSON; the limit is {MAX_MESSAGE_BYTES}")
    for i, card_with_id in enumerate(_dicts(message.get("cardsV2"))):
        problems += _widget_count_problems(card_with_id.get("card"), f"{path}.cardsV2[{i}].card")
    return problems


def _schema_problems(instance: Any, definition: str, path: str) -> list[str]:
    errors = sorted(_validator(definition).iter_errors(instance), key=lambda e: _join("", e.absolute_path))
    return [f"{_join(path, error.absolute_path)}: {_describe(error)}" for error in errors]


def _describe(error: Any) -> str:
    """jsonschema's message, or a plain one for the exactly-one rule; cut short for huge instances."""
    names = EXACTLY_ONE.get(error.schema.get("title", "")) if error.validator == "oneOf" else None
    if names and isinstance(error.instance, dict):
        noun, field = names
        kinds = [option["required"][0] for option in error.validator_value]
        present = [kind for kind in kinds if kind in error.instance]
        if present:
            return f"{noun} sets {len(present)} {field}s ({', '.join(present)}); exactly one is allowed"
        return f"{noun} sets no {field}; expected exactly one of {', '.join(kinds)}"
    message: str = error.message
    return message if len(message) <= 300 else message[:297] + "..."


def _widget_count_problems(card: Any, path: str) -> list[str]:
    count = sum(1 for _ in _widgets(card))
    if count > MAX_CARD_WIDGETS:
        return [f"{path}: card has {count} widgets; the limit is {MAX_CARD_WIDGETS}"]
    return []


def _widgets(card: Any) -> Iterator[dict[str, Any]]:
    """Every widget of a card: in sections, and nested in columns and carousels."""
    if not isinstance(card, dict):
        return
    for section in _dicts(card.get("sections")):
        for widget in _dicts(section.get("widgets")):
            yield widget
            columns = widget.get("columns")
            if isinstance(columns, dict):
                for column in _dicts(columns.get("columnItems")):
                    yield from _dicts(column.get("widgets"))
            carousel = widget.get("carousel")
            if isinstance(carousel, dict):
                for item in _dicts(carousel.get("carouselCards")):
                    yield from _dicts(item.get("widgets"))
                    yield from _dicts(item.get("footerWidgets"))


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    """The objects in a list (nothing when it is not a list: the schema check reports that)."""
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def _join(path: str, parts: Sequence[Any]) -> str:
    return path + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts)
