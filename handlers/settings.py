"""The settings dialog of the Space's team: open, check the schedule, save, cancel.

`/score settings` (a slash command that opens a dialog) and the card's Settings button (``OPEN_DIALOG``)
open it; a plain `/score settings` message answers the asker alone with a button that opens it, since Chat
opens dialogs only in answer to a dialog request. Every step reads the team's overrides from the store
(never the few seconds' copy /score uses) and checks the asker's right again. A save names the version the
dialog was opened at: if someone saved meanwhile, nothing is written, and the dialog shows the current
values and says so.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.cards import Message, help_message
from bot.chat.events import ChatEvent
from bot.chat.replies import DialogReply, Reply
from bot.config import TeamConfig
from bot.context import Services
from bot.settings_access import Access, check_access
from bot.settings_dialog import FIELD_TITLES, UNCHECKED, settings_card
from bot.settings_form import changes_from_form, schedule_check
from bot.team_settings import SettingsErrors, TeamSettings, effective_team, save_settings

log = logging.getLogger(__name__)


def space_settings(services: Services, space: str | None) -> TeamSettings | None:
    """The settings of ``space``'s team (the YAML's ``spaces`` first, then a link made from Chat), read now."""
    return services.settings.team_for_space(space, fresh=True)


def settings_button(services: Services, team: TeamConfig, space: str | None) -> bool:
    """Whether ``team``'s card in ``space`` shows a Settings button: teams may change something, and it is
    the Space's own team (as the last few seconds' read of the store says)."""
    if not services.config.settings.editable:
        return False
    own = services.team_for_space(space)
    return own is not None and own.id == team.id


def access(event: ChatEvent, services: Services) -> Access:
    """Whether the asker may change settings (and link Spaces) here: the YAML's ``settings.editors``."""
    return check_access(
        services.config.settings.editors, event.user_email, event.user, event.space, services.space_roles
    )


def command(event: ChatEvent, services: Services) -> Reply | DialogReply:
    """`/score settings`: the dialog when Chat asks for one, else a private card with a button that opens it."""
    current = space_settings(services, event.space)
    note = _unavailable(services, current)
    if note or current is None:
        return _note(event, services, note or "")
    if event.dialog == "REQUEST_DIALOG":
        return DialogReply(_card(event, services, current))
    return Reply(_opener(services, current.team.name), private=True)


def open_dialog(event: ChatEvent, services: Services) -> DialogReply | Reply:
    """The dialog of the Space's team, editable or read-only as the asker's right says."""
    current = space_settings(services, event.space)
    note = _unavailable(services, current)
    if note or current is None:
        return _note(event, services, note or "")
    return DialogReply(_card(event, services, current))


def check(event: ChatEvent, services: Services) -> DialogReply | Reply:
    """The dialog again with the schedule and zone typed: the next three posts, or what is wrong with them."""
    current, refusal = _dialog_team(event, services)
    if current is None:
        return DialogReply(None, refusal)
    posts, errors = schedule_check(services.config, current, event.form, services.clock())
    card = _card(event, services, current, form=event.form, errors=errors, posts=posts)
    return DialogReply(card)


def save(event: ChatEvent, services: Services) -> DialogReply | Reply:
    """Save what the dialog changed, if the asker may and no one saved since it was opened."""
    current, refusal = _dialog_team(event, services)
    if current is None:
        return DialogReply(None, refusal)
    rights = access(event, services)
    if not rights.allowed:
        return DialogReply(
            None, f"Only {rights.who_can} can change these settings." + (UNCHECKED if rights.unchecked else "")
        )
    config, now = services.config, services.clock()
    changes = changes_from_form(config, current, event.form, now)
    if not changes:
        return DialogReply(None, "Nothing changed.")
    who = event.user_email or event.user or "someone in Chat"
    try:
        result = save_settings(
            services.store, config, current.yaml.id, changes, version=_version(event), who=who, at=now
        )
    except SettingsErrors as refused:
        errors = {error.field: error.message for error in refused.errors}
        card = _card(
            event,
            services,
            current,
            form=event.form,
            errors=errors,
            posts=schedule_check(config, current, event.form, now)[0],
        )
        return DialogReply(card)
    services.settings.forget()  # this process's next /score and Refresh read what was just saved
    if not result.saved:
        latest = effective_team(config, current.yaml, result.overrides)
        who_then = result.overrides.changed_by or "someone"
        notice = f"{who_then} saved these settings while you were editing: here they are now. Make your change again."
        return DialogReply(_card(event, services, latest, notice=notice))
    changed = [_lower(title) for name, title in FIELD_TITLES.items() if name in result.changed]
    names = ", ".join(changed) or "nothing"
    log.info("team %s: settings changed by %s: %s", current.yaml.id, who, ", ".join(result.changed) or "-")
    return DialogReply(None, f"Saved: {names}.")


def cancel(event: ChatEvent, services: Services) -> DialogReply:
    """Cancel, Close or the close icon: the dialog closes and nothing is written."""
    return DialogReply(None)


def _dialog_team(event: ChatEvent, services: Services) -> tuple[TeamSettings | None, str]:
    """The team a step of an open dialog is about, or why the dialog should close."""
    current = space_settings(services, event.space)
    if current is None or current.yaml.id != event.parameters.get("team"):
        return None, "This Space's team changed since the dialog was opened: open the settings again."
    note = _unavailable(services, current)
    if note:
        return None, note
    return current, ""


def _card(event: ChatEvent, services: Services, current: TeamSettings, **shown: Any) -> dict[str, Any]:
    rights = access(event, services)
    return settings_card(
        services.config,
        current,
        services.clock(),
        function=services.config.chat.button_function,
        editable=rights.allowed,
        who_can=rights.who_can,
        unchecked=rights.unchecked,
        **shown,
    )


def _unavailable(services: Services, team: TeamSettings | None) -> str | None:
    """Why there is no dialog here, if there is none: nothing editable, or no team for the Space."""
    settings = services.config.settings
    if not settings.editable:
        return "Teams cannot change their settings from Chat here (the configuration's settings.editable is empty)."
    if team is None:
        link = " Link it with /score link TEAM." if settings.link == "editors" else ""
        return "This Space is not linked to a team, so it has no settings." + link
    return None


def _note(event: ChatEvent, services: Services, note: str) -> Reply | DialogReply:
    if event.dialog == "REQUEST_DIALOG":
        return DialogReply(None, note)
    return Reply(help_message(services.config, note), private=True)


def _lower(title: str) -> str:
    """A title inside a sentence: "Time zone" → "time zone", "KPIs on the card" unchanged."""
    return title if title[1:2].isupper() else title[:1].lower() + title[1:]


def _version(event: ChatEvent) -> int:
    try:
        return max(0, int(event.parameters.get("version", "0")))
    except ValueError:
        return 0


def _opener(services: Services, team_name: str) -> Message:
    """A card with a button that opens the settings dialog (Chat opens dialogs only from a dialog request)."""
    action = {
        "function": services.config.chat.button_function,
        "interaction": "OPEN_DIALOG",
        "parameters": [{"key": "action", "value": "settings"}],
    }
    card = {
        "header": {"title": f"Settings · {team_name}"},
        "sections": [
            {
                "widgets": [
                    {"textParagraph": {"text": "How and when this Space hears about its numbers."}},
                    {"buttonList": {"buttons": [{"text": "Open settings", "onClick": {"action": action}}]}},
                ]
            }
        ],
    }
    return {"text": f"Settings of {team_name}", "cardsV2": [{"cardId": "settings", "card": card}]}
