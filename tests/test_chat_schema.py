"""The Chat schema check catches what Chat would refuse, with a path to the fault."""

import copy

import pytest
from jsonschema import Draft7Validator

from tests.chat_schema import (
    chat_json_schema,
    validate_addon_response,
    validate_card,
    validate_message,
)

WIDGETS = "$.cardsV2[0].card.sections[0].widgets"


def good_card():
    return {
        "cardId": "score-security",
        "card": {
            "header": {
                "title": "Security index",
                "subtitle": "Week 47",
                "imageUrl": "https://example.com/logo.png",
                "imageType": "CIRCLE",
            },
            "sections": [
                {
                    "header": "KPIs",
                    "collapsible": True,
                    "uncollapsibleWidgetsCount": 2,
                    "widgets": [
                        {
                            "decoratedText": {
                                "topLabel": "Open critical issues",
                                "text": '<b>3</b> <font color="#188038">▼ 2</font>',
                                "bottomLabel": "target 5",
                                "startIcon": {"knownIcon": "BOOKMARK"},
                                "wrapText": True,
                                "button": {
                                    "text": "Open",
                                    "onClick": {"openLink": {"url": "https://crm.example.com/q/1"}},
                                },
                            }
                        },
                        {"textParagraph": {"text": "Index <b>82</b> ▁▂▄▆█"}},
                        {"divider": {}},
                        {
                            "columns": {
                                "columnItems": [
                                    {
                                        "horizontalSizeStyle": "FILL_AVAILABLE_SPACE",
                                        "widgets": [{"textParagraph": {"text": "left"}}],
                                    },
                                    {"widgets": [{"decoratedText": {"text": "right"}}]},
                                ]
                            }
                        },
                        {"image": {"imageUrl": "https://example.com/chart.png", "altText": "trend"}},
                        {
                            "buttonList": {
                                "buttons": [
                                    {
                                        "text": "Refresh",
                                        "onClick": {
                                            "action": {
                                                "function": "refresh",
                                                "parameters": [{"key": "team", "value": "security"}],
                                            }
                                        },
                                    }
                                ]
                            }
                        },
                    ],
                }
            ],
        },
    }


def good_message():
    return {
        "text": "*Security* is on target",
        "cardsV2": [good_card()],
        "thread": {"threadKey": "weekly-security"},
        "privateMessageViewer": {"name": "users/1234567890"},
        "actionResponse": {"type": "UPDATE_MESSAGE"},
    }


def widgets(message):
    return message["cardsV2"][0]["card"]["sections"][0]["widgets"]


def test_the_schema_is_valid_draft_7_and_covers_the_card_schemas():
    schema = chat_json_schema()
    Draft7Validator.check_schema(schema)
    assert {"Message", "CardWithId", "GoogleAppsCardV1Widget"} <= set(schema["definitions"])
    assert schema["definitions"]["GoogleAppsCardV1DecoratedText"]["additionalProperties"] is False


def test_known_good_message_and_card_pass():
    assert validate_message(good_message()) == []
    assert validate_card(good_card()) == []


def test_misspelled_field_is_caught_with_its_path():
    message = good_message()
    widgets(message)[0] = {"decoratedtext": {"text": "x"}}
    problems = validate_message(message)
    assert f"{WIDGETS}[0]: Additional properties are not allowed ('decoratedtext' was unexpected)" in problems
    assert any(p.startswith(f"{WIDGETS}[0]: widget sets no kind") for p in problems)


def test_bad_enum_value_is_caught():
    message = good_message()
    message["cardsV2"][0]["card"]["header"]["imageType"] = "ROUND"
    assert validate_message(message) == [
        "$.cardsV2[0].card.header.imageType: 'ROUND' is not one of ['SQUARE', 'CIRCLE']"
    ]


def test_widget_with_two_kinds_is_caught():
    message = good_message()
    widgets(message)[1]["divider"] = {}
    assert validate_message(message) == [
        f"{WIDGETS}[1]: widget sets 2 kinds (divider, textParagraph); exactly one is allowed"
    ]


def test_nested_column_widget_with_two_kinds_is_caught():
    message = good_message()
    widgets(message)[3]["columns"]["columnItems"][1]["widgets"][0]["textParagraph"] = {"text": "both"}
    assert validate_message(message) == [
        f"{WIDGETS}[3].columns.columnItems[1].widgets[0]: "
        "widget sets 2 kinds (decoratedText, textParagraph); exactly one is allowed"
    ]


def test_on_click_with_two_actions_or_none_is_caught():
    message = good_message()
    on_click = widgets(message)[5]["buttonList"]["buttons"][0]["onClick"]
    on_click["openLink"] = {"url": "https://example.com"}
    path = f"{WIDGETS}[5].buttonList.buttons[0].onClick"
    assert validate_message(message) == [f"{path}: onClick sets 2 actions (action, openLink); exactly one is allowed"]
    on_click.clear()
    assert validate_message(message)[0].startswith(f"{path}: onClick sets no action")


def test_int_where_an_object_is_expected_is_caught():
    message = good_message()
    message["cardsV2"][0]["card"]["header"] = 5
    assert validate_message(message) == ["$.cardsV2[0].card.header: 5 is not of type 'object'"]


@pytest.mark.parametrize(("top_level", "in_columns", "ok"), [(100, 0, True), (101, 0, False), (99, 2, False)])
def test_widget_limit_counts_nested_widgets(top_level, in_columns, ok):
    message = good_message()
    row = [{"textParagraph": {"text": "row"}}]
    columns = {"columns": {"columnItems": [{"widgets": row * in_columns}]}}
    widgets(message)[:] = [copy.deepcopy(row[0]) for _ in range(top_level - (1 if in_columns else 0))]
    if in_columns:
        widgets(message).append(columns)
    problems = validate_message(message)
    total = top_level + in_columns
    assert problems == ([] if ok else [f"$.cardsV2[0].card: card has {total} widgets; the limit is 100"])


def test_message_size_counts_utf8_bytes():
    assert validate_message({"text": "x" * 31_000}) == []
    big = {"text": "€" * 11_000}  # 11,000 characters, 33,000 bytes
    [problem] = validate_message(big)
    assert problem.startswith("$: message is 33011 bytes as UTF-8 JSON; the limit is 32000")


def test_int64_fields_take_digit_strings_and_integers():
    assert validate_message({"slashCommand": {"commandId": "1"}}) == []
    assert validate_message({"slashCommand": {"commandId": 1}}) == []
    assert validate_message({"slashCommand": {"commandId": "one"}}) == [
        "$.slashCommand.commandId: 'one' does not match '^-?[0-9]+$'"
    ]


def test_validate_card_reports_paths_from_the_card():
    card = good_card()
    card["card"]["sections"][0]["widgets"][2] = {"divider": {}, "image": {"imageUrl": "u"}}
    assert validate_card(card) == [
        "$.card.sections[0].widgets[2]: widget sets 2 kinds (divider, image); exactly one is allowed"
    ]


@pytest.mark.parametrize("action", ["createMessageAction", "updateMessageAction"])
def test_addon_response_wrapping_a_good_message_passes(action):
    message = good_message()
    del message["actionResponse"]
    body = {"hostAppDataAction": {"chatDataAction": {action: {"message": message}}}}
    assert validate_addon_response(body) == []


def test_addon_response_checks_the_inner_message_with_full_paths():
    message = good_message()
    message["cardsV2"][0]["card"]["header"]["imageType"] = "ROUND"
    body = {"hostAppDataAction": {"chatDataAction": {"createMessageAction": {"message": message}}}}
    assert validate_addon_response(body) == [
        "$.hostAppDataAction.chatDataAction.createMessageAction.message.cardsV2[0].card.header.imageType: "
        "'ROUND' is not one of ['SQUARE', 'CIRCLE']",
        "$.hostAppDataAction.chatDataAction.createMessageAction.message.actionResponse: "
        "add-on replies cannot carry a classic actionResponse",
    ]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"text": "hi"}, "$: expected an object with exactly one key, one of ['hostAppDataAction'] (found ['text'])"),
        (
            {"hostAppDataAction": {"chatDataAction": {"createMessageAction": {}, "updateMessageAction": {}}}},
            "$.hostAppDataAction.chatDataAction: expected an object with exactly one key",
        ),
        (
            {"hostAppDataAction": {"chatDataAction": {"createMessage": {"message": {}}}}},
            "$.hostAppDataAction.chatDataAction: expected an object with exactly one key",
        ),
        (
            {"hostAppDataAction": {"chatDataAction": {"createMessageAction": {"message": "hi"}}}},
            "$.hostAppDataAction.chatDataAction.createMessageAction.message: 'hi' is not of type 'object'",
        ),
    ],
)
def test_addon_response_wrapper_shape_is_checked(body, problem):
    problems = validate_addon_response(body)
    assert len(problems) == 1
    assert problems[0].startswith(problem)
