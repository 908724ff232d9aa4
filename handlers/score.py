"""`/score [TEAM|help]`, or an @mention with the word "score": the team's card."""

from __future__ import annotations

from bot.cards import help_message, team_message
from bot.events import ChatEvent
from bot.replies import Reply
from bot.services import Services


def handle(event: ChatEvent, services: Services) -> Reply:
    """Answer with the card of the named team, else of the Space's team, else help."""
    config = services.config
    words = event.text.split()
    lowered = [w.lower() for w in words]
    if "score" in lowered:  # "@Scorebot what is the score security": the word after "score"
        words = words[lowered.index("score") + 1 :]
    argument = words[0] if words else ""
    if argument.lower() == "help":
        return Reply(help_message(config))
    if argument:
        team = config.team(argument.lower())
        if team is None:
            return Reply(help_message(config, f"There is no team called “{argument}”."))
    else:
        team = config.team_for_space(event.space)
        if team is None:
            return Reply(help_message(config, "This Space is not linked to a team: name one, e.g. /score TEAM."))
    return Reply(team_message(services.report(team), refresh_function=config.chat.button_function))
