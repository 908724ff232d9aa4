"""The app's services as the faces and handlers see them: built once by `bot.services`, passed to every caller.

Time, the store and the sources come in from here, so tests replace them by
building Services with their own values rather than by patching. What the
faces run but may not import (the scheduled post's handler) comes in here too,
filled in by the composition layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from bot.cards import Encoded, Message
from bot.chart_links import card_images
from bot.config import Config, TeamConfig
from bot.delivery import Delivery
from bot.kept_cards import KeptCards
from bot.reports import Reporter, ScanShare, TeamReport
from bot.settings_access import SpaceRoles
from bot.settings_view import SettingsView
from bot.sources import Source
from bot.store import SCORE, Store


class ScheduledPost(Protocol):
    """The clock's handler: the message for a team's slot from its report (``handlers.scheduled.handle``)."""

    def __call__(
        self, services: Services, team: TeamConfig, slot: datetime, report: TeamReport, *, refresh_function: str | None
    ) -> Message: ...


@dataclass
class Services:
    """Everything a handler, the scheduler or the CLI needs besides the event."""

    config: Config
    store: Store
    sources: dict[str, Source]
    reporter: Reporter
    clock: Callable[[], datetime]
    delivery: Delivery
    """Posts outside the tick: a Refresh click's update of a live card."""
    scheduled_post: ScheduledPost
    """What the tick posts at a team's slot."""
    space_roles: SpaceRoles
    """Who manages which Space, asked of the Chat API and remembered briefly (the settings' ``space-managers``)."""
    kept_cards: KeptCards
    """`/score`'s cards, kept while nothing on them changes."""
    settings: SettingsView
    """The teams as they run: the YAML with each team's stored overrides, re-read every few seconds."""

    def team(self, team_id: str) -> TeamConfig | None:
        """The team with this id as it runs now (its overrides applied), if the configuration has it."""
        found = self.settings.team(team_id)
        return found.team if found else None

    def team_for_space(self, space: str | None) -> TeamConfig | None:
        """The team of a Space (the YAML's ``spaces``, else a link made from Chat) as it runs now, if any."""
        found = self.settings.team_for_space(space)
        return found.team if found else None

    def report(
        self,
        team: TeamConfig,
        origin: str,
        *,
        record: bool = True,
        slot: datetime | None = None,
        cached: bool = False,
        scans: Mapping[str, ScanShare] | None = None,
        new_after: Mapping[str, datetime] | None = None,
    ) -> TeamReport:
        """Read the team's KPIs now (the path shared by /score, Refresh, schedules, preview and send).

        ``origin`` is who asks (``bot.store.POST``, ``SCORE``, ...); ``record`` False writes nothing;
        ``cached`` shows a stored reading younger than its source's ``cache_seconds`` instead (``/score``);
        ``scans``: the team's parts of scans `Reporter.prefetch` started for several teams (the tick);
        ``new_after``: per KPI, list the alert's new items created after it (an alert check). The report
        carries the team's chart links, so every card made from it shows the same charts.
        """
        zone = self.config.zone(team).key
        report = self.reporter.report(
            team, zone, origin, record=record, slot=slot, cached=cached, scans=scans, new_after=new_after
        )
        return replace(report, charts=card_images(self.config, team, report.generated_at))

    def score_card(self, team: TeamConfig, *, refresh_function: str | None, settings: bool) -> Message | Encoded:
        """`/score`'s card of ``team`` (``settings``: with its Settings button): its KPIs as `report` with
        ``cached`` shows them, kept while nothing on it would read differently (`bot.kept_cards`)."""
        zone = self.config.zone(team).key
        return self.kept_cards.card(
            team, zone, refresh_function, settings, lambda: self.report(team, SCORE, cached=True)
        )
