"""Alert messages: what each says, the button to the full card, and Chat's schema and limits, folded or not."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.alert_cards import AlertNotice, alert_message
from bot.cards import message_bytes, widget_count
from bot.config import DEMO_CONFIG, load_config
from tests.chat_schema import validate_message

NOW = datetime(2026, 11, 9, 10, 15, tzinfo=UTC)
ZONE = ZoneInfo("America/New_York")
CONFIG = load_config(DEMO_CONFIG)
TEAM = CONFIG.teams[0]
KPI = TEAM.kpis[0]
ITEMS = tuple(
    {"title": f"Checkout fails <{n}>", "category": "Critical", "created": "2026-11-09T09:00:00+00:00", "link": None}
    | ({"link": f"https://crm.example.com/{n}"} if n % 2 else {})
    for n in range(8)
)


def fire(**changes):
    values = {"kind": "fire", "kpi": KPI, "at": NOW, "level": "bad", "index": 85.0, "incident": NOW}
    return AlertNotice(**(values | {"came_from": "warning", "items": ITEMS} | changes))


def test_an_alert_says_what_crossed_from_and_to_the_index_against_its_levels_and_its_items():
    message = alert_message(TEAM, [fire()], ZONE, NOW, refresh_function="refresh")
    assert validate_message(message) == []
    card = message["cardsV2"][0]["card"]
    assert card["header"]["title"] == f"🔴 {TEAM.name} · {KPI.name}: Bad"
    assert card["header"]["subtitle"].startswith("Warning → Bad · Mon 09 Nov 05:15 EST")
    widgets = card["sections"][0]["widgets"]
    index = widgets[0]["decoratedText"]["text"]
    assert index == f"<b>85</b> · target {KPI.target:g} · warning {KPI.warning:g}"
    listed = widgets[1]["textParagraph"]["text"]
    assert listed.count("<br>") == 5  # a heading and the 5 heaviest
    assert '<a href="https://crm.example.com/1">Checkout fails &lt;1&gt;</a> (Critical, 1 h)' in listed
    assert "Checkout fails &lt;0&gt; (Critical, 1 h)" in listed and "&lt;5&gt;" not in listed
    [button] = card["sections"][-1]["widgets"][0]["buttonList"]["buttons"]
    assert button["text"] == "Full card"
    assert {"key": "action", "value": "refresh"} in button["onClick"]["action"]["parameters"]
    assert message["text"] == f"{TEAM.name} · {KPI.name}: Bad (Mon 09 Nov 05:15 EST): 85 (target {KPI.target:g})"


def test_a_webhook_alert_opens_the_crm_instead_of_a_button_it_cannot_serve():
    team = TEAM.model_copy(update={"crm_url": "https://crm.example.com/list"})
    message = alert_message(team, [fire()], ZONE, NOW, refresh_function=None)
    [button] = message["cardsV2"][0]["card"]["sections"][-1]["widgets"][0]["buttonList"]["buttons"]
    assert button == {"text": "Open in CRM", "onClick": {"openLink": {"url": "https://crm.example.com/list"}}}


@pytest.mark.parametrize(
    ("notice", "title", "subtitle"),
    [
        (fire(kind="resolve", index=35.0, fired_for=timedelta(hours=26, minutes=5)), "resolved", "after 26 h 5 min"),
        (fire(kind="remind", at=NOW + timedelta(days=1)), "still Bad", "since Mon 09 Nov 05:15 EST"),
        (fire(kind="cannot-read", index=None, reason="HTTP 503"), "cannot read", "since Mon 09 Nov"),
        (fire(kind="readable", index=40.0), "readable again", "Mon 09 Nov 05:15 EST"),
    ],
)
def test_resolves_reminders_and_reading_problems_say_so(notice, title, subtitle):
    message = alert_message(TEAM, [notice], ZONE, NOW, refresh_function="refresh")
    assert validate_message(message) == []
    header = message["cardsV2"][0]["card"]["header"]
    assert header["title"].endswith(title) and header["subtitle"].startswith(subtitle)


def test_a_resolve_lists_no_items_and_a_cannot_read_says_why():
    resolve = alert_message(
        TEAM, [fire(kind="resolve", fired_for=timedelta(minutes=30))], ZONE, NOW, refresh_function=None
    )
    assert "Heaviest" not in str(resolve)
    cannot = alert_message(
        TEAM, [fire(kind="cannot-read", index=None, reason="HTTP 503")], ZONE, NOW, refresh_function=None
    )
    assert cannot["cardsV2"][0]["card"]["sections"][0]["widgets"] == [{"textParagraph": {"text": "HTTP 503"}}]


def test_a_night_of_notices_folds_into_one_message_within_chats_limits():
    notices = [fire(at=NOW + timedelta(minutes=15 * n), kind=("fire", "remind", "resolve")[n % 3]) for n in range(120)]
    message = alert_message(TEAM, notices, ZONE, NOW, refresh_function="refresh")
    assert validate_message(message) == []
    card = message["cardsV2"][0]["card"]
    assert card["header"]["title"] == f"🔕 {TEAM.name}: 120 alerts held by quiet hours"
    assert widget_count(message) <= 100 and message_bytes(message) <= 30_000
    assert card["sections"][0]["header"].startswith(f"Bad · {KPI.name} · ")
    shown = [s for s in card["sections"] if "header" in s]
    assert 20 <= len(shown) <= 40
    assert card["sections"][-2]["widgets"] == [{"textParagraph": {"text": f"… and {120 - len(shown)} more"}}]
    assert len(message["text"].splitlines()) == len(shown)
