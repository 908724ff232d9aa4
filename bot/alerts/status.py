"""What alerts stand at, read from the store: per KPI of a team (`/score alerts`, ``alerts TEAM``), and every
firing alert (the status page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.alert_cards import KpiAlertState
from bot.config import Config, TeamConfig
from bot.store import Store

HISTORY = 10
"""The transitions shown per KPI."""


def team_alert_states(store: Store, team: TeamConfig) -> list[KpiAlertState]:
    """Each KPI of ``team``: its alert's state, since when, and its last `HISTORY` transitions."""
    rows = store.alert_rows(team.id)
    states = []
    for kpi in team.kpis:
        row = rows.get(kpi.id)
        fields = row.fields if row else {}
        states.append(
            KpiAlertState(
                kpi,
                fields.get("state"),
                fields.get("since"),
                fields.get("level"),
                fields.get("incident") is not None,
                store.transitions(team.id, kpi.id, HISTORY),
            )
        )
    return states


@dataclass(frozen=True)
class Firing:
    """A firing (or recovering) alert, for the status page."""

    team_id: str
    team_name: str
    kpi_name: str
    state: str
    level: str | None
    since: datetime | None
    announced: bool


def firing_alerts(store: Store, config: Config) -> list[Firing]:
    """Every alert of a configured team and KPI that is firing or recovering (also under no data), worst first."""
    found = []
    for team_id, row in store.firing():
        team = config.team(team_id)
        kpi = next((k for k in team.kpis if k.id == row.kpi_id), None) if team else None
        if team is None or kpi is None or team.alerts is None:
            continue
        fields = row.fields
        state = fields["state"] if fields["state"] != "no-data" else f"{fields['held']} (no data)"
        found.append(
            Firing(
                team.id,
                team.name,
                kpi.name,
                state,
                fields.get("level"),
                fields.get("incident"),
                fields.get("incident") is not None,
            )
        )
    return sorted(found, key=lambda f: (f.level != "bad", f.team_id, f.kpi_name))
