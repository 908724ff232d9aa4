"""A card message as terminal text, for `python -m bot preview` and `history`, or as one line for the console."""

from __future__ import annotations

import re
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
        header = card["card"].get("header", {})
        lines.append(f"┌ {header.get('title', '')}")
        if header.get("subtitle"):
            lines.append(f"│ {header['subtitle']}")
        for section in card["card"].get("sections", []):
            lines.append("├─" + (f" {_plain(section['header'])}" if section.get("header") else ""))
            for widget in section.get("widgets", []):
                lines.extend(f"│ {line}" for line in _widget_lines(widget))
        lines.append("└")
    lines.append("text: " + message.get("text", "").replace("\n", "\n      "))
    return "\n".join(lines)


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
    if "buttonList" in widget:
        return ["  ".join(f"[{button['text']}]" for button in widget["buttonList"]["buttons"])]
    return [f"({next(iter(widget))})"]
