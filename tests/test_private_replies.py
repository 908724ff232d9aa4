"""Answers meant for one person (help, an unknown team, an unlinked Space, a configuration problem) are shown
to that person alone (`privateMessageViewer`) in a shared Space; team cards stay visible to everyone."""

import time

import pytest

from bot.app import create_app
from bot.config import CHAT_ISSUER
from bot.services import build_services
from tests import payloads as p
from tests.test_web import PROJECT_NUMBER, card_of, make_config, post

ASKER = {"name": p.USER["name"]}
ELSEWHERE = {"name": "spaces/ELSEWHERE", "spaceType": "SPACE"}
DIRECT = {"name": "spaces/DM", "spaceType": "DIRECT_MESSAGE", "singleUserBotDm": True}


def app_client(tmp_path, token_factory, **chat):
    config = make_config(tmp_path, audience=PROJECT_NUMBER, certs_url=token_factory.certs_url, **chat)
    return create_app(services=build_services(config, store_url="sqlite:///store.db")).test_client()


@pytest.fixture
def auth(token_factory):
    now = int(time.time())
    token = token_factory.sign(iss=CHAT_ISSUER, aud=PROJECT_NUMBER, iat=now, exp=now + 3600)
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("body", "action"),
    [
        (p.classic_slash(" help"), "NEW_MESSAGE"),
        (p.addon_slash(" help"), "createMessageAction"),
        (p.classic_slash(" nosuchteam"), "NEW_MESSAGE"),
        (p.addon_app_command(" nosuchteam"), "createMessageAction"),
        (p.classic_slash(space=ELSEWHERE), "NEW_MESSAGE"),
        (p.classic_slash(command_id="9"), "NEW_MESSAGE"),
        (p.classic_mention(" hello"), "NEW_MESSAGE"),
        (p.addon_mention(" hello"), "createMessageAction"),
    ],
)
def test_answers_for_the_asker_alone_are_private(tmp_path, token_factory, auth, body, action):
    client = app_client(tmp_path, token_factory)
    kind, message = card_of(post(client, body, auth).get_json())  # valid against the Chat API schema
    assert kind == action
    assert message["privateMessageViewer"] == ASKER


@pytest.mark.parametrize(
    "body",
    [p.classic_slash(), p.classic_slash(" security"), p.addon_slash(), p.classic_added(), p.classic_click("security")],
)
def test_team_cards_and_the_welcome_are_for_everyone(tmp_path, token_factory, auth, body):
    client = app_client(tmp_path, token_factory)
    _, message = card_of(post(client, body, auth).get_json())
    assert "privateMessageViewer" not in message


def test_a_card_whose_team_left_the_configuration_tells_the_clicker_alone(tmp_path, token_factory, auth):
    client = app_client(tmp_path, token_factory)
    kind, message = card_of(post(client, p.classic_click("gone"), auth).get_json())
    assert kind == "NEW_MESSAGE"  # the public card is left as it is; an update could not be made private
    assert message["privateMessageViewer"] == ASKER
    assert "no longer in Scorebot's configuration" in message["text"]


def test_in_a_direct_message_nothing_needs_to_be_private(tmp_path, token_factory, auth):
    client = app_client(tmp_path, token_factory)
    _, message = card_of(post(client, p.classic_slash(" help", space=DIRECT), auth).get_json())
    assert "privateMessageViewer" not in message


def test_private_replies_can_be_turned_off(tmp_path, token_factory, auth):
    client = app_client(tmp_path, token_factory, private_replies=False)
    _, message = card_of(post(client, p.addon_slash(" help"), auth).get_json())
    assert "privateMessageViewer" not in message
