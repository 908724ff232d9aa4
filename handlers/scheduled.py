"""The scheduled post: a team's card at one of its slots, as the tick sends it."""

from __future__ import annotations

from datetime import datetime

from bot.cards import Message, plain_text, team_message
from bot.config import TeamConfig
from bot.context import Services
from bot.reports import TeamReport
from bot.schedule.templates import render_text


def handle(
    services: Services, team: TeamConfig, slot: datetime, report: TeamReport, *, refresh_function: str | None
) -> Message:
    """The message for ``team``'s ``slot`` (UTC) from ``report``; marked when a KPI could not be refreshed.

    The text is the team's template (else the formatter's); a stale report
    gets a leading "Could not refresh" line naming what failed.
    """
    slot_local = slot.astimezone(services.config.zone(team))
    text = render_text(team, report, slot_local)
    if not report.fresh:
        text = "⚠ Could not refresh: " + "; ".join(report.failures) + "\n" + (text or plain_text(report))
    settings = bool(services.config.settings.editable)  # posted to the team's own Spaces
    return team_message(report, refresh_function=refresh_function, text=text, settings=settings)
