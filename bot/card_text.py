"""A card message as terminal text, for `python -m bot preview` and `history`, or as one line for the console."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape
from itertools import zip_longest
from typing import Any

_TAG = re.compile(r"<(?!/?a[ >])[^>]+>")
"""Any tag but a link's."""
_LINK = re.compile(r'<a href="([^"]*)">(.*?)</a>')


def _plain(html: str) -> str:
    """Card HTML as text: a line per ``<br>``, a link as its text then its address in ``<>``."""
    text = _TAG.sub("", html.replace("<br>", "\n"))
    return unescape(_LINK.sub(lambda m: f"{m.group(2)} <{m.group(1)}>", text))


def message_as_text(message: dict[str, Any]) -> str:
    """Every card of ``message`` as indented lines, then its text fallback."""
    lines: list[str] = []
    for card in message.get("cardsV2", []):
        lines.extend(_card_lines(card["card"]))
    lines.append("text: " + message.get("text", "").replace("\n", "\n      "))
    return "\n".join(lines)


def dialog_as_text(card: dict[str, Any]) -> str:
    """A dialog's card as indented lines: its inputs with their values, and the footer's buttons."""
    return "\n".join(_card_lines(card))


def _card_lines(card: dict[str, Any]) -> list[str]:
    header = card.get("header", {})
    lines = [f"┌ {header.get('title', '')}"]
    if header.get("subtitle"):
        lines.append(f"│ {header['subtitle']}")
    for section in card.get("sections", []):
        lines.append("├─" + (f" {_plain(section['header'])}" if section.get("header") else ""))
        for widget in section.get("widgets", []):
            lines.extend(f"│ {line}" for line in _widget_lines(widget))
    footer = card.get("fixedFooter", {})
    buttons = [footer[key]["text"] for key in ("primaryButton", "secondaryButton") if key in footer]
    if buttons:
        lines.append("├─")
        lines.append("│ " + "  ".join(f"[{text}]" for text in buttons))
    lines.append("└")
    return lines


def message_summary(message: dict[str, Any], limit: int = 160) -> str:
    """One line for ``message``: its text fallback (else its first card's title), at most ``limit`` characters."""
    cards = message.get("cardsV2") or [{}]
    text = message.get("text") or cards[0].get("card", {}).get("header", {}).get("title", "")
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _widget_lines(widget: dict[str, Any]) -> list[str]:
    if "decoratedText" in widget:
        item = widget["decoratedText"]
        parts = [item.get("topLabel"), *_plain(item.get("text", "")).splitlines(), item.get("bottomLabel")]
        return [str(part) for part in parts if part]
    if "textParagraph" in widget:
        return _plain(widget["textParagraph"]["text"]).splitlines()
    if "columns" in widget:
        columns = [
            [line for inner in column.get("widgets", []) for line in _widget_lines(inner)]
            for column in widget["columns"].get("columnItems", [])
        ]
        widths = [max((len(line) for line in column), default=0) for column in columns]
        return [
            "   ".join(part.ljust(width) for part, width in zip(row, widths, strict=True)).rstrip()
            for row in zip_longest(*columns, fillvalue="")
        ]
    if "image" in widget:
        return [f"[chart] {widget['image']['imageUrl']}"]
    if "textInput" in widget:
        field = widget["textInput"]
        return [f"{field.get('label', '')}: [{field.get('value', '')}]"]
    if "selectionInput" in widget:
        return _selection_lines(widget["selectionInput"])
    if "dateTimePicker" in widget:
        picker = widget["dateTimePicker"]
        day = (
            datetime.fromtimestamp(int(picker["valueMsEpoch"]) / 1000, UTC).date().isoformat()
            if "valueMsEpoch" in picker
            else "pick a date"
        )
        return [f"{picker.get('label', '')}: [{day}]"]
    if "buttonList" in widget:
        return ["  ".join(f"[{button['text']}]" for button in widget["buttonList"]["buttons"])]
    return [f"({next(iter(widget))})"]


_MARKS = {"RADIO_BUTTON": ("(•)", "( )"), "CHECK_BOX": ("[x]", "[ ]"), "SWITCH": ("[on] ", "[off]")}


def _selection_lines(field: dict[str, Any]) -> list[str]:
    """A selection input: a dropdown as its label and chosen item, the others one item a line, marked."""
    items = field.get("items", [])
    label = field.get("label", "")
    if field.get("type") == "DROPDOWN":
        chosen = next((item["text"] for item in items if item.get("selected")), "")
        return [f"{label}: [{chosen} ▾]"]
    on, off = _MARKS.get(field.get("type", ""), ("[x]", "[ ]"))
    marked = [f"  {on if item.get('selected') else off} {item['text']}" for item in items]
    return ([f"{label}:"] if label else []) + marked
