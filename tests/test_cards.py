"""The one formatter: every card it can produce validates against the Chat API schema."""

import copy
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.card_text import message_as_text
from bot.cards import (
    MAX_CATEGORY_LINES,
    MAX_MESSAGE_BYTES,
    age,
    help_message,
    kind_words,
    message_bytes,
    plain_text,
    team_message,
    user_text,
    welcome_message,
    with_overview_button,
)
from bot.config import DEMO_CONFIG, MAX_KPIS_PER_TEAM, load_config
from bot.reports import KpiReport, TeamReport, score_reading
from bot.sources import FetchResult
from bot.sources.base import Item
from scoring import Status
from tests.chat_schema import validate_message

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
CONFIG = load_config(DEMO_CONFIG)
TEAM = CONFIG.team("customer")
KPI = TEAM.kpis[0]


def report_for(counts, *, stale=None, history=(), kpis=1, team=TEAM):
    """A team report whose KPIs all read ``counts`` (None: no data yet); ``history`` holds the counts
    of the days before, one a day, the last one also the previous post's (a day ago)."""
    previous = history[-1] if history else None
    items = []
    for i in range(kpis):
        kpi = KPI.model_copy(update={"id": f"kpi-{i}", "name": f"KPI {i}"})
        score = None if counts is None else score_reading(kpi, counts, previous=previous, days=[*history, counts])
        as_of = None if counts is None else (NOW - timedelta(hours=3) if stale else NOW)
        previous_at = NOW - timedelta(days=1) if history else None
        items.append(
            KpiReport(kpi=kpi, score=score, as_of=as_of, stale_reason=stale, previous_at=previous_at, since_post=True)
        )
    return TeamReport(team=team, kpis=tuple(items), generated_at=NOW, zone="America/New_York")


def assert_valid(message):
    errors = validate_message(message)
    assert errors == [], errors
    assert len(json.dumps(message).encode()) < 32_000


GOOD = {"Low": 3}
WARNING = {"Critical": 5}
BAD = {"Critical": 10}

CASES = {
    "good": report_for(GOOD),
    "warning": report_for(WARNING, history=[{"Critical": 3}, {"Critical": 4}]),
    "bad": report_for(BAD, history=[BAD]),
    "zero issues": report_for({}),
    "one issue": report_for({"High": 1}),
    "ten thousand issues": report_for({"Critical": 4000, "High": 3000, "Medium": 2000, "Low": 999, "(none)": 1}),
    "unweighted": report_for({"Critical": 1, "Surprise": 4, "(none)": 2}),
    "many categories": report_for({f"cat-{i:03}": i + 1 for i in range(300)}),
    "stale": report_for(BAD, stale="Vtiger did not answer within 8 s"),
    "no data": report_for(None, stale="Vtiger refused the access key"),
    "many kpis": report_for(BAD, kpis=12),
    "html in data": report_for({"<b>x</b> & <script>": 2}),
    "largest team": report_for(
        {f"{'é' * 70} category number {i:03}": i + 1 for i in range(300)},
        stale="Vtiger did not answer within 8 s",
        kpis=MAX_KPIS_PER_TEAM,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("refresh", ["refresh", "https://scorebot.example.com/chat", None])
def test_every_team_card_validates(name, refresh):
    assert_valid(team_message(CASES[name], refresh_function=refresh))


@pytest.mark.parametrize(
    "message",
    [
        help_message(CONFIG),
        help_message(CONFIG, "No such team"),
        welcome_message(CONFIG, TEAM),
        welcome_message(CONFIG, None),
    ],
)
def test_help_and_welcome_cards_validate(message):
    assert_valid(message)


@pytest.mark.parametrize(
    ("name", "status"),
    [("good", Status.GOOD), ("warning", Status.WARNING), ("bad", Status.BAD), ("no data", Status.UNKNOWN)],
)
def test_header_shows_the_status(name, status):
    header = team_message(CASES[name], refresh_function=None)["cardsV2"][0]["card"]["header"]
    assert header["subtitle"].startswith(
        {"good": "Good", "warning": "Warning", "bad": "Bad", "unknown": "No data"}[status.value]
    )
    assert header["subtitle"].endswith("10:00 EST")


def widgets_text(message):
    return message_as_text(message)


def test_breakdown_lines_show_count_weight_and_points():
    text = widgets_text(team_message(CASES["ten thousand issues"], refresh_function="refresh"))
    assert "Critical: 4000 × 10 = 40000" in text
    assert "(none): 1 (unweighted)" in text
    assert "59999" in text  # 40000 + 15000 + 4000 + 999


def test_zero_and_one_issue():
    assert "No open items." in widgets_text(team_message(CASES["zero issues"], refresh_function="refresh"))
    assert "High: 1 × 5 = 5" in widgets_text(team_message(CASES["one issue"], refresh_function="refresh"))


def test_many_categories_are_cut_with_a_count_of_the_rest():
    text = widgets_text(team_message(CASES["many categories"], refresh_function="refresh"))
    hidden = len(CASES["many categories"].kpis[0].score.unweighted) - MAX_CATEGORY_LINES
    assert f"… and {hidden} more unweighted categories" in text


def test_change_and_sparkline():
    text = widgets_text(team_message(CASES["warning"], refresh_function="refresh"))
    assert "▲ +10 vs last post Wed 10:00" in text
    assert "14 days ▁▅█" in text
    assert "no history yet" in widgets_text(team_message(CASES["good"], refresh_function="refresh"))


def test_webhook_cards_carry_only_open_links():
    message = team_message(CASES["bad"], refresh_function=None)
    buttons = message["cardsV2"][0]["card"]["sections"][-1]["widgets"][0]["buttonList"]["buttons"]
    assert [b["text"] for b in buttons] == ["Open in CRM"]
    assert "action" not in json.dumps(message)


def test_stale_card_says_why_and_how_old():
    text = widgets_text(team_message(CASES["stale"], refresh_function="refresh"))
    assert "Could not refresh" in text
    assert "Vtiger did not answer within 8 s" in text
    assert "read 3 h ago" in text


def test_the_largest_team_is_shortened_to_fit_and_says_so():
    message = team_message(CASES["largest team"], refresh_function="refresh")
    assert_valid(message)
    text = widgets_text(message)
    assert "categories (" in text
    assert "…" in text


def test_unweighted_categories_are_never_folded_into_weighted_ones():
    weights = {f"w{i:02}": 1 for i in range(30)}
    kpi = KPI.model_copy(update={"weights": weights})
    score = score_reading(kpi, {"w01": 2, "Surprise": 7})
    report = TeamReport(TEAM, (KpiReport(kpi, score, NOW),), NOW, "UTC")
    text = widgets_text(team_message(report, refresh_function=None))
    assert "Surprise: 7 (unweighted)" in text
    lines = text.splitlines()
    trend = lines.index("│ no history yet")
    assert lines[trend + 1] == "│ w01: 2 × 1 = 2", "counted categories come first"
    assert "… and 5 more weighted categories (0 items)" in text


def test_a_long_template_text_is_cut():
    message = team_message(CASES["good"], refresh_function=None, text="x" * 10_000)
    assert len(message["text"]) == 4000


def test_data_is_escaped_in_card_html():
    message = team_message(CASES["html in data"], refresh_function=None)
    assert "<script>" not in json.dumps(message)


def test_same_report_same_card():
    assert team_message(CASES["bad"], refresh_function="refresh") == team_message(
        CASES["bad"], refresh_function="refresh"
    )


def test_the_welcome_card_names_the_linked_team_and_its_schedule_or_says_how_to_link_one():
    linked = welcome_message(CONFIG, TEAM)
    assert linked["cardsV2"][0]["cardId"] == "welcome"
    assert message_as_text(linked).splitlines() == [
        "┌ Hello from Scorebot",
        "├─",
        "│ I keep this Space up to date on its team's KPIs. Type /score for the current index.",
        "│ This Space is linked to Customer Issues (customer). Scheduled updates: * * * * * (America/New_York).",
        "└",
        "text: Scorebot is here. Type /score for your team's current index.",
    ]
    own_zone = TEAM.model_copy(update={"timezone": None})  # a team without its own zone posts in the config's
    assert "Scheduled updates: * * * * * (Europe/Berlin)." in message_as_text(welcome_message(CONFIG, own_zone))
    unlinked = message_as_text(welcome_message(CONFIG, None)).splitlines()
    assert unlinked[3] == "│ This Space is not linked to a team yet: use /score TEAM, or ask an admin to add it."


def test_a_change_within_a_week_names_the_weekday_and_older_ones_the_date():
    """In the team's zone: 22:00 on Nov 25 in New York is already Nov 26 in UTC, and still "today" there."""
    now = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)  # Wed Nov 25 22:00 in New York
    text = {}
    for days in (0, 6, 7):
        report = report_for(BAD, history=[WARNING])
        kpi = replace(report.kpis[0], previous_at=now - timedelta(days=days, hours=2))
        report = replace(report, kpis=(kpi,), generated_at=now)
        text[days] = widgets_text(team_message(report, refresh_function=None))
    assert "vs last post today 20:00" in text[0]
    assert "vs last post Thu 20:00" in text[6]
    assert "vs last post Nov 18 20:00" in text[7]


def test_the_all_teams_button_joins_the_cards_button_row_or_gets_its_own_and_the_card_given_is_untouched():
    back = {
        "text": "All teams",
        "onClick": {
            "action": {
                "function": "fn",
                "parameters": [{"key": "action", "value": "overview"}, {"key": "page", "value": "2"}],
            }
        },
    }
    with_refresh = team_message(CASES["good"], refresh_function="refresh")
    before = copy.deepcopy(with_refresh)
    shown = with_overview_button(with_refresh, 2, "fn")
    assert with_refresh == before
    assert shown["cardsV2"][0]["card"]["sections"][-1]["widgets"][-1]["buttonList"]["buttons"][-1] == back
    assert len(shown["cardsV2"][0]["card"]["sections"]) == len(before["cardsV2"][0]["card"]["sections"])

    no_buttons = team_message(report_for(GOOD, team=TEAM.model_copy(update={"crm_url": None})), refresh_function=None)
    assert "buttonList" not in json.dumps(no_buttons)
    before = copy.deepcopy(no_buttons)
    shown = with_overview_button(no_buttons, 2, "fn")
    assert no_buttons == before
    assert shown["cardsV2"][0]["card"]["sections"] == [
        *before["cardsV2"][0]["card"]["sections"],
        {"widgets": [{"buttonList": {"buttons": [back]}}]},
    ]
    assert_valid(shown)


def test_the_help_card_lists_the_commands_and_every_team_that_fits():
    message = help_message(CONFIG)
    assert message["cardsV2"][0]["cardId"] == "help"
    text = message_as_text(message)
    assert text.splitlines()[:12] == [
        "┌ Scorebot",
        "│ Your team's KPIs, in this Space",
        "├─ Commands",
        "│ /score — the index of this Space's team",
        "│ /score TEAM — the index of another team",
        "│ /score all — every team at a glance",
        "│ /score help — this help",
        "├─ Teams",
        "│ customer — Customer Issues",
        "│ performance — Performance",
        "│ security — Security",
        "└",
    ]
    assert "more teams" not in text
    assert message["text"] == "Teams: customer, performance, security"
    assert help_message(CONFIG, "No such team")["text"] == "No such team\nTeams: customer, performance, security"

    teams = [TEAM.model_copy(update={"id": f"t{n:03}", "name": "n" * 300}) for n in range(120)]
    message = help_message(CONFIG.model_copy(update={"teams": teams}))
    assert message["text"].endswith("t048, t049, … and 70 more teams")  # 120 such teams are too many; 50 fit
    assert message_as_text(message).count("… and 70 more teams") == 2  # the card and its text


def test_an_age_is_in_whole_hours_within_a_day_then_in_days_and_never_below_zero():
    assert [age(NOW - delta, NOW) for delta in (timedelta(minutes=59), timedelta(hours=23, minutes=59))] == [
        "0 h",
        "23 h",
    ]
    assert [age(NOW - delta, NOW) for delta in (timedelta(hours=24), timedelta(days=43, hours=23))] == ["1 d", "43 d"]
    assert age(NOW + timedelta(minutes=5), NOW) == "0 h"  # a CRM clock a little ahead


def test_a_users_words_are_echoed_up_to_sixty_characters():
    assert user_text("x" * 60) == "x" * 60
    assert user_text("x" * 61) == "x" * 59 + "…"
    assert user_text("\ud800 ok") == "\ufffd ok"


def test_a_help_card_of_exactly_chats_limit_lists_every_team_and_one_byte_more_is_shortened():
    def config_with(length):
        teams = [TEAM.model_copy(update={"id": f"t{n:03}", "name": "n" * 200}) for n in range(100)]
        teams[-1] = teams[-1].model_copy(update={"name": "n" * length})
        return CONFIG.model_copy(update={"teams": teams})

    length = 10 + MAX_MESSAGE_BYTES - message_bytes(help_message(config_with(10)))  # each letter is one byte
    at_limit = help_message(config_with(length))
    assert message_bytes(at_limit) == MAX_MESSAGE_BYTES
    assert "more teams" not in at_limit["text"]
    assert help_message(config_with(length + 1))["text"].endswith("t049, … and 50 more teams")


def test_the_help_card_names_settings_and_linking_when_the_team_may_use_them_and_shows_the_note_first():
    settings = CONFIG.settings.model_copy(update={"editable": ["schedule"], "link": "editors"})
    message = help_message(CONFIG.model_copy(update={"settings": settings}), "No team <x>")
    assert message["cardsV2"][0]["card"]["sections"][0]["widgets"][0] == {
        "textParagraph": {"text": "No team &lt;x&gt;"}
    }
    assert message_as_text(message).splitlines()[2:10] == [
        "├─ Commands",
        "│ No team <x>",
        "│ /score — the index of this Space's team",
        "│ /score TEAM — the index of another team",
        "│ /score all — every team at a glance",
        "│ /score help — this help",
        "│ /score settings — this Space's team's settings",
        "│ /score link TEAM, /score unlink — give this Space to a team",
    ]


def test_each_kind_reads_in_its_own_words_and_a_value_changes_in_its_unit():
    def kpi(n, **update):
        return KPI.model_copy(update={"id": f"k{n}", "name": f"K{n}", **update})

    kpis = [
        kpi(0),
        kpi(1, kind="closed", days=1),
        kpi(2, kind="closed", days=7),
        kpi(3, kind="value", unit=None),
        kpi(4, kind="value", unit="ms"),
    ]
    reports = [
        KpiReport(kpi=k, score=score_reading(k, {"value": 245} if k.kind == "value" else {"High": 2}), as_of=NOW)
        for k in kpis
    ]
    earlier = {"previous": {"value": 244.5}, "week_ago": {"value": 300}}  # below 1 up, then down
    reports[4] = replace(
        reports[4],
        score=score_reading(kpis[4], {"value": 245}, **earlier),
        previous_at=NOW - timedelta(days=1),
        since_post=True,
    )
    report = TeamReport(team=TEAM, kpis=tuple(reports), generated_at=NOW, zone="America/New_York")
    assert plain_text(report).splitlines()[2:] == [
        "• K0: 10 (target 40) 🟢 Good",
        "• K1 (closed in the last day): 10 (target 40) 🟢 Good",
        "• K2 (closed in the last 7 days): 10 (target 40) 🟢 Good",
        "• K3 (a value): 245 (target 40) 🔴 Bad",
        "• K4 (in ms): 245 ms (target 40 ms; ▲ +0.5 ms vs last post Wed 10:00 · ▼ −55 ms vs 7 days ago) 🔴 Bad",
    ]
    assert kind_words(KPI) == "open items"  # a count KPI's words, which its card leaves out as the default
    assert kind_words(kpi(5, kind="aged", days=1)) == "open over a day"
    assert kind_words(kpi(6, kind="aged", days=30)) == "open over 30 days"


def test_a_card_with_slots_leaves_its_time_and_each_reads_seconds_between_two_private_use_characters():
    report = report_for(GOOD)
    report = replace(report, kpis=(replace(report.kpis[0], cached=True, as_of=NOW - timedelta(seconds=12)),))
    assert team_message(report, refresh_function=None)["text"].endswith("(target 40; read 12 s ago) 🟢 Good")
    slotted = team_message(report, refresh_function=None, slots=True)
    assert slotted["cardsV2"][0]["card"]["header"]["subtitle"] == "Good · \ue000\ue001"
    assert slotted["text"].endswith("(target 40; read \ue000kpi-0\ue001 s ago) 🟢 Good")
    assert "│ Index · read \ue000kpi-0\ue001 s ago   Target" in message_as_text(slotted)


# A team card's own buttons ----------------------------------------------------------------------------


def test_a_team_cards_buttons_refresh_it_open_its_settings_dialog_and_open_its_crm():
    def buttons(**options):
        message = team_message(report_for(GOOD), **options)
        assert_valid(message)
        return message["cardsV2"][0]["card"]["sections"][-1]["widgets"][0]["buttonList"]["buttons"]

    team = [{"key": "team", "value": "customer"}]
    refresh = {"function": "fn", "parameters": [{"key": "action", "value": "refresh"}, *team]}
    settings = {
        "function": "fn",
        "interaction": "OPEN_DIALOG",
        "parameters": [{"key": "action", "value": "settings"}, *team],
    }
    crm = {"text": "Open in CRM", "onClick": {"openLink": {"url": TEAM.crm_url}}}
    assert buttons(refresh_function="fn", settings=True) == [
        {"text": "Refresh", "onClick": {"action": refresh}},
        {"text": "Settings", "onClick": {"action": settings}},
        crm,
    ]
    assert buttons(refresh_function="fn") == [{"text": "Refresh", "onClick": {"action": refresh}}, crm]
    assert buttons(refresh_function=None, settings=True) == [crm]  # no clicks come back: no buttons to click


# A KPI's section of the team card ---------------------------------------------------------------------


def kpi_sections(report, **options):
    """The KPI sections of ``report``'s card, as Chat receives them."""
    return team_message(report, refresh_function=None, **options)["cardsV2"][0]["card"]["sections"][1:-1]


def test_a_kpi_without_a_reading_says_no_data_yet_and_why_or_that_it_was_not_read():
    for stale, why in ((None, "not read yet"), ("Vtiger refused <the> key", "Vtiger refused &lt;the&gt; key")):
        assert kpi_sections(report_for(None, stale=stale)) == [
            {"header": "KPI 0", "widgets": [{"textParagraph": {"text": f"<b>No data yet.</b> {why}"}}]}
        ]


def test_a_stale_kpi_with_a_chart_shows_the_chart_in_place_of_the_sparkline_under_an_unwrapped_target():
    chart = "https://charts.example.com/kpi-0.png"
    report = replace(report_for(BAD, stale="down", history=[WARNING]), charts={"kpi-0": chart})
    index = '<font color="#d93025"><b>100</b> 🔴 Bad</font>'
    target = {"topLabel": "Target", "text": "<b>40</b>", "bottomLabel": "warning up to 70"}
    change = '<font color="#d93025">▲ +50 vs last post Wed 10:00</font>'
    assert kpi_sections(report) == [
        {
            "header": "KPI 0",
            "widgets": [
                {
                    "columns": {
                        "columnItems": [
                            {"widgets": [{"decoratedText": {"topLabel": "Index", "text": index}}]},
                            {"widgets": [{"decoratedText": target}]},
                        ]
                    }
                },
                {"image": {"imageUrl": chart, "altText": "Trend chart: the index day by day"}},
                {
                    "decoratedText": {
                        "topLabel": "⚠ Could not refresh",
                        "text": "down",
                        "bottomLabel": "Last known value, read 3 h ago (2026-11-26 07:00 EST)",
                        "wrapText": True,
                    }
                },
                {
                    "textParagraph": {
                        "text": f"{change}<br>Critical: 10 × 10 = 100<br>High: 0 × 5 = 0<br>Medium: 0 × 2 = 0"
                        "<br>Low: 0 × 1 = 0"
                    }
                },
            ],
        }
    ]


def test_a_card_too_big_for_columns_puts_the_target_after_the_index_and_still_says_how_old_a_kept_reading_is():
    """Twenty KPIs with charts are 101 widgets in columns: the index and its target share one widget."""
    report = report_for(GOOD, kpis=MAX_KPIS_PER_TEAM)
    kept = tuple(replace(k, cached=True, as_of=NOW - timedelta(seconds=12)) for k in report.kpis)
    report = replace(report, kpis=kept, charts={k.kpi.id: f"https://charts.example.com/{k.kpi.id}.png" for k in kept})
    index = '<font color="#188038"><b>3</b> 🟢 Good</font> · target <b>40</b>'
    for slots, seconds in ((False, "12"), (True, "\ue000kpi-0\ue001")):
        first = kpi_sections(report, slots=slots)[0]["widgets"]
        assert first[:2] == [
            {
                "decoratedText": {
                    "topLabel": f"Index · read {seconds} s ago",
                    "text": index,
                    "bottomLabel": "warning up to 70",
                    "wrapText": True,
                }
            },
            {"image": {"imageUrl": report.charts["kpi-0"], "altText": "Trend chart: the index day by day"}},
        ]


def test_a_kpi_with_nothing_counted_says_so_in_the_words_of_its_kind_after_what_it_measures():
    def paragraph(**update):
        kpi = KPI.model_copy(update={"id": "k", "name": "K", **update})
        report = TeamReport(TEAM, (KpiReport(kpi, score_reading(kpi, {}), NOW),), NOW, "UTC")
        return kpi_sections(report)[0]["widgets"][-1]["textParagraph"]["text"]

    plain = "nothing earlier to compare with<br><i>no history yet</i><br>"
    assert paragraph() == plain + "No open items."
    closed = "No items closed in the last 7 days."
    assert paragraph(kind="closed", days=7) == f"<i>Closed in the last 7 days</i><br>{plain}{closed}"
    assert paragraph(kind="aged", days=30) == f"<i>Open over 30 days</i><br>{plain}No open items over 30 days."
    assert paragraph(kind="aged", days=1) == f"<i>Open over a day</i><br>{plain}No open items over a day."


def test_a_kpis_top_items_follow_a_bold_heading():
    items = tuple(Item(title=f"Item {n}", category="High", created=None, link=None) for n in range(2))
    fetch = FetchResult(counts={"High": 2}, plan="page records", calls=1, items=items)
    report = report_for({"High": 2})
    report = replace(report, kpis=(replace(report.kpis[0], fetch=fetch),))
    assert kpi_sections(report)[0]["widgets"][-1]["textParagraph"]["text"].split("<br>")[-4:] == [
        "Low: 0 × 1 = 0",
        "<b>Top items</b>",
        "Item 0 (High)",
        "Item 1 (High)",
    ]


def test_a_category_name_of_eighty_characters_is_shown_whole_and_a_longer_one_cut_to_eighty():
    whole, long = "w" * 80, "x" * 79 + "yz"
    lines = widgets_text(team_message(report_for({whole: 1, long: 2}), refresh_function=None)).splitlines()
    assert f"│ {whole}: 1 (unweighted)" in lines
    assert f"│ {'x' * 79}…: 2 (unweighted)" in lines
