"""Answers meant for one person (help, an unknown team, an unlinked Space, a configuration problem) are shown
to that person alone (`privateMessageViewer`) in a shared Space; team cards stay visible to everyone."""

import json
import re
import time

import pytest

from bot.app import create_app
from bot.cards import MAX_USER_TEXT, message_bytes
from bot.chat.events import Format
from bot.chat.replies import CHAT_MESSAGE_BYTES, Reply, wrap
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


def with_user(body, user):
    """``body`` (either format) with its ``user`` replaced, or removed when ``user`` is None."""
    holder = body.get("chat", body)
    holder.pop("user")
    if user is not None:
        holder["user"] = user
    return body


LONGEST_RUN = re.compile(r"(q)\1*")


@pytest.mark.parametrize("make", [p.classic_slash, p.addon_slash])
@pytest.mark.parametrize(
    "user",
    [
        pytest.param({"name": "users/" + "1" * 100_000, "type": "HUMAN"}, id="100 KB name"),
        pytest.param({"name": "users/" + "q" * 255}, id="name one past the limit"),
        pytest.param({"name": ["users/111"]}, id="name a list"),
        pytest.param({"name": "spaces/DEMO-CUSTOMER"}, id="not a user"),
        pytest.param({"name": "users/111\n"}, id="name with a newline"),
        pytest.param({"displayName": "Ada"}, id="no name"),
        pytest.param(None, id="no user"),
    ],
)
def test_a_user_name_that_is_not_a_sane_users_name_makes_the_answer_public(tmp_path, token_factory, auth, make, user):
    client = app_client(tmp_path, token_factory)
    response = post(client, with_user(make(" help"), user), auth)
    assert response.status_code == 200
    _, message = card_of(response.get_json())  # valid against the Chat API schema
    assert "privateMessageViewer" not in message
    assert len(response.get_data()) <= CHAT_MESSAGE_BYTES


@pytest.mark.parametrize("name", ["users/ada@example.com", "users/" + "7" * 254])
def test_a_user_named_by_email_or_a_long_id_still_gets_a_private_answer(tmp_path, token_factory, auth, name):
    client = app_client(tmp_path, token_factory)
    _, message = card_of(post(client, with_user(p.classic_slash(" help"), {"name": name}), auth).get_json())
    assert message["privateMessageViewer"] == {"name": name}


@pytest.mark.parametrize("make", [p.classic_slash, p.addon_slash, p.classic_mention])
def test_a_reply_echoes_a_bounded_part_of_what_was_typed(tmp_path, token_factory, auth, make):
    client = app_client(tmp_path, token_factory)
    body = make(" score " + "q" * 100_000) if make is p.classic_mention else make(" " + "q" * 100_000)
    response = post(client, body, auth)
    assert response.status_code == 200
    card_of(response.get_json())
    assert len(response.get_data()) <= CHAT_MESSAGE_BYTES
    echoed = max((len(run.group(0)) for run in LONGEST_RUN.finditer(response.get_data(as_text=True))), default=0)
    assert echoed <= MAX_USER_TEXT


@pytest.mark.parametrize("event_format", [Format.CLASSIC, Format.ADDON])
@pytest.mark.parametrize("size", [29_900, 40_000])
def test_the_size_guard_measures_the_final_body_with_its_viewer(event_format, size):
    message = {"text": "t" * size}
    body = wrap(Reply(message, private=True), event_format, "users/" + "v" * 5_000)
    assert message_bytes(body) <= CHAT_MESSAGE_BYTES
    assert json.dumps(body).count("v" * 5_000) == 1  # the viewer is kept; the message gave way
