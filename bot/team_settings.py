"""What a team may change for itself from its Space: the editable fields, their checks, and the effective team.

The YAML says what the numbers mean and who may change what (``settings:``, `bot.config.SettingsPolicy`);
each team's overrides of the editable fields live in the store (`bot.store.settings`), with a version and an
audit trail. A team's *effective* configuration is its YAML block with its overrides laid over it
(`effective_team`); an override the YAML no longer allows, or that no longer fits the team (a KPI gone, a
category no longer weighted), is ignored, never fatal, and `bot.settings_view.warn_ignored` says so once at start.

Values, as the store keeps them (JSON):

- ``schedule``: a five-field cron expression (the presets are cron expressions too, `PRESETS`);
- ``timezone``: an IANA zone name;
- ``live``: ``off``, ``day`` or ``week``, for the team's Chat API targets (those without a thread);
- ``alerts``: ``{"enabled": bool, "on": [statuses], "new_items": [categories]}``;
- ``snooze``: ``{"from": ISO time, "until": ISO time, "alerts": bool}`` (UTC; ``alerts``: alerts pause too);
- ``kpis``: the ids of the KPIs the card shows (and alerts watch), in the YAML's order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from bot.alert_settings import AlertSettings, merged
from bot.config import (
    EDITABLE_FIELDS,
    ChatApiTarget,
    Config,
    TeamConfig,
    alerts_problem,
    check_cron,
    check_zone,
)
from bot.slots import next_slots
from bot.store import Overrides, SaveResult, Store

FIELDS = EDITABLE_FIELDS
"""The fields a team may be allowed to change, in the dialog's order."""
PRESETS: dict[str, str] = {
    "weekdays": "0 10 * * 1-5",
    "daily": "0 10 * * *",
    "monday-thursday": "0 10 * * 1,4",
}
"""Schedule presets by name; anything else is a custom cron expression."""
PRESET_LABELS: dict[str, str] = {
    "weekdays": "Weekdays at 10:00",
    "daily": "Every day at 10:00",
    "monday-thursday": "Monday and Thursday at 10:00",
}
LIVE_CHOICES = ("off", "day", "week")
STATUSES = ("warning", "bad")
SNOOZE_CHOICES: dict[str, timedelta] = {"day": timedelta(days=1), "week": timedelta(days=7)}
"""Snooze lengths by name; a snooze may also run until a date (its start, in the team's zone)."""
MAX_SNOOZE = timedelta(days=90)


class SettingsError(ValueError):
    """A value a team may not have for ``field``; ``message`` says why, as the configuration would."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class SettingsErrors(ValueError):
    """Several fields refused at once (`save_settings`), one `SettingsError` each."""

    def __init__(self, errors: list[SettingsError]) -> None:
        super().__init__("; ".join(map(str, errors)))
        self.errors = errors


@dataclass(frozen=True)
class Snooze:
    """Scheduled posts held from ``since`` until ``until`` (UTC); ``alerts``: alerts are held too."""

    since: datetime
    until: datetime
    alerts: bool

    def active(self, now: datetime) -> bool:
        """Whether ``now`` falls within the snooze."""
        return self.since <= now < self.until


@dataclass(frozen=True)
class TeamSettings:
    """A team as it runs: its YAML block with its stored overrides laid over it."""

    team: TeamConfig
    """The effective team (schedule, zone, live cards, alerts and KPIs as overridden)."""
    yaml: TeamConfig
    overrides: Overrides = field(default_factory=Overrides)
    snooze: Snooze | None = None
    ignored: tuple[tuple[str, str], ...] = ()
    """Overrides left out, as (field, why)."""

    def snoozed(self, now: datetime) -> bool:
        """Whether scheduled posts are held at ``now``."""
        return self.snooze is not None and self.snooze.active(now)

    def alerts_paused(self, now: datetime) -> bool:
        """Whether alerts are held at ``now`` (a snooze that pauses alerts too)."""
        return self.snoozed(now) and self.snooze is not None and self.snooze.alerts


def next_posts(schedule: str, zone: str | ZoneInfo, now: datetime, count: int = 3) -> list[datetime]:
    """The next ``count`` posts of a cron schedule after ``now``, in the zone's local time."""
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    return [slot.astimezone(tz) for slot in next_slots(schedule, tz, now, count)]


def preset_of(schedule: str | None) -> str | None:
    """The preset's name if ``schedule`` is one, else None (a custom cron, or no schedule)."""
    return next((name for name, cron in PRESETS.items() if cron == schedule), None)


def check_value(config: Config, team: TeamConfig, name: str, value: Any, now: datetime) -> Any:
    """``value`` for field ``name`` of ``team`` as the store keeps it; `SettingsError` if it may not be.

    ``value`` None takes the field back to the YAML's, but for a snooze: None ends it now (kept as a snooze
    that ended, so the next post still says what moved over it). ``team`` is the effective team (its zone
    dates a snooze); a schedule may be a preset's name; a snooze is ``{"until": "day" | "week" |
    "YYYY-MM-DD", "alerts": bool}``.
    """
    if name not in FIELDS:
        raise SettingsError(name, f"not a setting (settings: {', '.join(FIELDS)})")
    if name not in config.settings.editable:
        raise SettingsError(name, "the configuration does not let teams change this (settings.editable)")
    if value is None:
        return {"from": _iso(now), "until": _iso(now), "alerts": False} if name == "snooze" else None
    try:
        return _CHECKS[name](config, team, value, now)
    except ValueError as exc:
        raise SettingsError(name, str(exc).removeprefix("Value error, ")) from None


def check_changes(
    config: Config, current: TeamSettings, changes: Mapping[str, Any], now: datetime
) -> tuple[dict[str, Any], list[SettingsError]]:
    """Each change checked (`check_value`) against the team as it runs: the values to store, and the fields
    refused. A time zone changed with the rest applies to them (a snooze's date is in the new zone); a change
    that would leave another override out (KPIs shown without a category alerts watch) is refused."""
    values: dict[str, Any] = {}
    errors: list[SettingsError] = []
    team = current.team
    for name in sorted(changes, key=lambda n: (n != "timezone", n)):
        try:
            values[name] = check_value(config, team, name, changes[name], now)
        except SettingsError as error:
            errors.append(error)
        else:
            if name == "timezone":
                team = team.model_copy(update={"timezone": values[name] or current.yaml.timezone})
    if not errors:
        stored = {k: v for k, v in (current.overrides.values | values).items() if v is not None}
        after = effective_team(config, current.yaml, Overrides(stored, current.overrides.version))
        before = dict(current.ignored)
        errors = [SettingsError(name, why) for name, why in after.ignored if name not in before]
    return values, errors


def save_settings(
    store: Store,
    config: Config,
    team_id: str,
    changes: Mapping[str, Any],
    *,
    version: int,
    who: str,
    at: datetime,
) -> SaveResult:
    """Check ``changes`` against the team's effective configuration and save them if the team's overrides are
    still at ``version`` (else a conflict, with the current ones). Nothing is stored if any field is refused:
    `SettingsErrors`."""
    yaml_team = config.team(team_id)
    if yaml_team is None:
        raise SettingsError("team", f"no team {team_id!r} in the configuration")
    current = effective_team(config, yaml_team, store.team_overrides(team_id))
    values, errors = check_changes(config, current, changes, at)
    if errors:
        raise SettingsErrors(errors)
    return store.save_overrides(team_id, values, version=version, who=who, at=at)


def effective_team(config: Config, team: TeamConfig, overrides: Overrides) -> TeamSettings:
    """``team`` (from the YAML) with ``overrides`` laid over it; an override the YAML does not allow, or that
    no longer fits the team, is left out (`TeamSettings.ignored`)."""
    result, ignored, snooze = team, [], None
    for name in sorted(overrides.values, key=lambda n: _ORDER.index(n) if n in _ORDER else len(_ORDER)):
        value = overrides.values[name]
        if name not in config.settings.editable:
            ignored.append((name, "the configuration no longer lets teams change it (settings.editable)"))
            continue
        try:
            if name == "snooze":
                snooze = Snooze(_utc(value["from"]), _utc(value["until"]), bool(value["alerts"]))
            else:
                result = _APPLY[name](config, result, value)
        except (ValueError, KeyError, TypeError) as exc:
            ignored.append((name, str(exc)))
    return TeamSettings(result, team, overrides, snooze, tuple(ignored))


def link_refusal(config: Config, space: str, team_id: str) -> str | None:
    """Why ``space`` may not be linked to ``team_id`` from Chat, or None (the YAML's ``spaces`` win)."""
    if config.team(team_id) is None:
        return f"There is no team called {team_id!r}."
    given = config.team_for_space(space)
    if given is not None:
        return f"This Space is given to team {given.id!r} in the configuration; ask whoever runs Scorebot."
    return None


def _check_schedule(config: Config, team: TeamConfig, value: Any, now: datetime) -> str:
    if not team.deliver:
        raise ValueError("the team has no deliver targets in the configuration, so nothing is posted on a schedule")
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a cron expression")
    return check_cron(PRESETS.get(value, value.strip()))


def _check_timezone(config: Config, team: TeamConfig, value: Any, now: datetime) -> str:
    return check_zone(value.strip() if isinstance(value, str) else str(value))


def _check_live(config: Config, team: TeamConfig, value: Any, now: datetime) -> str:
    if value not in LIVE_CHOICES:
        raise ValueError(f"{value!r}: write off, day or week")
    if not _live_targets(team):
        raise ValueError("a live card needs a Chat API target without a thread (deliver: type chat_api)")
    return str(value)


def _check_alerts(config: Config, team: TeamConfig, value: Any, now: datetime) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not isinstance(value.get("enabled"), bool):
        raise ValueError("write {enabled: true or false, on: [statuses], new_items: [categories]}")
    base = team.alerts or merged(config.alerts, AlertSettings())
    on = list(value.get("on", base.on))
    new_items = [str(item).strip() for item in value.get("new_items", base.new_items)]
    canonical = {"enabled": value["enabled"], "on": on, "new_items": new_items}
    if value["enabled"]:
        _alerts_for(config, team, canonical)
    return canonical


def _check_snooze(config: Config, team: TeamConfig, value: Any, now: datetime) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not isinstance(value.get("alerts", False), bool):
        raise ValueError("write {until: day, week or a date (YYYY-MM-DD), alerts: true or false}")
    until_value, zone = value.get("until"), config.zone(team)
    if until_value in SNOOZE_CHOICES:
        until = now + SNOOZE_CHOICES[until_value]
    else:
        try:
            day = until_value if isinstance(until_value, date) else date.fromisoformat(str(until_value))
        except ValueError:
            raise ValueError(f"{until_value!r}: snooze for a day, a week, or until a date (YYYY-MM-DD)") from None
        until = datetime.combine(day, datetime.min.time(), zone)
    if until <= now:
        raise ValueError(f"{until.astimezone(zone):%Y-%m-%d} is not in the future")
    if until - now > MAX_SNOOZE:
        raise ValueError(f"at most 90 days: until {(now + MAX_SNOOZE).astimezone(zone):%Y-%m-%d} at the latest")
    return {"from": _iso(now), "until": _iso(until), "alerts": bool(value.get("alerts", False))}


def _check_kpis(config: Config, team: TeamConfig, value: Any, now: datetime) -> list[str]:
    ids = [value] if isinstance(value, str) else list(value)
    known = [k.id for k in (config.team(team.id) or team).kpis]
    for kpi_id in ids:
        if kpi_id not in known:
            raise ValueError(f"{kpi_id!r} is not a KPI of the team (KPIs: {', '.join(known)})")
    if not ids:
        raise ValueError("show at least one KPI")
    return [kpi_id for kpi_id in known if kpi_id in ids]


_CHECKS: dict[str, Callable[[Config, TeamConfig, Any, datetime], Any]] = {
    "schedule": _check_schedule,
    "timezone": _check_timezone,
    "live": _check_live,
    "alerts": _check_alerts,
    "snooze": _check_snooze,
    "kpis": _check_kpis,
}


def _alerts_for(config: Config, team: TeamConfig, value: Mapping[str, Any]) -> AlertSettings:
    base = team.alerts or merged(config.alerts, AlertSettings())
    try:
        chosen = {"on": value["on"], "new_items": value["new_items"]}
        settings = AlertSettings.model_validate(base.model_dump() | chosen)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ValueError(error["msg"].removeprefix("Value error, ")) from None
    problem = alerts_problem(team.kpis, settings)
    if problem:
        raise ValueError(problem[1])
    return settings


def _live_targets(team: TeamConfig) -> list[ChatApiTarget]:
    return [t for t in team.deliver if isinstance(t, ChatApiTarget) and not t.thread]


def _apply_schedule(config: Config, team: TeamConfig, value: Any) -> TeamConfig:
    return team.model_copy(update={"schedule": check_cron(value)})


def _apply_timezone(config: Config, team: TeamConfig, value: Any) -> TeamConfig:
    return team.model_copy(update={"timezone": check_zone(value)})


def _apply_live(config: Config, team: TeamConfig, value: Any) -> TeamConfig:
    if value not in LIVE_CHOICES or not _live_targets(team):
        raise ValueError(f"live {value!r} needs a Chat API target without a thread")
    deliver = [
        t.model_copy(update={"live": value}) if isinstance(t, ChatApiTarget) and not t.thread else t
        for t in team.deliver
    ]
    return team.model_copy(update={"deliver": deliver})


def _apply_alerts(config: Config, team: TeamConfig, value: Any) -> TeamConfig:
    alerts = _alerts_for(config, team, value) if value["enabled"] else None
    return team.model_copy(update={"alerts": alerts})


def _apply_kpis(config: Config, team: TeamConfig, value: Any) -> TeamConfig:
    kpis = [k for k in team.kpis if k.id in value]
    if not kpis:
        raise ValueError("none of its KPIs is left")
    problem = alerts_problem(kpis, team.alerts) if team.alerts else None
    if problem:
        raise ValueError(f"alerts watch what the KPIs left out count: {problem[1]}")
    return team.model_copy(update={"kpis": kpis})


_APPLY: dict[str, Callable[[Config, TeamConfig, Any], TeamConfig]] = {
    "schedule": _apply_schedule,
    "timezone": _apply_timezone,
    "live": _apply_live,
    "kpis": _apply_kpis,
    "alerts": _apply_alerts,
}


_ORDER = ("schedule", "timezone", "live", "alerts", "kpis", "snooze")
"""The order overrides are laid over a team: the KPIs shown after the alerts, which must still find theirs."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
