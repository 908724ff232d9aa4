"""Chat event bodies in both formats, shaped like events Google was seen to send."""

from typing import Any

SPACE = {"name": "spaces/DEMO-CUSTOMER", "type": "ROOM", "spaceType": "SPACE", "displayName": "Customers"}
USER = {"name": "users/111", "displayName": "Ada", "type": "HUMAN"}


def _message(text: str, argument: str | None, slash: Any = None, annotations: list | None = None) -> dict:
    message: dict[str, Any] = {"name": "spaces/DEMO-CUSTOMER/messages/m1", "text": text, "space": SPACE}
    if argument is not None:
        message["argumentText"] = argument
    if slash is not None:
        message["slashCommand"] = {"commandId": slash}
        message["annotations"] = [
            {"type": "SLASH_COMMAND", "slashCommand": {"commandId": slash, "commandName": "/score"}}
        ]
    if annotations:
        message["annotations"] = annotations
    return message


# Classic (DeprecatedEvent) bodies -------------------------------------------------


def classic_slash(argument: str | None = None, command_id: Any = "1", space: dict = SPACE) -> dict:
    """A `/score` typed in a Space: MESSAGE with slashCommand, plus the duplicate appCommandMetadata."""
    text = "/score" + (argument or "")
    return {
        "type": "MESSAGE",
        "eventTime": "2026-11-26T10:00:00.000Z",
        "space": space,
        "user": USER,
        "message": _message(text, argument, slash=command_id) | {"space": space},
        "appCommandMetadata": {"appCommandId": int(float(command_id)), "appCommandType": "SLASH_COMMAND"},
        "common": {"hostApp": "CHAT"},
    }


def classic_app_command(argument: str | None = None, command_id: Any = 1) -> dict:
    return {
        "type": "APP_COMMAND",
        "space": SPACE,
        "user": USER,
        "message": _message("/score" + (argument or ""), argument),
        "appCommandMetadata": {"appCommandId": command_id, "appCommandType": "SLASH_COMMAND"},
    }


def classic_mention(text: str) -> dict:
    return {"type": "MESSAGE", "space": SPACE, "user": USER, "message": _message("@Scorebot" + text, text)}


def classic_click(
    team: str = "customer", space: dict = SPACE, message_name: str = "spaces/DEMO-CUSTOMER/messages/m2"
) -> dict:
    return {
        "type": "CARD_CLICKED",
        "space": space,
        "user": USER,
        "message": {"name": message_name, "sender": {"type": "BOT"}, "cardsV2": []},
        "action": {
            "actionMethodName": "refresh",
            "parameters": [{"key": "action", "value": "refresh"}, {"key": "team", "value": team}],
        },
        "common": {"invokedFunction": "refresh", "parameters": {"action": "refresh", "team": team}},
    }


def classic_added(space: dict = SPACE) -> dict:
    return {"type": "ADDED_TO_SPACE", "space": space, "user": USER}


def classic_removed() -> dict:
    return {"type": "REMOVED_FROM_SPACE", "space": SPACE, "user": USER}


def classic_other() -> dict:
    return {"type": "WIDGET_UPDATED", "space": SPACE, "user": USER, "retentionSettings": {}}


# Add-on bodies -----------------------------------------------------------------------


def _addon(payload_name: str, payload: dict, parameters: dict | None = None) -> dict:
    common: dict[str, Any] = {"hostApp": "CHAT", "userLocale": "en", "timeZone": {"id": "UTC", "offset": 0.0}}
    if parameters is not None:
        common["parameters"] = parameters
    return {
        "commonEventObject": common,
        "authorizationEventObject": {"systemIdToken": "not-used-here"},
        "chat": {"user": USER, "eventTime": "2026-11-26T10:00:00.000Z", payload_name: payload},
    }


def addon_slash(argument: str | None = None, command_id: Any = 1.0, space: dict = SPACE) -> dict:
    message = _message("/score" + (argument or ""), argument, slash=command_id)
    return _addon("messagePayload", {"message": message, "space": space})


def addon_app_command(argument: str | None = None, command_id: Any = 1.0) -> dict:
    payload = {
        "appCommandMetadata": {"appCommandId": command_id, "appCommandType": "SLASH_COMMAND"},
        "message": _message("/score" + (argument or ""), argument),
        "space": SPACE,
    }
    return _addon("appCommandPayload", payload)


def addon_mention(text: str, adding: bool = False) -> dict:
    annotations = [
        {
            "type": "USER_MENTION",
            "startIndex": 0.0,
            "length": 9.0,
            "userMention": {"type": "ADD" if adding else "MENTION"},
        }
    ]
    return _addon(
        "messagePayload", {"message": _message("@Scorebot" + text, text, annotations=annotations), "space": SPACE}
    )


def addon_click(team: str = "customer") -> dict:
    message = {"name": "spaces/DEMO-CUSTOMER/messages/m2", "sender": {"type": "BOT"}}
    return _addon("buttonClickedPayload", {"message": message, "space": SPACE}, {"action": "refresh", "team": team})


def addon_added(interaction_add: bool = False) -> dict:
    return _addon("addedToSpacePayload", {"space": SPACE, "interactionAdd": interaction_add})


def addon_removed() -> dict:
    return _addon("removedFromSpacePayload", {"space": SPACE})


def addon_other() -> dict:
    return _addon("widgetUpdatedPayload", {"space": SPACE})


# Dialogs: a button with OPEN_DIALOG, a slash command that opens a dialog, and the dialog's own buttons -----


def form_inputs(values: dict[str, Any]) -> dict:
    """``formInputs`` as Chat sends them: a list of strings for most widgets, ``msSinceEpoch`` for a date."""
    inputs: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, int):
            inputs[name] = {"dateInput": {"msSinceEpoch": str(value)}}
        else:
            inputs[name] = {"stringInputs": {"value": [value] if isinstance(value, str) else list(value)}}
    return inputs


def classic_dialog_click(
    parameters: dict[str, str],
    dialog: str = "SUBMIT_DIALOG",
    form: dict[str, Any] | None = None,
    user: dict = USER,
    space: dict = SPACE,
) -> dict:
    """A classic CARD_CLICKED dialog event: ``REQUEST_DIALOG`` from a card's button, ``SUBMIT_DIALOG`` from the
    dialog's, ``CANCEL_DIALOG`` from its close icon (which carries no parameters)."""
    common: dict[str, Any] = {"hostApp": "CHAT"}
    if dialog != "CANCEL_DIALOG":
        common["invokedFunction"] = parameters.get("action", "")
        common["parameters"] = parameters
    if form is not None:
        common["formInputs"] = form_inputs(form)
    body: dict[str, Any] = {
        "type": "CARD_CLICKED",
        "eventTime": "2026-11-26T10:00:00.000Z",
        "space": space,
        "user": user,
        "isDialogEvent": True,
        "dialogEventType": dialog,
        "common": common,
    }
    if dialog == "REQUEST_DIALOG":
        body["message"] = {"name": "spaces/DEMO-CUSTOMER/messages/m2", "sender": {"type": "BOT"}}
    return body


def addon_dialog_click(
    parameters: dict[str, str],
    dialog: str = "SUBMIT_DIALOG",
    form: dict[str, Any] | None = None,
    user: dict = USER,
    space: dict = SPACE,
) -> dict:
    """An add-on button click in or into a dialog: ``buttonClickedPayload`` with the dialog's event type."""
    payload: dict[str, Any] = {"space": space, "isDialogEvent": True, "dialogEventType": dialog}
    if dialog == "REQUEST_DIALOG":
        payload["message"] = {"name": "spaces/DEMO-CUSTOMER/messages/m2", "sender": {"type": "BOT"}}
    body = _addon("buttonClickedPayload", payload, parameters if dialog != "CANCEL_DIALOG" else None)
    body["chat"]["user"] = user
    if form is not None:
        body["commonEventObject"]["formInputs"] = form_inputs(form)
    return body


def classic_dialog_command(argument: str, user: dict = USER, space: dict = SPACE) -> dict:
    """A slash command configured to open a dialog: MESSAGE with ``isDialogEvent`` and ``REQUEST_DIALOG``."""
    return classic_slash(argument, space=space) | {
        "isDialogEvent": True,
        "dialogEventType": "REQUEST_DIALOG",
        "user": user,
    }


def addon_dialog_command(argument: str, user: dict = USER, space: dict = SPACE) -> dict:
    """The same as an add-on: ``appCommandPayload`` with ``isDialogEvent`` and ``REQUEST_DIALOG``."""
    payload = {
        "appCommandMetadata": {"appCommandId": 1.0, "appCommandType": "SLASH_COMMAND"},
        "message": _message("/score" + argument, argument),
        "space": space,
        "isDialogEvent": True,
        "dialogEventType": "REQUEST_DIALOG",
    }
    body = _addon("appCommandPayload", payload)
    body["chat"]["user"] = user
    return body
