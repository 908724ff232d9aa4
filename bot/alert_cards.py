"""Alert messages, in the one formatter's look (`bot.cards`): an alert, a resolve, a reminder, a KPI that
cannot be read (and is readable again), the notices quiet hours held, folded into one message, and a check's
new items.

An alert card says what crossed (the KPI, from which status to which), the
index against the target and the warning level, the heaviest open items when
it was judged (linked to their records), and a button to the team's full
card (Refresh on a Chat API post, which replaces the alert with the card; a
webhook post cannot receive clicks, so it gets the CRM link instead).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from bot.alert_settings import format_duration
from bot.cards import MAX_CARD_WIDGETS, STATUS_LOOK, Message, age, within_limits
from bot.config import KpiConfig, TeamConfig
from bot.store import TransitionRow
from scoring import Status

MAX_ITEMS_SHOWN = 5
"""The items an alert lists (the heaviest open ones when it was judged)."""
MAX_FOLDED = 40
"""The notices one folded message shows in full; the rest are counted."""
MAX_NEW_SHOWN = 10
"""The new items a new-items message lists; the rest are counted ("… and 40 more")."""
FOLDED_BYTES = 24_000
"""The most the folded notices' sections take of a message (Chat allows 32,000 bytes in all)."""
_LEVEL_STATUS = {"warning": Status.WARNING, "bad": Status.BAD, None: Status.GOOD}


@dataclass(frozen=True)
class AlertNotice:
    """One notice as a message shows it."""

    kind: str
    kpi: KpiConfig
    at: datetime
    level: str | None
    index: float | None
    incident: datetime | None = None
    fired_for: timedelta | None = None
    reason: str | None = None
    came_from: str | None = None
    """An alert's status before it crossed (``good``, ``warning``)."""
    items: tuple[dict[str, Any], ...] = ()
    """The heaviest open items when it was judged: ``title``, ``category``, ``created`` (ISO), ``link``."""

    @staticmethod
    def items_json(items: Sequence[Any]) -> str:
        """Items (`bot.sources.base.Item`) as a notice keeps them."""
        return json.dumps(
            [
                {
                    "title": i.title,
                    "category": i.category,
                    "created": i.created.isoformat() if i.created else None,
                    "link": i.link,
                }
                for i in list(items)[:MAX_ITEMS_SHOWN]
            ]
        )


def alert_message(
    team: TeamConfig, notices: Sequence[AlertNotice], zone: ZoneInfo, now: datetime, *, refresh_function: str | None
) -> Message:
    """The message for ``notices`` (one, or several quiet hours held), within Chat's limits."""
    if len(notices) == 1:
        notice = notices[0]
        title, subtitle = _headline(team, notice, zone)
        sections = [_section(notice, zone, now, header=False)]
        text = _text(team, notice, zone)
    else:
        first, last = _local(notices[0].at, zone), _local(notices[-1].at, zone)
        title, subtitle = f"🔕 {team.name}: {len(notices)} alerts held by quiet hours", f"{first} – {last}"
        sections = _fitting([_section(n, zone, now, header=True) for n in notices[:MAX_FOLDED]])
        text = "\n".join(_text(team, n, zone) for n in notices[: len(sections)])
        if len(notices) > len(sections):
            sections.append({"widgets": [_paragraph(f"… and {len(notices) - len(sections)} more")]})
    buttons = _buttons(team, refresh_function)
    if buttons:
        sections.append({"widgets": [{"buttonList": {"buttons": buttons}}]})
    header = {"title": title, "subtitle": subtitle}
    card = {"cardId": f"alert-{team.id}", "card": {"header": header, "sections": sections}}
    return within_limits({"text": text[:4000], "cardsV2": [card]})


def new_items_message(
    team: TeamConfig, items: Sequence[dict[str, Any]], zone: ZoneInfo, now: datetime, *, refresh_function: str | None
) -> Message:
    """The new items of one check (or of several quiet hours held), each linked to its record: the first
    `MAX_NEW_SHOWN` that fit, then "… and N more"."""
    categories = ", ".join(dict.fromkeys(str(item.get("category") or "") for item in items))
    word = "item" if len(items) == 1 else "items"
    title = f"🆕 {team.name}: {len(items)} new {categories} {word}"
    lines: list[str] = []
    size = 0
    for item in items[:MAX_NEW_SHOWN]:
        line = _item(item, now)
        size += len(line.encode())
        if size > FOLDED_BYTES:
            break
        lines.append(line)
    widgets = [_paragraph("<br>".join(lines[start : start + 10])) for start in range(0, len(lines), 10)]
    names = [" ".join(str(item.get("title") or "(untitled)").split())[:60] for item in items[: len(lines)]]
    text = f"{title}: " + "; ".join(names)
    if len(items) > len(lines):
        widgets.append(_paragraph(f"… and {len(items) - len(lines)} more"))
        text += f" … and {len(items) - len(lines)} more"
    sections = [{"widgets": widgets}]
    buttons = _buttons(team, refresh_function)
    if buttons:
        sections.append({"widgets": [{"buttonList": {"buttons": buttons}}]})
    header = {"title": title[:200], "subtitle": _local(now, zone)}
    card = {"cardId": f"alert-{team.id}-new", "card": {"header": header, "sections": sections}}
    return within_limits({"text": text[:4000], "cardsV2": [card]})


def _fitting(sections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first sections that fit one card with room for a "… and N more" line and the button."""
    kept: list[dict[str, Any]] = []
    widgets = size = 0
    for section in sections:
        widgets += len(section["widgets"])
        size += len(json.dumps(section))
        if widgets > MAX_CARD_WIDGETS - 2 or size > FOLDED_BYTES:
            break
        kept.append(section)
    return kept


def _headline(team: TeamConfig, notice: AlertNotice, zone: ZoneInfo) -> tuple[str, str]:
    icon, label, _ = STATUS_LOOK[_LEVEL_STATUS[notice.level]]
    name, when = f"{team.name} · {notice.kpi.name}", _local(notice.at, zone)
    if notice.kind == "fire":
        return f"{icon} {name}: {label}", f"{_crossing(notice)} · {when}"
    if notice.kind == "remind":
        return f"⏰ {name}: still {label}", f"since {_local(notice.incident or notice.at, zone)}"
    if notice.kind == "resolve":
        return f"✅ {name}: resolved", f"after {_duration(notice.fired_for)} · {when}"
    if notice.kind == "cannot-read":
        return f"⚪ {name}: cannot read", f"since {when}"
    return f"🔄 {name}: readable again", when


def _crossing(notice: AlertNotice) -> str:
    """ "Good → Bad": the status the KPI left and the one it crossed into."""
    before = STATUS_LOOK[Status(notice.came_from)][1] if notice.came_from else "Good"
    return f"{before} → {STATUS_LOOK[_LEVEL_STATUS[notice.level]][1]}"


def _section(notice: AlertNotice, zone: ZoneInfo, now: datetime, *, header: bool) -> dict[str, Any]:
    kpi = notice.kpi
    widgets: list[dict[str, Any]] = []
    if notice.index is not None:
        line = f"<b>{_num(notice.index)}</b> · target {_num(kpi.target)} · warning {_num(kpi.warning)}"
        direction = "lower is better" if kpi.lower_is_better else "higher is better"
        widgets.append({"decoratedText": {"topLabel": "Index", "text": line, "bottomLabel": direction}})
    if notice.reason:
        widgets.append(_paragraph(escape(notice.reason)))
    if notice.items and notice.kind in ("fire", "remind"):
        listed = "<br>".join(_item(item, now) for item in notice.items[:MAX_ITEMS_SHOWN])
        widgets.append(_paragraph(f"<b>Heaviest open items</b><br>{listed}"))
    if not widgets:
        widgets.append(_paragraph(escape(_headline_text(notice, zone))))
    section: dict[str, Any] = {"widgets": widgets}
    if header:
        section["header"] = escape(f"{_kind_word(notice)} · {kpi.name} · {_local(notice.at, zone)}")
    return section


def _kind_word(notice: AlertNotice) -> str:
    label = STATUS_LOOK[_LEVEL_STATUS[notice.level]][1]
    return {
        "fire": f"{label}",
        "remind": f"still {label}",
        "resolve": f"resolved after {_duration(notice.fired_for)}",
        "cannot-read": "cannot read",
    }.get(notice.kind, "readable again")


def _headline_text(notice: AlertNotice, zone: ZoneInfo) -> str:
    return f"{notice.kpi.name}: {_kind_word(notice)} ({_local(notice.at, zone)})"


def _text(team: TeamConfig, notice: AlertNotice, zone: ZoneInfo) -> str:
    """The notice in words (what notifications and webhooks without cards show)."""
    value = f": {_num(notice.index)} (target {_num(notice.kpi.target)})" if notice.index is not None else ""
    return f"{team.name} · {_headline_text(notice, zone)}{value}"


def _item(item: dict[str, Any], now: datetime) -> str:
    title = escape(" ".join(str(item.get("title") or "(untitled)").split())[:60])
    link = item.get("link")
    named = f'<a href="{escape(link)}">{title}</a>' if link else title
    facts = [escape(str(item.get("category") or ""))]
    if item.get("created"):
        facts.append(age(datetime.fromisoformat(item["created"]), now))
    return f"{named} ({', '.join(f for f in facts if f)})"


def _buttons(team: TeamConfig, refresh_function: str | None) -> list[dict[str, Any]]:
    if refresh_function:
        parameters = [{"key": "action", "value": "refresh"}, {"key": "team", "value": team.id}]
        return [{"text": "Full card", "onClick": {"action": {"function": refresh_function, "parameters": parameters}}}]
    crm_url = team.crm_url or next((k.crm_url for k in team.kpis if k.crm_url), None)
    return [{"text": "Open in CRM", "onClick": {"openLink": {"url": crm_url}}}] if crm_url else []


def _paragraph(html: str) -> dict[str, Any]:
    return {"textParagraph": {"text": html}}


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%a %d %b %H:%M %Z")


def _duration(delta: timedelta | None) -> str:
    minutes = max(0, int(delta.total_seconds() // 60)) if delta else 0
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days {hours % 24} h"


@dataclass(frozen=True)
class KpiAlertState:
    """A KPI's alert as `/score alerts` and ``alerts TEAM`` show it (state None: not checked yet)."""

    kpi: KpiConfig
    state: str | None
    since: datetime | None
    level: str | None
    announced: bool
    transitions: Sequence[TransitionRow]
    """The last ones, newest first."""


def alerts_status_message(team: TeamConfig, states: Sequence[KpiAlertState], zone: ZoneInfo) -> Message:
    """Each KPI's alert state, since when, and its last transitions; or that the team has no alerts."""
    settings = team.alerts
    if settings is None:
        text = f"{team.name} has no alerts: its configuration has no alerts block."
        card = {
            "header": {"title": f"🔕 {team.name}: no alerts"},
            "sections": [{"widgets": [_paragraph(escape(text))]}],
        }
        return {"text": text, "cardsV2": [{"cardId": f"alerts-{team.id}", "card": card}]}
    rules = (
        f"checked every {format_duration(settings.check_every)} · on {', '.join(settings.on)} · "
        f"pending {settings.pending} · recover at {settings.recover_at}"
    )
    sections, lines = [], [f"{team.name}: alerts ({rules})"]
    for item in states:
        now_line = _state_line(item, zone)
        history = [
            f"{_local(t.at, zone)}: {t.before} → {t.after}"
            + (f" ({_num(t.index_value)})" if t.index_value is not None else "")
            + (f", {t.reason}" if t.reason else "")
            for t in item.transitions
        ]
        widgets = [{"decoratedText": {"topLabel": escape(item.kpi.name), "text": escape(now_line)}}]
        if history:
            widgets.append(_paragraph("<br>".join(escape(line) for line in history)))
        sections.append({"header": escape(item.kpi.name), "widgets": widgets})
        lines += [f"{item.kpi.name}: {now_line}", *(f"  {line}" for line in history)]
    header = {"title": f"🔔 {team.name}: alerts", "subtitle": rules}
    card = {"cardId": f"alerts-{team.id}", "card": {"header": header, "sections": sections}}
    return within_limits({"text": "\n".join(lines)[:4000], "cardsV2": [card]})


def _state_line(item: KpiAlertState, zone: ZoneInfo) -> str:
    if item.state is None:
        return "not checked yet"
    level = f" ({STATUS_LOOK[_LEVEL_STATUS[item.level]][1]})" if item.level else ""
    quiet = "" if item.announced or item.state not in ("firing", "recovering") else ", not alerted (it began that way)"
    since = f" since {_local(item.since, zone)}" if item.since else ""
    return f"{item.state}{level}{since}{quiet}"
