"""The settings dialog's card.

The dialog is drawn from a *form* (`bot.settings_form`): the widget values
by name, as Chat sends them back. Opening
shows the current form; a check or a refused save shows the form as
submitted, with the next posts of the schedule typed and each refusal under
its field. Only the fields the YAML lets teams change (``settings.editable``)
appear. Someone who may not edit sees the same values as text, with a line
saying who can change them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from bot.cards import user_text
from bot.config import Config
from bot.settings_form import CUSTOM, Form, active_snooze, categories_of, first_value, form_of, live_of, posts_after
from bot.team_settings import LIVE_CHOICES, PRESET_LABELS, STATUSES, Snooze, TeamSettings, preset_of

SNOOZE_LABELS = {
    "keep": "Keep the snooze",
    "none": "Not snoozed",
    "day": "For one day",
    "week": "For one week",
    "date": "Until the date below (at most 90 days)",
}
LIVE_LABELS = {"off": "Off: a new message at every post", "day": "One message a day", "week": "One message a week"}
STATUS_LABELS = {"warning": "Warning", "bad": "Bad"}
ERROR_COLOUR = "#d93025"
UNCHECKED = " The Space's managers could not be asked just now: try again in a minute."
FIELD_TITLES = {
    "schedule": "Schedule",
    "timezone": "Time zone",
    "live": "Live card",
    "alerts": "Alerts",
    "snooze": "Snooze scheduled posts",
    "kpis": "KPIs on the card",
}


def settings_card(
    config: Config,
    current: TeamSettings,
    now: datetime,
    *,
    function: str,
    form: Form | None = None,
    errors: Mapping[str, str] | None = None,
    notice: str | None = None,
    posts: Sequence[datetime] | None = None,
    editable: bool = True,
    who_can: str = "",
    unchecked: bool = False,
) -> dict[str, Any]:
    """The dialog for ``current`` (the team as it runs): ``form`` as shown (default: the current values),
    ``errors`` under their fields, ``notice`` on top, ``posts`` the next posts to show (default: the current
    schedule's); read-only (``editable`` False) with a line naming ``who_can`` change it (and, if
    ``unchecked``, that the Space's managers could not be asked)."""
    team, fields = current.team, [f for f in FIELD_TITLES if f in config.settings.editable]
    shown = form if form is not None else form_of(config, current, now)
    zone = (
        ZoneInfo(first_value(shown, "timezone") or config.zone(team).key) if _known_zone(shown) else config.zone(team)
    )
    if posts is None:
        posts = posts_after(current, team.schedule, config.zone(team), now)
    errors = errors or {}
    sections: list[dict[str, Any]] = []
    top = []
    if notice:
        top.append(_paragraph(f"<b>{_html(notice)}</b>"))
    if not editable:
        line = f"Only {who_can} can change these settings." + (UNCHECKED if unchecked else "")
        top.append(_paragraph(f"<i>{_html(line)}</i>"))
    if top:
        sections.append({"widgets": top})
    for name in fields:
        if editable:
            widgets = _INPUTS[name](_View(config, current, shown, zone, posts, function, active_snooze(current, now)))
        else:
            widgets = _read_only(config, current, name, zone, posts, active_snooze(current, now))
        if name in errors:
            widgets.append(_paragraph(f'<font color="{ERROR_COLOUR}">⚠ {_html(user_text(errors[name], 300))}</font>'))
        sections.append({"header": FIELD_TITLES[name], "widgets": widgets})
    sections.append({"widgets": [_paragraph(f"<i>{_html(last_change(current, config.zone(team)))}</i>")]})
    params = {"team": team.id, "version": str(current.overrides.version)}
    card: dict[str, Any] = {
        "header": {"title": f"Settings · {team.name}", "subtitle": "How and when this Space hears about its numbers"},
        "sections": sections,
    }
    if editable:
        card["fixedFooter"] = {
            "primaryButton": _button("Save", function, {"action": "settings-save", **params}),
            "secondaryButton": _button("Cancel", function, {"action": "settings-cancel", **params}),
        }
    else:
        card["fixedFooter"] = {"primaryButton": _button("Close", function, {"action": "settings-cancel", **params})}
    return card


def last_change(current: TeamSettings, zone: ZoneInfo) -> str:
    """The dialog's footer: who last changed the settings from Chat, and when (in the team's zone)."""
    overrides = current.overrides
    if not overrides.version or overrides.changed_at is None:
        return "No change from Chat yet: these are the configuration's values."
    return f"Last change: {overrides.changed_by}, {_local(overrides.changed_at, zone)}."


def posts_line(posts: Sequence[datetime], zone: ZoneInfo) -> str:
    """The next posts in words: "Mon 8 Dec 10:00, Tue 9 Dec 10:00, Wed 10 Dec 10:00 (Europe/Berlin)"."""
    if not posts:
        return "No scheduled posts."
    return ", ".join(
        f"{p.astimezone(zone):%a} {p.astimezone(zone).day} {p.astimezone(zone):%b %H:%M}" for p in posts
    ) + (f" ({zone.key})")


@dataclass(frozen=True)
class _View:
    """What each field's inputs are drawn from."""

    config: Config
    current: TeamSettings
    form: Form
    zone: ZoneInfo
    posts: Sequence[datetime]
    function: str
    snooze: Snooze | None


def _schedule_input(v: _View) -> list[dict[str, Any]]:
    preset = first_value(v.form, "schedule_preset") or CUSTOM
    items = [(name, label) for name, label in PRESET_LABELS.items()] + [(CUSTOM, "Custom (cron below)")]
    held = f"After the snooze: posts are held until {_local(v.snooze.until, v.zone)}" if v.snooze else ""
    return [
        _select("schedule_preset", "When to post", "DROPDOWN", items, {preset}),
        {
            "textInput": {
                "name": "schedule_cron",
                "label": "Custom cron: minute hour day month weekday",
                "value": user_text(first_value(v.form, "schedule_cron"), 200),
                "hintText": 'Used with "Custom", e.g. 30 9 * * 1-5 (09:30 on weekdays)',
            }
        },
        _decorated("Next posts", posts_line(v.posts, v.zone), held),
        {"buttonList": {"buttons": [_button("Check", v.function, _check_params(v.current))]}},
    ]


def _timezone_input(v: _View) -> list[dict[str, Any]]:
    text = {
        "name": "timezone",
        "label": "Time zone (IANA name)",
        "value": user_text(first_value(v.form, "timezone"), 100),
        "hintText": "e.g. Europe/Berlin, America/New_York, UTC",
    }
    return [{"textInput": text}]


def _live_input(v: _View) -> list[dict[str, Any]]:
    if live_of(v.current.team) is None:
        return [_paragraph("Live cards need a Chat API target (deliver: type chat_api); this team has none.")]
    items = [(choice, LIVE_LABELS[choice]) for choice in LIVE_CHOICES]
    return [
        _select("live", "One message updated in place", "RADIO_BUTTON", items, {first_value(v.form, "live") or "off"})
    ]


def _alerts_input(v: _View) -> list[dict[str, Any]]:
    widgets = [
        _select(
            "alerts_enabled",
            "Alerts between posts",
            "SWITCH",
            [("on", "Alerts on")],
            set(v.form.get("alerts_enabled", ())),
        ),
        _select(
            "alerts_on",
            "Alert when a KPI turns",
            "CHECK_BOX",
            [(status, STATUS_LABELS[status]) for status in STATUSES],
            set(v.form.get("alerts_on", ())),
        ),
    ]
    categories = categories_of(v.config.team(v.current.team.id) or v.current.team)
    if categories:
        chosen = {c.casefold() for c in v.form.get("alerts_new_items", ())}
        items = [(c, c) for c in categories]
        widgets.append(
            _select(
                "alerts_new_items",
                "Alert on each new item of",
                "CHECK_BOX",
                items,
                {c for c in categories if c.casefold() in chosen},
            )
        )
    return widgets


def _snooze_input(v: _View) -> list[dict[str, Any]]:
    choices = ["keep", "none", "day", "week", "date"] if v.snooze else ["none", "day", "week", "date"]
    labels = dict(SNOOZE_LABELS)
    if v.snooze:
        labels["keep"] = f"Keep: until {_local(v.snooze.until, v.zone)}"
        labels["none"] = "End the snooze now"
    picker: dict[str, Any] = {"name": "snooze_until", "label": "Snooze until", "type": "DATE_ONLY"}
    if v.form.get("snooze_until"):
        picker["valueMsEpoch"] = first_value(v.form, "snooze_until")
    return [
        _select(
            "snooze",
            "Hold scheduled posts",
            "DROPDOWN",
            [(c, labels[c]) for c in choices],
            {first_value(v.form, "snooze")},
        ),
        {"dateTimePicker": picker},
        _select("snooze_alerts", "", "SWITCH", [("on", "Pause alerts too")], set(v.form.get("snooze_alerts", ()))),
    ]


def _kpis_input(v: _View) -> list[dict[str, Any]]:
    kpis = (v.config.team(v.current.team.id) or v.current.team).kpis
    items = [(k.id, k.name) for k in kpis]
    return [_select("kpis", "Show on the card", "CHECK_BOX", items, set(v.form.get("kpis", ())))]


def _read_only(
    config: Config, current: TeamSettings, name: str, zone: ZoneInfo, posts: Sequence[datetime], snooze: Snooze | None
) -> list[dict[str, Any]]:
    """Field ``name``'s current value as text, for someone who may not change it."""
    team = current.team
    if name == "schedule":
        label = PRESET_LABELS.get(preset_of(team.schedule) or "", team.schedule or "No schedule")
        return [_decorated("When to post", label), _decorated("Next posts", posts_line(posts, zone))]
    if name == "timezone":
        text = config.zone(team).key
    elif name == "live":
        live = live_of(team)
        text = LIVE_LABELS[live] if live else "No Chat API target"
    elif name == "alerts":
        on = " or ".join(STATUS_LABELS[s].lower() for s in team.alerts.on) if team.alerts else ""
        items = ", ".join(team.alerts.new_items) or "none" if team.alerts else ""
        text = f"On: when a KPI turns {on}; new items of {items}" if team.alerts else "Off"
    elif name == "snooze":
        also = " (alerts paused too)" if snooze and snooze.alerts else ""
        text = f"Until {_local(snooze.until, zone)}{also}" if snooze else "Not snoozed"
    else:
        text = ", ".join(k.name for k in team.kpis)
    return [_decorated("", text)]


_INPUTS = {
    "schedule": _schedule_input,
    "timezone": _timezone_input,
    "live": _live_input,
    "alerts": _alerts_input,
    "snooze": _snooze_input,
    "kpis": _kpis_input,
}


def _check_params(current: TeamSettings) -> dict[str, str]:
    return {"action": "settings-check", "team": current.team.id, "version": str(current.overrides.version)}


def _known_zone(form: Form) -> bool:
    try:
        ZoneInfo(first_value(form, "timezone"))
    except (ValueError, KeyError):
        return False
    return True


def _local(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y %H:%M} ({zone.key})"


def _select(name: str, label: str, kind: str, items: Sequence[tuple[str, str]], chosen: set[str]) -> dict[str, Any]:
    entries = [{"text": text, "value": value, "selected": value in chosen} for value, text in items]
    widget: dict[str, Any] = {"name": name, "type": kind, "items": entries}
    if label:
        widget["label"] = label
    return {"selectionInput": widget}


def _button(text: str, function: str, parameters: Mapping[str, str]) -> dict[str, Any]:
    action = {"function": function, "parameters": [{"key": k, "value": v} for k, v in parameters.items()]}
    return {"text": text, "onClick": {"action": action}}


def _decorated(top: str, text: str, bottom: str = "") -> dict[str, Any]:
    widget = {"topLabel": top, "text": _html(text), "bottomLabel": bottom, "wrapText": True}
    return {"decoratedText": {key: value for key, value in widget.items() if value != ""}}


def _html(text: str) -> str:
    """``text`` safe inside a card's HTML (quotes left as they are: only tags matter there)."""
    return escape(text, quote=False)


def _paragraph(html: str) -> dict[str, Any]:
    return {"textParagraph": {"text": html}}
