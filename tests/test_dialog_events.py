"""Dialog events in both formats (open, submit, close icon), their form inputs, and the answers that open,
replace and close a dialog, each checked against the offline Chat schema."""

import pytest

from bot.chat.events import Format, Kind, parse_event
from bot.chat.replies import DialogReply, dialog_body
from tests import payloads as p
from tests.chat_schema import validate_addon_dialog, validate_message

ADA = p.USER | {"email": "ada@example.com"}
CARD = {"header": {"title": "Settings"}, "sections": [{"widgets": [{"textParagraph": {"text": "hello"}}]}]}


@pytest.mark.parametrize("make", [p.classic_dialog_click, p.addon_dialog_click])
def test_a_submit_carries_the_form_the_parameters_and_the_user(make):
    form = {"schedule": "0 10 * * 1-5", "kpis": ["open", "fixed"], "until": 1_767_225_600_000}
    event = parse_event(make({"action": "settings-save", "version": "3"}, form=form, user=ADA))
    assert event.kind is Kind.CLICK
    assert event.dialog == "SUBMIT_DIALOG"
    assert event.parameters["action"] == "settings-save" and event.parameters["version"] == "3"
    assert dict(event.form) == {"schedule": ("0 10 * * 1-5",), "kpis": ("open", "fixed"), "until": ("1767225600000",)}
    assert (event.user, event.user_email) == ("users/111", "ada@example.com")


@pytest.mark.parametrize("make", [p.classic_dialog_command, p.addon_dialog_command])
def test_a_slash_command_that_opens_a_dialog(make):
    event = parse_event(make(" settings"))
    assert (event.kind, event.dialog, event.text, event.command_id) == (Kind.COMMAND, "REQUEST_DIALOG", "settings", 1)


@pytest.mark.parametrize("make", [p.classic_dialog_click, p.addon_dialog_click])
def test_the_close_icon_is_a_cancel_without_parameters(make):
    event = parse_event(make({}, dialog="CANCEL_DIALOG"))
    assert (event.kind, event.dialog, event.parameters) == (Kind.CLICK, "CANCEL_DIALOG", {})


def test_events_that_are_not_dialogs_say_so():
    assert parse_event(p.classic_click()).dialog is None
    assert parse_event(p.addon_click()).dialog is None
    assert parse_event(p.classic_slash(" settings")).dialog is None
    assert parse_event(p.classic_slash()).form == {}


def test_a_dialog_type_with_is_dialog_event_false_is_not_a_dialog():
    body = p.classic_dialog_click({"action": "x"}) | {"isDialogEvent": False}
    assert parse_event(body).dialog is None


@pytest.mark.parametrize("email", ["not an address", 42, "a@b@c", ""])
def test_an_odd_email_is_left_out(email):
    assert parse_event(p.classic_dialog_click({"action": "x"}, user=p.USER | {"email": email})).user_email is None


def test_odd_form_inputs_are_skipped():
    body = p.classic_dialog_click({"action": "x"})
    body["common"]["formInputs"] = {"a": "text", "b": {"stringInputs": {"value": "x"}}, "c": {"dateInput": {}}, "d": []}
    assert parse_event(body).form == {}


def test_classic_answers_open_and_close_a_dialog():
    opened = dialog_body(DialogReply(CARD), Format.CLASSIC)
    assert opened == {"actionResponse": {"type": "DIALOG", "dialogAction": {"dialog": {"body": CARD}}}}
    closed = dialog_body(DialogReply(None, "Saved."), Format.CLASSIC)
    status = closed["actionResponse"]["dialogAction"]["actionStatus"]
    assert status == {"statusCode": "OK", "userFacingMessage": "Saved."}
    for body in (opened, closed, dialog_body(DialogReply(None), Format.CLASSIC)):
        assert validate_message(body) == []


def test_addon_answers_push_a_card_and_end_navigation():
    pushed = dialog_body(DialogReply(CARD), Format.ADDON)
    assert pushed == {"action": {"navigations": [{"pushCard": CARD}]}}
    closed = dialog_body(DialogReply(None, "Saved."), Format.ADDON)
    assert closed["action"] == {
        "navigations": [{"endNavigation": {"action": "CLOSE_DIALOG"}}],
        "notification": {"text": "Saved."},
    }
    for body in (pushed, closed):
        assert validate_addon_dialog(body) == []


def test_the_addon_validator_catches_a_bad_card_and_a_classic_answer():
    bad = {"action": {"navigations": [{"pushCard": {"sections": [{"widgets": [{"nope": {}}]}]}}]}}
    assert validate_addon_dialog(bad) != []
    assert validate_addon_dialog(dialog_body(DialogReply(CARD), Format.CLASSIC)) != []


@pytest.mark.parametrize("fmt", list(Format))
def test_a_card_over_chats_limits_closes_the_dialog_with_a_notice(fmt):
    many = {"sections": [{"widgets": [{"textParagraph": {"text": "x"}}] * 101}]}
    big = {"sections": [{"widgets": [{"textParagraph": {"text": "x" * 33_000}}]}]}
    for card in (many, big):
        body = dialog_body(DialogReply(card), fmt)
        assert "These settings are too large to show." in str(body)
        assert "pushCard" not in str(body) and "'dialog'" not in str(body)
