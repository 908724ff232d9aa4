"""The one formatter: a team's report as a Chat message (a cardsV2 card and text).

`/score`, Refresh and the scheduled post all call `team_message`, so a Space
sees the same card whichever way it arrived. Webhook posts pass no refresh
function, because a webhook cannot receive clicks: their buttons only open links.

Each KPI says what its change is against ("▲ +12 vs last post Mon 10:00 ·
▼ −30 vs 7 days ago") and draws the last 14 days, one point a day, "·" for a
day without a reading; with fewer than two such days it says "no history yet".

The card says once what the index is ("Index = Σ weight × open items · lower
is better"); each KPI then shows its index with its status as a word and a
colour beside its target (two columns), its breakdown, the age of its oldest
open item, how many items are new since the team's previous post, and its
heaviest open items, each linked to its record, the new ones marked "new". A
card that would pass Chat's limits (100 widgets, 32,000 bytes) drops the
columns first, then shortens breakdowns and item lists.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import MAX_TOP_ITEMS, Config, KpiConfig, TeamConfig
from bot.overview import KpiGlance, TeamGlance
from bot.reports import SPARK_DAYS, KpiReport, TeamReport
from bot.sources import FetchResult
from bot.sources.base import Item
from scoring import CategoryLine, Status, Trend, trend_of

log = logging.getLogger(__name__)
Message = dict[str, Any]
Widget = dict[str, Any]

STATUS_LOOK = {
    Status.GOOD: ("🟢", "Good", "#188038"),
    Status.WARNING: ("🟡", "Warning", "#b06000"),
    Status.BAD: ("🔴", "Bad", "#d93025"),
    Status.UNKNOWN: ("⚪", "No data", "#5f6368"),
}
TREND_COLOUR = {Trend.BETTER: "#188038", Trend.WORSE: "#d93025", Trend.SAME: "#5f6368"}
"""A change's colour says whether it made the KPI better or worse, whichever way its arrow points."""
MAX_CATEGORY_LINES = 25
SHORTER = ((MAX_CATEGORY_LINES, MAX_TOP_ITEMS), (10, MAX_TOP_ITEMS), (3, MAX_TOP_ITEMS), (3, 2), (3, 1), (0, 1), (0, 0))
"""(category lines, top items) a KPI shows, as a card is shortened to fit Chat's size limit."""
MAX_CARD_WIDGETS = 100
MAX_CATEGORY_NAME = 80
MAX_ITEM_TITLE = 60
MAX_LINK = 1000
"""A longer item link is left out (the title is still listed)."""
EXPLAINED = "Index = Σ weight × open items"
MIXED = "Index = Σ weight × items, as each KPI says"
VALUES = "Each KPI is a number its source reports"
NOTHING_EARLIER = "nothing earlier to compare with"
MAX_TEXT = 4000
MAX_MESSAGE_BYTES = 30_000
"""Chat takes messages up to 32,000 bytes; the rest is margin for the reply's wrapping."""
HELP_TEAM_STEPS = (50, 20, 5, 0)
MAX_USER_TEXT = 60
"""The most of a user's own words a reply echoes (an unknown team name)."""
MAX_ESCAPED_CHAR_BYTES = 12
"""The most bytes one character takes in `message_bytes` (an astral character as two \\u escapes)."""
SLOT = ("\ue000", "\ue001")
"""The characters around a slot's key in a card made with ``slots`` (`slot`)."""
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def team_message(
    report: TeamReport,
    *,
    refresh_function: str | None,
    text: str | None = None,
    settings: bool = False,
    slots: bool = False,
) -> Message:
    """The message for a team's report; ``text`` replaces the plain-text fallback; ``settings`` adds a
    Settings button that opens the team's settings dialog (with the Refresh button: only where the app
    receives clicks).

    A KPI with a trend chart in ``report.charts`` shows the chart instead of
    the text sparkline. With more widgets than Chat allows, the
    index and target stand one under the other instead of in columns; then
    breakdowns (25 categories a KPI, then 10, 3, none) and item lists (all,
    then 2, 1, none) are shortened, and last the charts dropped, until the
    message fits Chat's size limit.

    ``slots``: the card's time and the N of each "read N s ago" are left as
    slots (`slot`), for `bot.kept_cards` to fill in as the clock moves.
    """
    for charts in (report.charts, {}):  # without charts the second pass ends as the first
        for columns in (True, False):
            for lines, items in SHORTER:
                layout = _Layout(columns, lines, items, charts, slots)
                message = _team_message(report, refresh_function, text, layout, settings)
                if widget_count(message) > MAX_CARD_WIDGETS:
                    break  # shorter lists do not make fewer widgets: drop the columns
                if message_bytes(message) <= MAX_MESSAGE_BYTES:
                    return message
    return message


def widget_count(message: Message) -> int:
    """The most widgets in one card of ``message``, those nested in columns included."""
    counts = [0]
    for card in message.get("cardsV2", []):
        widgets = [w for section in card["card"].get("sections", []) for w in section.get("widgets", [])]
        nested = [
            w for widget in widgets for c in widget.get("columns", {}).get("columnItems", []) for w in c["widgets"]
        ]
        counts.append(len(widgets) + len(nested))
    return max(counts)


def message_bytes(message: Message) -> int:
    """The size of ``message`` as sent: JSON with non-ASCII escaped (the larger of the two encodings)."""
    return len(json.dumps(message, separators=(",", ":")))


@dataclass(frozen=True)
class Encoded:
    """A message already encoded as JSON text (as `message_bytes` encodes it) and checked by `within_limits`:
    a reply sends it as it is."""

    json: str


@dataclass(frozen=True)
class _Layout:
    columns: bool
    lines: int
    items: int
    charts: Mapping[str, str] = field(default_factory=dict)
    slots: bool = False


def _team_message(
    report: TeamReport, refresh_function: str | None, text: str | None, layout: _Layout, settings: bool
) -> Message:
    team, zone = report.team, ZoneInfo(report.zone)
    icon, label, _ = STATUS_LOOK[report.status]
    header = {
        "title": f"{icon} {team.name}",
        "subtitle": f"{label} · {slot('') if layout.slots else local_time(report.generated_at, zone)}",
    }
    sections = [{"widgets": [_paragraph(f"<i>{escape(explanation(report))}</i>")]}]
    sections += [_kpi_section(k, report.generated_at, zone, layout, _shared_direction(report)) for k in report.kpis]
    buttons = _buttons(team, report, refresh_function, settings)
    if buttons:
        sections.append({"widgets": [{"buttonList": {"buttons": buttons}}]})
    card = {"cardId": f"score-{team.id}", "card": {"header": header, "sections": sections}}
    fallback = text if text is not None else plain_text(report, slots=layout.slots)
    return {"text": fallback[:MAX_TEXT], "cardsV2": [card]}


def explanation(report: TeamReport) -> str:
    """What the index is, said once a card: "Index = Σ weight × open items · lower is better" (with KPIs of
    other kinds, each says what it measures)."""
    shared = _shared_direction(report)
    kinds = {k.kpi.kind for k in report.kpis}
    what = EXPLAINED if kinds == {"count"} else (MIXED if kinds - {"value"} else VALUES)
    return f"{what} · {shared or 'each KPI says which way is better'}"


def kind_words(kpi: KpiConfig) -> str:
    """What a KPI measures, briefly: "open items", "closed in the last 7 days", "open over 30 days", "in ms"."""
    days = f"{kpi.days} days" if kpi.days != 1 else "day"
    words = {
        "count": "open items",
        "closed": f"closed in the last {days}",
        "aged": f"open over {days}" if kpi.days != 1 else "open over a day",
        "value": f"in {kpi.unit}" if kpi.unit else "a value",
    }
    return words[kpi.kind]


def value_text(number: float, unit: str | None) -> str:
    """A number with its unit: "245 ms", "87.5%", "3 incidents" (a bare number without one)."""
    if not unit:
        return _num(number)
    return f"{_num(number)}{unit}" if unit == "%" else f"{_num(number)} {unit}"


def _amount(kpi: KpiConfig, number: float) -> str:
    """A KPI's index, or a value KPI's number with its unit."""
    return _num(number) if kpi.counted else value_text(number, kpi.unit)


def _shared_direction(report: TeamReport) -> str | None:
    """ "lower is better" or "higher is better" when every KPI of the report agrees, else None."""
    directions = {_direction(k.kpi.lower_is_better) for k in report.kpis}
    return directions.pop() if len(directions) == 1 else None


def _direction(lower_is_better: bool) -> str:
    return "lower is better" if lower_is_better else "higher is better"


def plain_text(report: TeamReport, *, slots: bool = False) -> str:
    """The text fallback (webhooks, notifications): a line for the team, what the index is, a line per KPI
    with its status in words (and its changes and trend, when it has them), and its top items with links;
    without the items when that is too long. ``slots`` as for `team_message`."""
    text = _plain_text(report, True, slots)
    return text if len(text) <= MAX_TEXT else _plain_text(report, False, slots)


def _plain_text(report: TeamReport, items: bool, slots: bool) -> str:
    icon, label, _ = STATUS_LOOK[report.status]
    lines = [f"{icon} *{report.team.name}*: {label}", explanation(report)]
    now, zone = report.generated_at, ZoneInfo(report.zone)
    for kpi in report.kpis:
        if kpi.score is None:
            lines.append(f"• {kpi.kpi.name}: no data yet ({kpi.stale_reason})")
            continue
        notes = [f"target {_amount(kpi.kpi, kpi.kpi.target)}"]
        if kpi.score.change is not None or kpi.score.week_change is not None:
            notes.append(_comparison(kpi, report.generated_at, zone))
        if kpi.score.sparkline:
            notes.append(_trend(kpi.score.sparkline))
        stale = f" (stale: {kpi.stale_reason})" if kpi.stale_reason else ""
        if kpi.cached:
            notes.append(_cache_note(kpi, now, slots).removeprefix(" · "))
        k_icon, k_label, _ = STATUS_LOOK[kpi.score.status]
        facts = "".join(f" · {fact}" for fact in _facts(kpi, now, zone, brief=True))
        index = f"{_amount(kpi.kpi, kpi.score.index)} ({'; '.join(notes)}) {k_icon} {k_label}"
        name = kpi.kpi.name if kpi.kpi.kind == "count" else f"{kpi.kpi.name} ({kind_words(kpi.kpi)})"
        lines.append(f"• {name}: {index}{facts}{stale}")
        if items and kpi.fetch:
            lines.extend(f"    {_item_text(item, kpi, now)}" for item in kpi.fetch.items)
    return "\n".join(lines)


def _comparisons(report: KpiReport, now: datetime, zone: ZoneInfo) -> list[tuple[Trend, str]]:
    """What the KPI's value compares against, each with what the change means by the KPI's direction."""
    score = report.score
    parts = []
    if score and score.change is not None and report.previous_at:
        post = "last post " if report.since_post else ""
        when = _when(report.previous_at, now, zone)
        parts.append((score.trend(score.change), f"{_change(score.change, _unit(report.kpi))} vs {post}{when}"))
    if score and score.week_change is not None:
        parts.append((score.trend(score.week_change), f"{_change(score.week_change, _unit(report.kpi))} vs 7 days ago"))
    return parts


def _comparison(report: KpiReport, now: datetime, zone: ZoneInfo) -> str:
    """The comparisons in words: "▲ +12 vs last post Mon 10:00 · ▼ −30 vs 7 days ago"."""
    return " · ".join(text for _, text in _comparisons(report, now, zone)) or NOTHING_EARLIER


def _comparison_html(report: KpiReport, now: datetime, zone: ZoneInfo) -> str:
    """The comparisons for a card, each in the colour of better, worse or no change."""
    parts = _comparisons(report, now, zone)
    return " · ".join(_coloured(trend, escape(text)) for trend, text in parts) or NOTHING_EARLIER


def _coloured(trend: Trend, html: str) -> str:
    return f'<font color="{TREND_COLOUR[trend]}">{html}</font>'


def _cache_note(report: KpiReport, now: datetime, slots: bool) -> str:
    """The age of a KPI shown from its stored reading (``/score`` within ``cache_seconds``), else nothing;
    with ``slots``, the KPI's `slot` in place of a number of seconds."""
    if not (report.cached and report.as_of):
        return ""
    seconds = max(0, int((now - report.as_of).total_seconds()))
    if seconds < 60:
        return f" · read {slot(report.kpi.id) if slots else seconds} s ago"
    return f" · read {_age(now - report.as_of)} ago"


def slot(key: str) -> str:
    """What a card made with ``slots`` shows in place of a text that moves with the clock: ``key`` between two
    private-use characters; a KPI's id for the seconds since its reading, "" for the card's time."""
    return f"{SLOT[0]}{key}{SLOT[1]}"


def _trend(sparkline: str) -> str:
    return f"{SPARK_DAYS} days {sparkline}" if sparkline else "no history yet"


def _sparkline_html(sparkline: str, change: float | None, lower_is_better: bool) -> str:
    """The sparkline in italics, in the colour of what its days did to the KPI (better, worse, the same);
    no colour before there are two days to compare."""
    text = f"<i>{escape(_trend(sparkline))}</i>"
    return text if change is None else _coloured(trend_of(change, lower_is_better), text)


def _kpi_section(
    report: KpiReport, now: datetime, zone: ZoneInfo, layout: _Layout, shared: str | None
) -> dict[str, Any]:
    kpi, score = report.kpi, report.score
    widgets: list[Widget] = []
    if score is None:
        reason = escape(report.stale_reason or "not read yet")
        widgets.append({"textParagraph": {"text": f"<b>No data yet.</b> {reason}"}})
        return {"header": escape(kpi.name), "widgets": widgets}
    icon, label, colour = STATUS_LOOK[score.status]
    index = f'<font color="{colour}"><b>{escape(_amount(kpi, score.index))}</b> {icon} {label}</font>'
    warning = f"warning {'up' if kpi.lower_is_better else 'down'} to {_amount(kpi, kpi.warning)}"
    what = "Index" if kpi.counted else "Value"
    if not shared:
        warning += f" · {_direction(kpi.lower_is_better)}"
    if layout.columns:
        left = {"decoratedText": {"topLabel": f"{what}{_cache_note(report, now, layout.slots)}", "text": index}}
        right = _decorated("Target", f"<b>{escape(_amount(kpi, kpi.target))}</b>", warning, wrap=False)
        widgets.append({"columns": {"columnItems": [_column(left), _column(right)]}})
    else:
        widgets.append(
            _decorated(
                f"{what}{_cache_note(report, now, layout.slots)}",
                f"{index} · target <b>{escape(_amount(kpi, kpi.target))}</b>",
                warning,
            )
        )
    image = layout.charts.get(kpi.id)
    if image:
        widgets.append({"image": {"imageUrl": image, "altText": "Trend chart: the index day by day"}})
    if report.stale_reason and report.as_of:
        widgets.append(
            _decorated(
                "⚠ Could not refresh",
                escape(report.stale_reason),
                f"Last known value, read {_age(now - report.as_of)} ago ({local_time(report.as_of, zone)})",
            )
        )
    trend = [] if image else [_sparkline_html(score.sparkline, score.spark_change, score.lower_is_better)]
    parts = [_comparison_html(report, now, zone), *trend]
    if kpi.kind != "count":
        parts.insert(0, f"<i>{escape(kind_words(kpi).capitalize())}</i>")
    if kpi.counted:
        parts.append(_breakdown(score.breakdown, layout.lines, _nothing(kpi)))
    facts = _facts(report, now, zone)
    if facts:
        parts.append(escape(" · ".join(facts)))
    items = report.fetch.items if report.fetch else ()
    shown = [_item_html(item, report, now) for item in items[: layout.items]]
    if len(items) > len(shown):
        shown.append(f"… and {len(items) - len(shown)} more")
    if shown:
        parts.append("<b>Top items</b><br>" + "<br>".join(shown))
    widgets.append({"textParagraph": {"text": "<br>".join(parts)}})
    return {"header": escape(kpi.name), "widgets": widgets}


def _decorated(top: str, html: str, bottom: str, wrap: bool = True) -> Widget:
    """A decoratedText; ``wrap`` False for a short text (the setting costs bytes on every KPI)."""
    widget = {"topLabel": top, "text": html, "bottomLabel": bottom}
    return {"decoratedText": widget | {"wrapText": True} if wrap else widget}


def _column(widget: Widget) -> dict[str, Any]:
    """A column of one widget, sized and aligned as Chat does by default (each setting costs bytes 40 times)."""
    return {"widgets": [widget]}


def _facts(report: KpiReport, now: datetime, zone: ZoneInfo, brief: bool = False) -> list[str]:
    """ "oldest: 43 d", "2 new since last post Mon 10:00" (``brief``: "2 new"): what the KPI's read found."""
    result, facts = report.fetch, []
    if result is None:
        return []
    if result.oldest is not None and report.kpi.kind != "closed":  # a closed KPI's items are not open
        among = f" {', '.join(result.oldest_among)}" if result.oldest_among else ""
        facts.append(f"oldest{among}: {age(result.oldest, now)}")
    if result.created_since is not None and report.new_since is not None:
        since = "" if brief else f" since last post {_when(report.new_since, now, zone)}"
        closed = f" · {result.closed_since} closed" if result.closed_since is not None else ""
        facts.append(f"{result.created_since} new{closed}{since}")
    return facts


def _is_new(item: Item, report: KpiReport) -> bool:
    return report.new_since is not None and item.created is not None and item.created > report.new_since


def _item_title(item: Item) -> str:
    title = " ".join(item.title.split()) or "(untitled)"
    return title if len(title) <= MAX_ITEM_TITLE else title[: MAX_ITEM_TITLE - 1] + "…"


def _item_facts(item: Item, now: datetime) -> list[str]:
    """The item's category and age."""
    return [item.category, *([age(item.created, now)] if item.created is not None else [])]


def _link(item: Item) -> str | None:
    return item.link if item.link and len(item.link) <= MAX_LINK else None


def _item_html(item: Item, report: KpiReport, now: datetime) -> str:
    """An item on the card: its linked title, then its category, age and "new" (plain ASCII around the
    title: a card lists up to 200 items, and every escaped character counts against the size limit)."""
    title, link = escape(_item_title(item)), _link(item)
    named = f'<a href="{escape(link)}">{title}</a>' if link else title
    facts = [escape(fact) for fact in _item_facts(item, now)] + (["<b>new</b>"] if _is_new(item, report) else [])
    return f"{named} ({', '.join(facts)})"


def _item_text(item: Item, report: KpiReport, now: datetime) -> str:
    """An item in Chat's text syntax: ``<url|title>`` (a title cannot hold ``|`` or ``>`` there)."""
    title, link = _item_title(item), _link(item)
    named = f"<{link}|{title.replace('|', '/').replace('>', '›').replace('<', '‹')}>" if link else title
    facts = _item_facts(item, now) + (["new"] if _is_new(item, report) else [])
    return f"- {named} ({', '.join(facts)})"


def items_line(result: FetchResult, now: datetime, oldest: bool = True) -> str:
    """The top items and (with ``oldest``) the oldest of one read, on one line (for ``check``)."""
    listed = "; ".join(
        f"{_item_title(i)} ({i.category}{', ' + age(i.created, now) if i.created else ''})" for i in result.items
    )
    parts = [f"top: {listed}" if listed else "top: none listed"]
    if result.oldest is not None and oldest:
        among = f" {', '.join(result.oldest_among)}" if result.oldest_among else ""
        parts.append(f"oldest{among}: {age(result.oldest, now)}")
    return " · ".join(parts)


def age(created: datetime, now: datetime) -> str:
    """How long ago ``created`` was, briefly: "5 h" within a day, else "12 d"."""
    hours = max(0, int((now - created).total_seconds() // 3600))
    return f"{hours} h" if hours < 24 else f"{hours // 24} d"


def _nothing(kpi: KpiConfig) -> str:
    """What a KPI with nothing counted says: "No open items.", "No items closed in the last 7 days."."""
    if kpi.kind == "closed":
        return f"No items {kind_words(kpi)}."
    return (
        "No open items over " + kind_words(kpi).removeprefix("open over ") + "."
        if kpi.kind == "aged"
        else "No open items."
    )


def _breakdown(lines: tuple[CategoryLine, ...], limit: int, nothing: str) -> str:
    """Weighted categories (counted ones first), then the unweighted ones; each kind is cut to ``limit``
    lines on its own, so unweighted categories are never folded into a count of weighted ones. ``nothing``
    when no category holds an item."""
    if not any(line.count for line in lines):
        return nothing
    weighted = sorted((line for line in lines if line.weight is not None), key=lambda line: not line.count)
    unweighted = [line for line in lines if line.weight is None]
    shown = _cut(weighted, limit, "weighted") + _cut(unweighted, limit, "unweighted")
    return "<br>".join(shown)


def _cut(lines: list[CategoryLine], limit: int, kind: str) -> list[str]:
    shown = [_category(line) for line in lines[:limit]]
    rest = lines[limit:]
    if rest:
        items = sum(line.count for line in rest)
        shown.append(
            f"… {'and ' if shown else ''}{len(rest)} {'more ' if shown else ''}{kind} categories ({items} items)"
        )
    return shown


def _category(line: CategoryLine) -> str:
    category = (
        line.category if len(line.category) <= MAX_CATEGORY_NAME else line.category[: MAX_CATEGORY_NAME - 1] + "…"
    )
    name = escape(category)
    if line.weight is None:
        return f"{name}: {line.count} <i>(unweighted)</i>"
    return f"{name}: {line.count} × {_num(line.weight)} = {_num(line.points)}"


def _buttons(
    team: TeamConfig, report: TeamReport, refresh_function: str | None, settings: bool
) -> list[dict[str, Any]]:
    buttons: list[dict[str, Any]] = []
    if refresh_function:
        parameters = [{"key": "action", "value": "refresh"}, {"key": "team", "value": team.id}]
        action = {"function": refresh_function, "parameters": parameters}
        buttons.append({"text": "Refresh", "onClick": {"action": action}})
    if refresh_function and settings:
        parameters = [{"key": "action", "value": "settings"}, {"key": "team", "value": team.id}]
        action = {"function": refresh_function, "interaction": "OPEN_DIALOG", "parameters": parameters}
        buttons.append({"text": "Settings", "onClick": {"action": action}})
    crm_url = team.crm_url or next((k.kpi.crm_url for k in report.kpis if k.kpi.crm_url), None)
    if crm_url:
        buttons.append({"text": "Open in CRM", "onClick": {"openLink": {"url": crm_url}}})
    return buttons


def help_message(config: Config, note: str | None = None) -> Message:
    """The help card: what `/score` does and which teams exist (as many as fit Chat's size limit)."""
    total = len(config.teams)
    for shown in (total, *(count for count in HELP_TEAM_STEPS if count < total)):
        message = _help_message(config, note, shown)
        if message_bytes(message) <= MAX_MESSAGE_BYTES:
            break
    return message


def _help_message(config: Config, note: str | None, shown: int) -> Message:
    commands = "<br>".join(
        [
            "<b>/score</b> — the index of this Space's team",
            "<b>/score TEAM</b> — the index of another team",
            "<b>/score all</b> — every team at a glance",
            "<b>/score help</b> — this help",
        ]
        + (["<b>/score settings</b> — this Space's team's settings"] if config.settings.editable else [])
        + (
            ["<b>/score link TEAM</b>, <b>/score unlink</b> — give this Space to a team"]
            if config.settings.link == "editors"
            else []
        )
    )
    teams, rest = config.teams[:shown], len(config.teams) - shown
    more = [f"… and {rest} more teams"] if rest else []
    team_lines = [f"<b>{escape(t.id)}</b> — {escape(t.name)}" for t in teams] + more
    widgets: list[Widget] = []
    if note:
        widgets.append({"textParagraph": {"text": escape(note)}})
    widgets.append({"textParagraph": {"text": commands}})
    sections = [
        {"header": "Commands", "widgets": widgets},
        {"header": "Teams", "widgets": [_paragraph("<br>".join(team_lines))]},
    ]
    card = {"header": {"title": "Scorebot", "subtitle": "Your team's KPIs, in this Space"}, "sections": sections}
    text = (note + "\n" if note else "") + "Teams: " + ", ".join([t.id for t in teams] + more)
    return {"text": text, "cardsV2": [{"cardId": "help", "card": card}]}


def user_text(text: str, limit: int = MAX_USER_TEXT) -> str:
    """Text a user typed, fit to be shown back: lone surrogates replaced, at most ``limit`` characters."""
    text = _LONE_SURROGATE.sub("\ufffd", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def within_limits(message: Message, limit: int = MAX_MESSAGE_BYTES) -> Message:
    """``message`` as Chat accepts it: every string valid UTF-8, and at most ``limit`` bytes (`message_bytes`).

    The formatters shorten their own cards to fit; this is the guard every
    reply passes last. A message still too large is sent as its text alone, cut.
    """
    clean: Message = message if _is_valid_unicode(message) else _valid_unicode(message)
    size = message_bytes(clean)
    if size <= limit:
        return clean
    log.warning("a reply of %d bytes is over Chat's limit: sending its text alone", size)
    text = str(clean.get("text") or "This answer is too long to show in Chat.")
    return {"text": user_text(text, max(1, (limit - 100) // MAX_ESCAPED_CHAR_BYTES))}  # 100: the JSON around it


def _is_valid_unicode(message: Message) -> bool:
    """Whether no string in ``message`` (keys too) holds a lone surrogate: one pass in C, not a walk in Python."""
    try:
        json.dumps(message, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def _valid_unicode(value: Any) -> Any:
    """``value`` with every string in it (keys too) free of lone surrogates, which UTF-8 cannot carry."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_valid_unicode(key): _valid_unicode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_valid_unicode(item) for item in value]
    return value


def welcome_message(config: Config, team: TeamConfig | None, unlinked: str | None = None) -> Message:
    """The card posted when Scorebot is added to a Space; ``unlinked`` (HTML) says how a Space without a team
    gets one, in place of the default line."""
    if team:
        linked = f"This Space is linked to <b>{escape(team.name)}</b> ({escape(team.id)})."
        if team.schedule:
            linked += f" Scheduled updates: <code>{escape(team.schedule)}</code> ({team.timezone or config.timezone})."
    else:
        linked = (
            unlinked or "This Space is not linked to a team yet: use <b>/score TEAM</b>, or ask an admin to add it."
        )
    about = "I keep this Space up to date on its team's KPIs. Type <b>/score</b> for the current index."
    card = {
        "header": {"title": "Hello from Scorebot"},
        "sections": [{"widgets": [_paragraph(about), _paragraph(linked)]}],
    }
    text = "Scorebot is here. Type /score for your team's current index."
    return {"text": text, "cardsV2": [{"cardId": "welcome", "card": card}]}


def _paragraph(html: str) -> Widget:
    return {"textParagraph": {"text": html}}


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")


def _change(delta: float | None, unit: str | None = None) -> str:
    if not delta:
        return "= no change"
    return f"▲ +{value_text(delta, unit)}" if delta > 0 else f"▼ −{value_text(-delta, unit)}"


def _unit(kpi: KpiConfig) -> str | None:
    return None if kpi.counted else kpi.unit


def _when(moment: datetime, now: datetime, zone: ZoneInfo) -> str:
    """A recent moment briefly: "today 10:00", "Mon 10:00" within a week, else "Nov 20 10:00"."""
    local, today = moment.astimezone(zone), now.astimezone(zone).date()
    if local.date() == today:
        return f"today {local:%H:%M}"
    if today - local.date() < timedelta(days=7):
        return f"{local:%a %H:%M}"
    return f"{local:%b} {local.day} {local:%H:%M}"


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    """``moment`` as the card shows its time: "2026-11-26 10:00 EST"."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def _age(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


OVERVIEW_ONE_PAGE = 100
"""Up to this many teams, `/score all` is one card if it fits (one widget a team: Chat allows 100 a card)."""
OVERVIEW_PAGE = 25
"""Otherwise it shows this many teams a page."""
OVERVIEW_STEPS = ((3, True), (1, True), (1, False))
"""How much of each team a row shows, tried in turn until the card fits: (KPIs, with their names)."""


def overview_page_size(teams: Sequence[TeamGlance], now: datetime, button_function: str | None) -> int:
    """How many teams a page of the overview shows: all of them if they fit one card, else `OVERVIEW_PAGE`."""
    if len(teams) <= OVERVIEW_ONE_PAGE:
        kpis, named = OVERVIEW_STEPS[-1]
        single = _overview_message(teams, teams, now, 0, 1, kpis, named, button_function)
        if message_bytes(single) <= MAX_MESSAGE_BYTES:
            return max(len(teams), 1)
    return OVERVIEW_PAGE


def overview_message(
    teams: Sequence[TeamGlance], now: datetime, *, page: int = 0, button_function: str | None
) -> Message:
    """The `/score all` card: one row a team (status, index against its target, change against 7 days ago),
    in the order given, with a button that shows the team's full card.

    Up to 100 teams share one card when they fit; otherwise pages of 25 with
    Previous/Next buttons. Rows show fewer KPIs, then no KPI names, until the
    card fits Chat's limits.
    """
    size = overview_page_size(teams, now, button_function)
    pages = max(1, -(-len(teams) // size))
    page = min(max(page, 0), pages - 1)
    shown = teams[page * size : (page + 1) * size]
    for kpis, named in OVERVIEW_STEPS:
        message = _overview_message(teams, shown, now, page, pages, kpis, named, button_function)
        if message_bytes(message) <= MAX_MESSAGE_BYTES:
            break
    return message


def _overview_message(
    teams: Sequence[TeamGlance],
    shown: Sequence[TeamGlance],
    now: datetime,
    page: int,
    pages: int,
    kpis: int,
    named: bool,
    button_function: str | None,
) -> Message:
    rows = [_overview_row(team, now, kpis, named, page if pages > 1 else None, button_function) for team in shown]
    sections: list[dict[str, Any]] = [{"header": _overview_ages(shown, now), "widgets": rows}]
    paging = _paging_buttons(page, pages, len(teams), button_function)
    if paging:
        sections.append({"widgets": [{"buttonList": {"buttons": paging}}]})
    subtitle = f"{len(teams)} teams, each against its own target and its own past week"
    if pages > 1:
        subtitle += f" · page {page + 1} of {pages}"
    counts = Counter(team.status for team in teams)
    worst_first = (Status.UNKNOWN, Status.BAD, Status.WARNING, Status.GOOD)
    summary = ", ".join(f"{counts[s]} {STATUS_LOOK[s][1].lower()}" for s in worst_first if counts[s])
    card = {
        "cardId": "overview",
        "card": {"header": {"title": "All teams", "subtitle": subtitle}, "sections": sections},
    }
    return {"text": f"All teams: {summary} (from stored readings)", "cardsV2": [card]}


def _overview_ages(shown: Sequence[TeamGlance], now: datetime) -> str:
    times = [t.read_at for t in shown if t.read_at]
    if not times:
        return "From stored readings: none yet"
    newest, oldest = _age(now - max(times)), _age(now - min(times))
    span = newest if newest == oldest else f"{newest} to {oldest}"
    missing = sum(1 for t in shown if t.read_at is None)
    unread = f"; {missing} {'team' if missing == 1 else 'teams'} not fully read yet" if missing else ""
    return f"From stored readings, {span} old{unread}"


def _overview_row(
    team: TeamGlance, now: datetime, kpis: int, named: bool, page: int | None, button_function: str | None
) -> Widget:
    icon, label, colour = STATUS_LOOK[team.status]
    status = f'<font color="{colour}">{label}</font>' if named else label
    lines = [f"{icon} <b>{escape(team.team.name)}</b> · {status}"]
    ordered = team.worst_first()
    lines += [_glance_line(k, named) for k in ordered[:kpis]]
    if len(ordered) > kpis:
        lines.append(f"… and {len(ordered) - kpis} more KPIs")
    read = f"read {_age(now - team.read_at)} ago" if team.read_at else "not every KPI read yet"
    item: dict[str, Any] = {"text": "<br>".join(lines), "bottomLabel": read, "wrapText": True}
    if button_function:
        parameters = [{"key": "action", "value": "overview-team"}, {"key": "team", "value": team.team.id}]
        if page is not None:
            parameters.append({"key": "page", "value": str(page)})
        item["button"] = {
            "text": "Show",
            "onClick": {"action": {"function": button_function, "parameters": parameters}},
        }
    return {"decoratedText": item}


def _glance_line(kpi: KpiGlance, named: bool) -> str:
    name = f"{escape(kpi.kpi.name)}: " if named else ""
    if kpi.score is None:
        return f"{name}no reading yet"
    week = kpi.score.week_change
    change = (
        _coloured(kpi.score.trend(week), escape(f"{_change(week, _unit(kpi.kpi))} vs 7 days ago"))
        if week is not None
        else "no reading 7 days ago"
    )
    index, target = escape(_amount(kpi.kpi, kpi.score.index)), escape(_amount(kpi.kpi, kpi.kpi.target))
    return f"{name}<b>{index}</b> (target {target}) · {change}"


def _paging_buttons(page: int, pages: int, total: int, function: str | None) -> list[dict[str, Any]]:
    if pages == 1 or not function:
        return []
    size = OVERVIEW_PAGE
    buttons = []
    if page > 0:
        buttons.append(_overview_button(f"Previous {size}", page - 1, function))
    if page < pages - 1:
        buttons.append(_overview_button(f"Next {min(size, total - (page + 1) * size)}", page + 1, function))
    return buttons


def _overview_button(text: str, page: int, function: str) -> dict[str, Any]:
    parameters = [{"key": "action", "value": "overview"}, {"key": "page", "value": str(page)}]
    return {"text": text, "onClick": {"action": {"function": function, "parameters": parameters}}}


def with_overview_button(message: Message, page: int, function: str) -> Message:
    """``message`` (a team card) with an "All teams" button back to the overview's ``page``, in its
    last button row (or a row of its own), so the card keeps its widget count."""
    message = copy.deepcopy(message)
    card = message["cardsV2"][0]["card"]
    sections = card.setdefault("sections", [])
    last = sections[-1]["widgets"][-1] if sections and sections[-1].get("widgets") else {}
    button = _overview_button("All teams", page, function)
    if "buttonList" in last:
        last["buttonList"]["buttons"].append(button)
    else:
        sections.append({"widgets": [{"buttonList": {"buttons": [button]}}]})
    return message
