"""`/score [TEAM|all|help|alerts [TEAM]|settings|link TEAM|unlink]`, or an @mention with the word "score": the
team's card, every team, help, a team's alerts, the settings dialog, or the Space's link to a team."""

from __future__ import annotations

from bot.alert_cards import alerts_status_message
from bot.alerts.status import team_alert_states
from bot.cards import help_message, user_text
from bot.chat.events import ChatEvent, Kind, mention_words
from bot.chat.replies import DialogReply, Reply
from bot.config import COMMAND_WORDS
from bot.context import Services
from handlers import link, overview, settings


def handle(event: ChatEvent, services: Services) -> Reply | DialogReply:
    """Answer with the card of the named team, else of the Space's team, else help (for the asker alone).

    A slash command's first word is the team (or "help", or "all" for every
    team); in a mention such as "@Scorebot what's the score for security?" the
    first team id, "help" or "all" after "score" counts, and other words are ignored.
    A KPI read less than its source's ``cache_seconds`` ago (by any worker) is
    shown without reading again.
    """
    config = services.config
    if event.kind is Kind.MESSAGE:
        words = mention_words(event.text)
        after = words[words.index("score") + 1 :] if "score" in words else words
        named = [w for w in after if w in COMMAND_WORDS or config.team(w)]
    else:
        named = event.text.split()
    argument = next(iter(named), "")
    if argument.lower() == "settings":
        return settings.command(event, services)
    if argument.lower() == "link":
        return link.link(event, services, named[1] if len(named) > 1 else "")
    if argument.lower() == "unlink":
        return link.unlink(event, services)
    if argument.lower() == "alerts":
        return alerts(services, event, named[1] if len(named) > 1 else "")
    if argument.lower() == "help":
        return Reply(help_message(config), private=True)
    if argument.lower() == "all":
        return overview.show(services)
    if argument:
        team = services.team(argument.lower())
        if team is None:
            note = f"There is no team called “{user_text(argument)}”."
            return Reply(help_message(config, note), private=True)
    else:
        team = services.team_for_space(event.space)
        if team is None:
            note = "This Space is not linked to a team: name one, e.g. /score TEAM."
            return Reply(help_message(config, note), private=True)
    button = settings.settings_button(services, team, event.space)
    return Reply(services.score_card(team, refresh_function=config.chat.button_function, settings=button))


def alerts(services: Services, event: ChatEvent, argument: str) -> Reply:
    """`/score alerts [TEAM]`: each KPI's alert state, since when, and its last transitions (reads no source)."""
    config = services.config
    team = services.team(argument.lower()) if argument else services.team_for_space(event.space)
    if team is None:
        note = (
            f"There is no team called “{user_text(argument)}”."
            if argument
            else ("This Space is not linked to a team: name one, e.g. /score alerts TEAM.")
        )
        return Reply(help_message(config, note), private=True)
    states = team_alert_states(services.store, team) if team.alerts else []
    return Reply(alerts_status_message(team, states, config.zone(team)))
