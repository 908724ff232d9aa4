"""The scheduled post: a team's card at one of its slots, as the tick sends it."""

from __future__ import annotations

from datetime import datetime

from bot.cards import Message, plain_text, team_message, value_text
from bot.config import TeamConfig
from bot.context import Services
from bot.reports import TeamReport
from bot.schedule.templates import render_text
from bot.store import SNOOZED

SNOOZE_LOOKBACK = 1000
"""The most slots looked back over to find where a snooze began."""


def handle(
    services: Services, team: TeamConfig, slot: datetime, report: TeamReport, *, refresh_function: str | None
) -> Message:
    """The message for ``team``'s ``slot`` (UTC) from ``report``; marked when a KPI could not be refreshed.

    The text is the team's template (else the formatter's); a stale report
    gets a leading "Could not refresh" line naming what failed; the first post
    after a snooze, a line saying how each KPI moved over it.
    """
    slot_local = slot.astimezone(services.config.zone(team))
    text = render_text(team, report, slot_local)
    back = after_snooze(services, team, slot, report)
    if back:
        text = back + "\n" + (text or plain_text(report))
    if not report.fresh:
        text = "⚠ Could not refresh: " + "; ".join(report.failures) + "\n" + (text or plain_text(report))
    settings = bool(services.config.settings.editable)  # posted to the team's own Spaces
    return team_message(report, refresh_function=refresh_function, text=text, settings=settings)


def after_snooze(services: Services, team: TeamConfig, slot: datetime, report: TeamReport) -> str | None:
    """For the first post after a snooze (the slots just before ``slot`` were snoozed): since when, and how
    each KPI moved from the reading nearest the snooze's first slot to now. None for any other post, and
    without a look at the store for a team that never snoozed."""
    current = services.settings.team(team.id)
    if current is None or current.snooze is None or current.snooze.until > slot:
        return None
    runs = [run for run in services.store.slot_runs(team.id, until=slot, limit=SNOOZE_LOOKBACK) if run.slot < slot]
    snoozed = []
    for run in runs:
        if run.state != SNOOZED:
            break
        snoozed.append(run.slot)
    if not snoozed:
        return None
    since = snoozed[-1]
    before = services.store.reading_near(team.id, since)
    moves = []
    for line in report.kpis:
        then, now = before.get(line.kpi.id), line.score.index if line.score else None
        if then is not None and now is not None:
            unit = line.kpi.unit
            moves.append(f"{line.kpi.name} {value_text(then.index, unit)} → {value_text(now, unit)}")
    zone = services.config.zone(team)
    posts = f"{len(snoozed)} post{'s' if len(snoozed) > 1 else ''}"
    head = f"Back from a snooze: {posts} skipped since {since.astimezone(zone):%a %d %b %H:%M}"
    return head + (": " + "; ".join(moves) if moves else " (no reading from then to compare with)") + "."
