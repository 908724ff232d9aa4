"""`/score link TEAM` and `/score unlink`: a Space linked to a team from Chat, when the YAML allows it.

``settings.link: editors`` lets the settings' editors link a Space that the
YAML's ``spaces`` do not already give to a team; ``off`` (the default) keeps
the YAML the only place. Every link and unlink is audited with who and when.
"""

from __future__ import annotations

from bot.cards import help_message, user_text
from bot.chat.events import ChatEvent
from bot.chat.replies import Reply
from bot.context import Services
from bot.settings_dialog import UNCHECKED
from bot.team_settings import link_refusal
from handlers.settings import access


def link(event: ChatEvent, services: Services, team_id: str) -> Reply:
    """Link the Space to ``team_id`` (its scheduled posts still go to the team's targets)."""
    refusal = _refusal(event, services)
    if refusal:
        return _private(services, refusal)
    if not team_id:
        return _private(services, "Name the team: /score link TEAM.")
    space = event.space or ""
    config = services.config
    problem = link_refusal(config, space, team_id.lower())
    team = config.team(team_id.lower())
    if problem or team is None:
        return _private(services, problem or f"There is no team called “{user_text(team_id)}”.")
    who = event.user_email or event.user or "someone in Chat"
    before = services.store.link_space(space, team.id, who=who, at=services.clock())
    services.settings.forget()  # this process's next /score reads the link
    was = config.team(before) if before else None
    moved = f" (it was linked to {was.name})" if was else ""
    text = f"This Space is now linked to {team.name} ({team.id}){moved}: /score shows its card here."
    return Reply({"text": text})


def unlink(event: ChatEvent, services: Services) -> Reply:
    """Unlink the Space from the team it was linked to from Chat."""
    refusal = _refusal(event, services)
    if refusal:
        return _private(services, refusal)
    config, space = services.config, event.space or ""
    given = config.team_for_space(space)
    if given is not None:
        return _private(
            services, f"This Space is given to {given.name} in the configuration; ask whoever runs Scorebot."
        )
    who = event.user_email or event.user or "someone in Chat"
    team_id = services.store.unlink_space(space, who=who, at=services.clock())
    services.settings.forget()
    if team_id is None:
        return _private(services, "This Space is not linked to a team.")
    team = config.team(team_id)
    return Reply({"text": f"This Space is no longer linked to {team.name if team else team_id}."})


def _refusal(event: ChatEvent, services: Services) -> str | None:
    """Why the asker may not link or unlink here, if they may not."""
    if services.config.settings.link != "editors":
        return "Spaces are linked to teams in the configuration only (settings.link is off); ask whoever runs Scorebot."
    if not event.space or event.space_type == "DIRECT_MESSAGE":
        return "Link a Space, not a direct message: type /score link TEAM in the team's Space."
    rights = access(event, services)
    if not rights.allowed:
        return f"Only {rights.who_can} can link this Space to a team." + (UNCHECKED if rights.unchecked else "")
    return None


def _private(services: Services, note: str) -> Reply:
    return Reply(help_message(services.config, note), private=True)
