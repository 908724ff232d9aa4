"""`/score all` and its buttons: every team on one card (paged over 100), a team's full card in place, and back."""

from __future__ import annotations

from bot.cards import help_message, overview_message, team_message, with_overview_button
from bot.chat.events import ChatEvent
from bot.chat.replies import Reply
from bot.context import Services
from bot.overview import overview
from bot.store import SCORE


def show(services: Services, page: int = 0, *, update: bool = False) -> Reply:
    """The overview's ``page``, from the teams' stored readings (no source is read)."""
    running = [t.team for t in services.settings.teams()]
    teams = overview(services.config, services.store, services.clock(), running)
    message = overview_message(teams, services.clock(), page=page, button_function=services.config.chat.button_function)
    return Reply(message, update=update)


def handle_page(event: ChatEvent, services: Services) -> Reply:
    """A paging or "All teams" button: that page of the overview, in place of the clicked card."""
    return show(services, _page(event), update=True)


def handle_team(event: ChatEvent, services: Services) -> Reply:
    """A team's "Show" button: the team's full card (read now, as `/score TEAM`) in place, with a way back."""
    config = services.config
    team = services.team(event.parameters.get("team", ""))
    if team is None:
        note = "This team is no longer in Scorebot's configuration; ask whoever runs Scorebot."
        return Reply(help_message(config, note), private=True)
    function = config.chat.button_function
    report = services.report(team, SCORE)
    message = team_message(report, refresh_function=function)
    return Reply(with_overview_button(message, _page(event), function), update=True)


def _page(event: ChatEvent) -> int:
    try:
        return max(0, int(event.parameters.get("page", "0")))
    except ValueError:
        return 0
