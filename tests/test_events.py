"""Event parsing: both formats, and every quirk of events Google was seen to send."""

import json

import pytest

from bot.chat.events import Format, Kind, parse_event
from tests import payloads as p


@pytest.mark.parametrize(
    ("body", "fmt"),
    [
        (p.classic_slash(" security"), Format.CLASSIC),
        (p.classic_slash(" security", command_id="1.0"), Format.CLASSIC),
        (p.classic_app_command(" security"), Format.CLASSIC),
        (p.addon_slash(" security"), Format.ADDON),
        (p.addon_app_command(" security", command_id=1.0), Format.ADDON),
    ],
)
def test_slash_commands_in_every_shape(body, fmt):
    event = parse_event(body)
    assert (event.kind, event.format, event.command_id, event.text) == (Kind.COMMAND, fmt, 1, "security")
    assert event.space == "spaces/DEMO-CUSTOMER"


def test_bare_command_without_argument_text():
    assert parse_event(p.classic_slash()).text == ""
    assert parse_event(p.addon_slash()).text == ""


def test_argument_text_whitespace_is_folded():
    assert parse_event(p.classic_slash("  help ")).text == "help"


def test_other_command_ids_are_kept():
    assert parse_event(p.classic_slash(command_id="7")).command_id == 7


def test_message_action_is_not_a_slash_command():
    body = p.classic_app_command()
    body["appCommandMetadata"]["appCommandType"] = "MESSAGE_ACTION"
    assert parse_event(body).kind is Kind.MESSAGE


@pytest.mark.parametrize("body", [p.classic_mention(" score security"), p.addon_mention(" score security")])
def test_mentions_are_messages_with_text(body):
    event = parse_event(body)
    assert (event.kind, event.text, event.added_by_mention) == (Kind.MESSAGE, "score security", False)


def test_addon_mention_that_adds_the_app_is_marked():
    assert parse_event(p.addon_mention("", adding=True)).added_by_mention


@pytest.mark.parametrize("body", [p.classic_click("security"), p.addon_click("security")])
def test_clicks_carry_action_and_team(body):
    event = parse_event(body)
    assert event.kind is Kind.CLICK
    assert event.parameters == {"action": "refresh", "team": "security"}


def test_legacy_click_with_only_action_parameters():
    body = p.classic_click()
    del body["common"]
    assert parse_event(body).parameters == {"action": "refresh", "team": "customer"}


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (p.classic_added(), Kind.ADDED),
        (p.addon_added(), Kind.ADDED),
        (p.classic_removed(), Kind.REMOVED),
        (p.addon_removed(), Kind.REMOVED),
        (p.classic_other(), Kind.OTHER),
        (p.addon_other(), Kind.OTHER),
        ({}, Kind.OTHER),
        ({"chat": "nonsense"}, Kind.OTHER),
        ({"type": "MESSAGE", "message": "nonsense"}, Kind.MESSAGE),
    ],
)
def test_lifecycle_and_unknown_events(body, kind):
    assert parse_event(body).kind is kind


def test_space_falls_back_to_the_message_space():
    body = p.classic_slash()
    del body["space"]
    assert parse_event(body).space == "spaces/DEMO-CUSTOMER"


ODD_VALUES = [5, None, [], {}, "inf", float("inf"), 1e400, "x", [5], {"a": 5}, True]
SAMPLES = [
    p.classic_slash(" security"),
    p.classic_app_command(" security"),
    p.classic_mention(" score"),
    p.classic_click(),
    p.classic_added(),
    p.addon_slash(" security"),
    p.addon_app_command(" security"),
    p.addon_mention(" score", adding=True),
    p.addon_click(),
    p.addon_added(interaction_add=True),
]


def paths(node, prefix=()):
    """Every key path in a JSON tree."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        yield (*prefix, key)
        yield from paths(value, (*prefix, key))


def replaced(body, path, value):
    copy = json.loads(json.dumps(body))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy


def test_any_value_anywhere_parses_without_error():
    tried = 0
    for body in SAMPLES:
        for path in list(paths(body)):
            for value in ODD_VALUES:
                event = parse_event(replaced(body, path, value))
                assert isinstance(event.text, str)
                assert all(isinstance(k, str) and isinstance(v, str) for k, v in event.parameters.items())
                assert event.command_id is None or isinstance(event.command_id, int)
                tried += 1
    assert tried > 1000
