"""The settings dialog's form: the widget values by name, as Chat sends them back.

`form_of` is the form of a team's current settings (what the dialog opens with); `changes_from_form` turns
a submitted form into the changes `bot.team_settings.save_settings` takes (only the fields that differ);
`schedule_check` gives the next posts of the schedule and zone typed, or what is wrong with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import ChatApiTarget, Config, TeamConfig
from bot.team_settings import PRESETS, Snooze, TeamSettings, check_value, next_posts, preset_of

Form = Mapping[str, tuple[str, ...]]
CUSTOM = "custom"
"""The schedule preset that means: the cron expression typed below it."""


def live_of(team: TeamConfig) -> str | None:
    """The live card setting of the team's Chat API targets (None: it has none a live card can use)."""
    targets = [t for t in team.deliver if isinstance(t, ChatApiTarget) and not t.thread]
    return targets[0].live if targets else None


def categories_of(team: TeamConfig) -> list[str]:
    """The weighted categories of the team's KPIs (what new-item alerts may watch), in order, once each."""
    seen: dict[str, str] = {}
    for kpi in team.kpis:
        for category in kpi.weights:
            seen.setdefault(category.casefold(), category)
    return list(seen.values())


def form_of(config: Config, current: TeamSettings, now: datetime) -> dict[str, tuple[str, ...]]:
    """The dialog's form for the team's current settings at ``now``."""
    team, snooze = current.team, active_snooze(current, now)
    schedule = team.schedule or ""
    preset = preset_of(schedule)
    form: dict[str, tuple[str, ...]] = {
        "schedule_preset": (preset or CUSTOM,),
        "schedule_cron": (schedule,) if schedule else (),
        "timezone": (config.zone(team).key,),
        "live": (live_of(team) or "off",),
        "alerts_enabled": ("on",) if team.alerts else (),
        "alerts_on": tuple(team.alerts.on) if team.alerts else ("bad",),
        "alerts_new_items": tuple(team.alerts.new_items) if team.alerts else (),
        "snooze": ("keep",) if snooze else ("none",),
        "snooze_alerts": ("on",) if snooze and snooze.alerts else (),
        "kpis": tuple(k.id for k in team.kpis),
    }
    if snooze:
        form["snooze_until"] = (str(int(snooze.until.timestamp() * 1000)),)
    return form


def active_snooze(current: TeamSettings, now: datetime) -> Snooze | None:
    """The team's snooze if it holds posts at ``now`` or later (a finished one is not shown)."""
    return current.snooze if current.snooze and current.snooze.until > now else None


def changes_from_form(config: Config, current: TeamSettings, form: Form, now: datetime) -> dict[str, Any]:
    """The editable fields whose submitted value differs from the current one at ``now``, as `save_settings`
    takes them (``None`` for the snooze: end it now)."""
    team, editable = current.team, config.settings.editable
    changes: dict[str, Any] = {}
    cron = _schedule_typed(form)
    if "schedule" in editable and cron != (team.schedule or ""):
        changes["schedule"] = cron
    zone = first_value(form, "timezone").strip()
    if "timezone" in editable and zone != config.zone(team).key:
        changes["timezone"] = zone
    live = first_value(form, "live")
    if "live" in editable and live_of(team) is not None and live and live != live_of(team):
        changes["live"] = live
    if "alerts" in editable:
        enabled = "on" in form.get("alerts_enabled", ())
        alerts = {
            "enabled": enabled,
            "on": list(form.get("alerts_on", ())),
            "new_items": list(form.get("alerts_new_items", ())),
        }
        was = {"enabled": False} if team.alerts is None else {"enabled": True} | team.alerts.model_dump()
        if enabled != was["enabled"] or (enabled and any(alerts[k] != was[k] for k in ("on", "new_items"))):
            changes["alerts"] = alerts
    if "snooze" in editable:
        choice, pause = first_value(form, "snooze"), "on" in form.get("snooze_alerts", ())
        if choice == "none" and active_snooze(current, now) is not None:
            changes["snooze"] = None
        elif choice in ("day", "week"):
            changes["snooze"] = {"until": choice, "alerts": pause}
        elif choice == "date":
            changes["snooze"] = {"until": _date_typed(form), "alerts": pause}
    kpis = list(form.get("kpis", ()))
    if "kpis" in editable and kpis != [k.id for k in team.kpis]:
        changes["kpis"] = kpis
    return changes


def schedule_check(
    config: Config, current: TeamSettings, form: Form, now: datetime
) -> tuple[list[datetime], dict[str, str]]:
    """The next three posts of the schedule and zone typed in ``form``, and what is wrong with them (by field);
    a schedule typed wrong shows no posts, a zone typed wrong shows them in the team's zone as it is."""
    errors: dict[str, str] = {}
    team = current.team
    values = {"schedule": _schedule_typed(form), "timezone": first_value(form, "timezone").strip()}
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name not in config.settings.editable:
            continue
        try:
            checked[name] = check_value(config, team, name, value, now)
        except ValueError as exc:
            errors[name] = getattr(exc, "message", str(exc))
    if "schedule" in errors:
        return [], errors
    cron = checked.get("schedule", team.schedule)
    zone = checked.get("timezone", config.zone(team).key)
    return posts_after(current, cron, zone, now), errors


def posts_after(current: TeamSettings, cron: str | None, zone: str | ZoneInfo, now: datetime) -> list[datetime]:
    """The next three posts of ``cron`` in ``zone`` that go out: after ``now``, and from the end of a snooze in
    force (a post at that very moment goes out)."""
    snooze = active_snooze(current, now)
    after = snooze.until - timedelta(microseconds=1) if snooze else now
    return next_posts(cron, zone, after) if cron else []


def _schedule_typed(form: Form) -> str:
    preset = first_value(form, "schedule_preset")
    return PRESETS[preset] if preset in PRESETS else " ".join(first_value(form, "schedule_cron").split())


def _date_typed(form: Form) -> str:
    """The picked date (Chat sends midnight UTC of the day picked, in milliseconds) as YYYY-MM-DD; "" if none."""
    try:
        return datetime.fromtimestamp(float(first_value(form, "snooze_until")) / 1000, UTC).date().isoformat()
    except (ValueError, OverflowError, OSError):
        return ""


def first_value(form: Form, name: str) -> str:
    """The first value of input ``name`` ("" when the form has none)."""
    values = form.get(name, ())
    return values[0] if values else ""
