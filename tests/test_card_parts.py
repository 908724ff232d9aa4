"""The parts of a team card, each at its edges: the Settings button, charts, the widget and byte limits, value
KPIs and their units, the text fallback line by line, ages on either side of each unit, and what a read found."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.card_text import message_as_text
from bot.cards import (
    MAX_CARD_WIDGETS,
    MAX_MESSAGE_BYTES,
    MAX_TEXT,
    SLOT,
    explanation,
    message_bytes,
    plain_text,
    team_message,
    value_text,
    widget_count,
)
from bot.config import DEMO_CONFIG, KpiConfig, load_config
from bot.reports import KpiReport, TeamReport, score_reading
from bot.sources.base import FetchResult, Item
from scoring import VALUE

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
TEAM = load_config(DEMO_CONFIG).team("customer")
TEAM_ZONE = ZoneInfo("America/New_York")
KPI = TEAM.kpis[0]  # count, Critical 10 · High 5 · Medium 2 · Low 1, target 40, warning 70
SPARK_DAYS_SEEN = [{"High": 1}, {"High": 2}, {"High": 3}]


def kpi_report(i=0, counts=None, kpi=None, **fields):
    """A KPI read now with ``counts`` (default one High item); ``fields`` replace the report's own."""
    kpi = kpi or KPI.model_copy(update={"id": f"kpi-{i}", "name": f"KPI {i}"})
    if "score" not in fields:
        fields["score"] = score_reading(kpi, counts if counts is not None else {"High": 1})
    return KpiReport(**({"kpi": kpi, "as_of": NOW} | fields))


def team_report(*kpis, team=TEAM, **fields):
    return TeamReport(**({"team": team, "kpis": kpis, "generated_at": NOW, "zone": "America/New_York"} | fields))


def card(message):
    return message["cardsV2"][0]["card"]


def kpi_widgets(message, section=1):
    return card(message)["sections"][section]["widgets"]


def test_the_settings_button_opens_the_teams_dialog_beside_refresh():
    message = team_message(team_report(kpi_report()), refresh_function="refresh", settings=True)
    buttons = card(message)["sections"][-1]["widgets"][0]["buttonList"]["buttons"]
    assert [b["text"] for b in buttons] == ["Refresh", "Settings", "Open in CRM"]
    action = buttons[1]["onClick"]["action"]
    assert action["function"] == "refresh" and action["interaction"] == "OPEN_DIALOG"
    assert action["parameters"] == [{"key": "action", "value": "settings"}, {"key": "team", "value": "customer"}]
    plain = team_message(team_report(kpi_report()), refresh_function="refresh")
    assert [b["text"] for b in card(plain)["sections"][-1]["widgets"][0]["buttonList"]["buttons"]] == [
        "Refresh",
        "Open in CRM",
    ]


def test_a_kpi_with_a_chart_shows_it_in_place_of_the_sparkline():
    history = score_reading(KPI, {"High": 3}, days=SPARK_DAYS_SEEN)
    report = team_report(kpi_report(score=history), charts={"kpi-0": "https://charts.example.com/kpi-0.png"})
    widgets = kpi_widgets(team_message(report, refresh_function=None))
    assert widgets[1] == {
        "image": {"imageUrl": "https://charts.example.com/kpi-0.png", "altText": "Trend chart: the index day by day"}
    }
    assert "14 days" not in widgets[2]["textParagraph"]["text"]


def stale_and_fresh(stale):
    """20 KPIs (the most a team has): ``stale`` of them stale (5 widgets each in columns), the rest fresh (4)."""
    kpis = [
        kpi_report(i, as_of=NOW - timedelta(hours=3), stale_reason="timed out" if i < stale else None)
        for i in range(20)
    ]
    return team_report(*kpis)


def test_a_card_of_exactly_the_widget_limit_keeps_its_columns_and_one_more_drops_them():
    at_limit = team_message(stale_and_fresh(18), refresh_function=None)  # 1 + 18 × 5 + 2 × 4 + 1 (CRM button)
    assert widget_count(at_limit) == MAX_CARD_WIDGETS
    assert "columns" in kpi_widgets(at_limit)[0]
    over = team_message(stale_and_fresh(19), refresh_function=None)
    assert "columns" not in kpi_widgets(over)[0]
    assert widget_count(over) == MAX_CARD_WIDGETS + 1 - 20 * 2


def test_a_card_of_exactly_the_byte_limit_is_sent_whole_and_one_byte_more_is_shortened():
    counts = {f"category {i:02} " + "x" * 60: 1 for i in range(30)}
    report = team_report(*(kpi_report(i, counts) for i in range(9)))
    base = message_bytes(team_message(report, refresh_function=None, text=""))
    pad = MAX_MESSAGE_BYTES - base
    assert 0 < pad < MAX_TEXT
    whole = team_message(report, refresh_function=None, text="t" * pad)
    assert message_bytes(whole) == MAX_MESSAGE_BYTES
    assert "… and 5 more unweighted categories (5 items)" in message_as_text(whole)
    shortened = team_message(report, refresh_function=None, text="t" * (pad + 1))
    assert "… and 20 more unweighted categories (20 items)" in message_as_text(shortened)


def test_widget_count_reads_messages_without_cards_sections_or_widgets_as_empty():
    assert widget_count({"text": "hello"}) == 0
    assert widget_count({"text": "hello", "cardsV2": [{"cardId": "c", "card": {"header": {"title": "t"}}}]}) == 0
    assert widget_count({"cardsV2": [{"cardId": "c", "card": {"sections": [{"header": "h"}]}}]}) == 0


def test_the_warning_line_names_the_direction_only_when_the_kpis_disagree():
    same = team_message(team_report(kpi_report(0), kpi_report(1)), refresh_function=None)
    target = kpi_widgets(same)[0]["columns"]["columnItems"][1]["widgets"][0]["decoratedText"]
    assert target["bottomLabel"] == "warning up to 70"
    higher = KPI.model_copy(update={"id": "closed", "name": "Closed", "lower_is_better": False, "warning": 40})
    mixed = team_message(team_report(kpi_report(0), kpi_report(kpi=higher)), refresh_function=None)
    target = kpi_widgets(mixed)[0]["columns"]["columnItems"][1]["widgets"][0]["decoratedText"]
    assert target["bottomLabel"] == "warning up to 70 · lower is better"


def value_kpi(unit):
    return KpiConfig.model_validate(
        {"id": "uptime", "name": "Uptime", "source": "metrics", "kind": "value", "unit": unit}
        | {"target": 99, "warning": 95, "lower_is_better": False}
    )


def test_a_card_of_value_kpis_says_each_is_a_number_and_a_percentage_stands_by_its_number():
    kpi = value_kpi("%")
    report = team_report(kpi_report(kpi=kpi, score=score_reading(kpi, {VALUE: 97.5})))
    assert explanation(report) == "Each KPI is a number its source reports · higher is better"
    message = team_message(report, refresh_function=None)
    html = json.dumps(message, ensure_ascii=False)
    assert "<i>Each KPI is a number its source reports · higher is better</i>" in html
    assert "<b>97.5%</b>" in html and "<b>99%</b>" in html
    assert "• Uptime (in %): 97.5% (target 99%)" in plain_text(report)
    assert value_text(97.5, "ms") == "97.5 ms"


@pytest.mark.parametrize(
    ("number", "shown"), [(2.001, "2"), (2.5, "2.5"), (2.25, "2.25"), (-0.0, "0"), (0.0, "0"), (100, "100")]
)
def test_a_number_shows_at_most_two_decimals_without_trailing_zeros_or_point(number, shown):
    assert value_text(number, None) == shown


def test_the_text_lists_each_kpi_after_one_without_data():
    report = team_report(kpi_report(0, score=None, as_of=None, stale_reason="refused"), kpi_report(1))
    assert plain_text(report).splitlines()[2:] == [
        "• KPI 0: no data yet (refused)",
        "• KPI 1: 5 (target 40) 🟢 Good",
    ]


def test_the_text_compares_with_the_last_post_alone_and_says_when_it_is_stale():
    score = score_reading(KPI, {"High": 3}, previous={"High": 1}, days=SPARK_DAYS_SEEN)
    posted = kpi_report(score=score, previous_at=NOW - timedelta(days=1), since_post=True, stale_reason="timed out")
    assert plain_text(team_report(posted)).splitlines()[2] == (
        "• KPI 0: 15 (target 40; ▲ +10 vs last post Wed 10:00; 14 days ▁▅█) 🟢 Good (stale: timed out)"
    )
    read = replace(posted, since_post=False, stale_reason=None)
    assert "(target 40; ▲ +10 vs Wed 10:00; 14 days ▁▅█) 🟢 Good" in plain_text(team_report(read))
    unknown = replace(posted, previous_at=None, stale_reason=None)
    assert "(target 40; nothing earlier to compare with; 14 days ▁▅█) 🟢 Good" in plain_text(team_report(unknown))


def test_a_kpi_without_history_shows_it_in_grey_italics_uncoloured():
    text = kpi_widgets(team_message(team_report(kpi_report()), refresh_function=None))[1]["textParagraph"]["text"]
    assert text.startswith("nothing earlier to compare with<br><i>no history yet</i><br>")


@pytest.mark.parametrize(
    ("seconds", "note"),
    [(0, "read 0 s ago"), (59, "read 59 s ago"), (60, "read 1 min ago"), (3599, "read 59 min ago")],
)
def test_a_cached_kpi_says_how_old_its_reading_is(seconds, note):
    report = team_report(kpi_report(cached=True, as_of=NOW - timedelta(seconds=seconds)))
    assert f"(target 40; {note}) 🟢 Good" in plain_text(report)
    top = kpi_widgets(team_message(report, refresh_function=None))[0]["columns"]["columnItems"][0]["widgets"][0]
    assert top["decoratedText"]["topLabel"] == f"Index · {note}"


@pytest.mark.parametrize(
    ("hours", "shown"),
    [(1, "1 h"), (47.99, "47 h 59 min"), (48, "2 days"), (71.99, "2 days"), (72, "3 days"), (24 * 20, "20 days")],
)
def test_a_stale_kpi_says_how_old_its_last_known_value_is(hours, shown):
    as_of = NOW - timedelta(hours=hours)
    report = team_report(kpi_report(as_of=as_of, stale_reason="timed out"))
    widget = kpi_widgets(team_message(report, refresh_function=None))[1]["decoratedText"]
    when = as_of.astimezone(TEAM_ZONE).strftime("%Y-%m-%d %H:%M")
    assert widget == {
        "topLabel": "⚠ Could not refresh",
        "text": "timed out",
        "bottomLabel": f"Last known value, read {shown} ago ({when} EST)",
        "wrapText": True,
    }


def test_the_header_shows_the_local_date_and_time():
    header = card(team_message(team_report(kpi_report()), refresh_function=None))["header"]
    assert header["subtitle"] == "Good · 2026-11-26 10:00 EST"


def test_only_the_target_column_is_left_unwrapped():
    columns = team_message(team_report(kpi_report()), refresh_function=None)
    target = kpi_widgets(columns)[0]["columns"]["columnItems"][1]["widgets"][0]["decoratedText"]
    assert "wrapText" not in target
    no_columns = team_message(stale_and_fresh(20), refresh_function=None)
    assert kpi_widgets(no_columns)[0]["decoratedText"]["wrapText"] is True


def test_a_closed_kpi_names_no_oldest_open_item_and_a_partial_oldest_names_its_categories():
    fetch = FetchResult({"High": 1}, "plan", 1, oldest=NOW - timedelta(days=40), oldest_among=("Critical", "High"))
    count = team_message(team_report(kpi_report(fetch=fetch)), refresh_function=None)
    assert "oldest Critical, High: 40 d" in message_as_text(count)
    closed = KPI.model_copy(update={"kind": "closed", "days": 7, "lower_is_better": False, "warning": 10})
    message = team_message(team_report(kpi_report(kpi=closed, fetch=fetch)), refresh_function=None)
    assert "oldest" not in message_as_text(message)


def long_text_report(pad, cached_seconds=5):
    """A report whose text with its items is ``pad`` letters of stale reason more than its text without them."""
    items = tuple(Item(f"item {i}", "High", NOW - timedelta(days=2)) for i in range(3))
    fetch = FetchResult({"High": 3}, "plan", 1, items=items)
    kpi = kpi_report(counts={"High": 3}, fetch=fetch, cached=True, as_of=NOW - timedelta(seconds=cached_seconds))
    return team_report(replace(kpi, stale_reason="s" * pad))


def test_the_text_keeps_its_items_up_to_its_limit_and_its_slots_either_way():
    base = len(plain_text(long_text_report(1)))
    exact = long_text_report(1 + MAX_TEXT - base)
    assert len(plain_text(exact)) == MAX_TEXT
    assert "    - item 0 (High, 2 d)" in plain_text(exact)
    over = long_text_report(2 + MAX_TEXT - base)
    assert "item 0" not in plain_text(over)
    assert "read 5 s ago" in plain_text(over)
    assert f"read {SLOT[0]}kpi-0{SLOT[1]} s ago" in plain_text(over, slots=True)
    assert f"read {SLOT[0]}kpi-0{SLOT[1]} s ago" in plain_text(exact, slots=True)
