"""The card's top items, oldest item and new items; the index explained once; status in words; Chat's limits."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.card_text import message_as_text
from bot.cards import MAX_TEXT, items_line, plain_text, team_message, widget_count
from bot.config import DEMO_CONFIG, MAX_KPIS_PER_TEAM, load_config
from bot.reports import KpiReport, TeamReport, score_reading
from bot.sources import FetchResult
from bot.sources.base import Item
from tests.chat_schema import validate_message

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
LAST_POST = NOW - timedelta(days=1)
CONFIG = load_config(DEMO_CONFIG)
TEAM = CONFIG.team("customer")
KPI = TEAM.kpis[0]
COUNTS = {"Critical": 3, "High": 4, "Low": 2}


def item(title: str, category: str = "Critical", days: float = 12, link: str | None = "https://crm.example.com/r/1"):
    return Item(title=title, category=category, created=NOW - timedelta(days=days), link=link)


ITEMS = (
    item("Checkout fails for some users", days=43),
    item("Webhook drops requests", days=12),
    item("Export leaks memory", days=0.5, link=None),
)


def kpi_report(i: int = 0, items=ITEMS, *, stale: str | None = None, new: int | None = 1, oldest_among=()):
    kpi = KPI.model_copy(update={"id": f"kpi-{i}", "name": f"KPI {i}"})
    fetch = FetchResult(
        counts=COUNTS,
        plan="page records",
        calls=1,
        items=tuple(items),
        oldest=NOW - timedelta(days=43),
        oldest_among=oldest_among,
        created_since=new,
    )
    return KpiReport(
        kpi=kpi,
        score=score_reading(kpi, COUNTS),
        as_of=NOW - timedelta(hours=2) if stale else NOW,
        stale_reason=stale,
        fetch=None if stale else fetch,
        new_since=LAST_POST,
    )


def team_report(*kpis: KpiReport) -> TeamReport:
    return TeamReport(team=TEAM, kpis=kpis, generated_at=NOW, zone="America/New_York")


def assert_within_limits(message):
    assert validate_message(message) == []  # the schema, 32,000 bytes and 100 widgets
    assert widget_count(message) <= 100
    assert len(json.dumps(message).encode()) <= 32_000


def test_a_kpi_lists_its_top_items_with_links_age_and_new_marks():
    message = team_message(team_report(kpi_report()), refresh_function="refresh")
    assert_within_limits(message)
    card = json.dumps(message["cardsV2"], ensure_ascii=False).replace('\\"', '"')
    assert '<a href="https://crm.example.com/r/1">Checkout fails for some users</a> (Critical, 43 d)' in card
    assert "<br>Export leaks memory (Critical, 12 h, <b>new</b>)" in card
    assert "Webhook drops requests</a> (Critical, 12 d)<br>" in card, "older than the last post: not new"
    text = message_as_text(message)
    assert "oldest: 43 d · 1 new since last post Wed 10:00" in text
    assert "Top items" in text


def test_the_index_explains_itself_once_and_the_status_is_a_word_and_a_colour():
    message = team_message(team_report(kpi_report(0), kpi_report(1)), refresh_function=None)
    card = json.dumps(message["cardsV2"], ensure_ascii=False)
    assert card.count("Index = Σ weight × open items · lower is better") == 1
    assert message["text"].count("Index = Σ weight × open items · lower is better") == 1
    index, target = message["cardsV2"][0]["card"]["sections"][1]["widgets"][0]["columns"]["columnItems"]
    shown = index["widgets"][0]["decoratedText"]["text"]
    assert shown == '<font color="#b06000"><b>52</b> 🟡 Warning</font>'  # 3 × 10 + 4 × 5 + 2 × 1: 40 < 52 ≤ 70
    assert target["widgets"][0]["decoratedText"]["text"] == "<b>40</b>"


def test_a_mixed_team_says_each_kpis_direction():
    higher = kpi_report(1)
    higher = KpiReport(
        kpi=higher.kpi.model_copy(update={"lower_is_better": False, "target": 10, "warning": 5}),
        score=higher.score,
        as_of=NOW,
        fetch=higher.fetch,
    )
    text = message_as_text(team_message(team_report(kpi_report(0), higher), refresh_function=None))
    assert "Index = Σ weight × open items · each KPI says which way is better" in text
    assert "warning down to 5 · higher is better" in text
    assert "warning up to 70 · lower is better" in text


def test_the_oldest_of_only_the_heaviest_categories_says_so():
    text = message_as_text(team_message(team_report(kpi_report(oldest_among=("Critical",))), refresh_function=None))
    assert "oldest Critical: 43 d" in text


def test_no_post_yet_means_nothing_is_new():
    report = kpi_report(new=None)
    report = KpiReport(kpi=report.kpi, score=report.score, as_of=NOW, fetch=report.fetch)
    text = message_as_text(team_message(team_report(report), refresh_function=None))
    assert "new" not in text.replace("Webhook", "")
    assert "oldest: 43 d" in text


def test_titles_and_links_are_escaped_and_cut():
    hostile = item('<script>alert(1)</script> & "quotes" ' + "x" * 200, link='https://crm.example.com/?a=1&b="2"')
    message = team_message(team_report(kpi_report(items=(hostile,))), refresh_function=None)
    assert_within_limits(message)
    card = json.dumps(message)
    assert "<script>" not in card
    assert 'href=\\"https://crm.example.com/?a=1&amp;b=&quot;2&quot;\\"' in card
    assert "x" * 60 not in card and "…" in json.dumps(message, ensure_ascii=False)


def test_the_text_fallback_reads_well():
    text = plain_text(team_report(kpi_report()))
    assert text.splitlines() == [
        "🟡 *Customer Issues*: Warning",
        "Index = Σ weight × open items · lower is better",
        "• KPI 0: 52 (target 40) 🟡 Warning · oldest: 43 d · 1 new",
        "    - <https://crm.example.com/r/1|Checkout fails for some users> (Critical, 43 d)",
        "    - <https://crm.example.com/r/1|Webhook drops requests> (Critical, 12 d)",
        "    - Export leaks memory (Critical, 12 h, new)",
    ]


VTIGER_LINK = "https://crm.example.com/index.php?module=HelpDesk&view=Detail&record=1234567"
LONG_TITLE = "Checkout fails for some users on mobile and desktop"  # with "Item-N ": 58 characters


def with_history(report: KpiReport) -> KpiReport:
    """``report`` with a change against the last post and 7 days ago, and a full 14-day sparkline."""
    days = [{"Critical": day % 5} for day in range(14)]
    score = score_reading(report.kpi, COUNTS, previous={"Critical": 1}, week_ago={"Critical": 9}, days=days)
    return replace(report, score=score, previous_at=LAST_POST, since_post=True)


@pytest.mark.parametrize("stale", [None, "Vtiger did not answer within 8 s"])
@pytest.mark.parametrize("refresh", ["refresh", None])
def test_twenty_kpis_with_three_items_each_fit_chats_limits(stale, refresh):
    """Titles near the 60 characters a card shows, links as long as Vtiger's: nothing is left out."""
    items = [item(f"Item-{n} {LONG_TITLE}", link=VTIGER_LINK) for n in range(3)]
    kpis = [kpi_report(i, items, stale=stale if i % 2 else None) for i in range(MAX_KPIS_PER_TEAM)]
    message = team_message(team_report(*kpis), refresh_function=refresh)
    assert_within_limits(message)
    card = message["cardsV2"][0]["card"]
    assert len(card["sections"]) == 1 + MAX_KPIS_PER_TEAM + 1  # the explanation, the KPIs, the buttons
    fresh = sum(1 for k in kpis if k.fetch)
    assert json.dumps(card).count("Item-") == 3 * fresh
    assert all("columns" in section["widgets"][0] for section in card["sections"][1:-1])
    assert len(message["text"]) <= MAX_TEXT


def test_twenty_kpis_with_full_history_keep_two_items_each_and_say_how_many_more():
    """With both changes and a 14-day sparkline on every KPI, three such items a KPI are over the size
    limit (30,000 bytes as sent): each KPI keeps two and says "… and 1 more"."""
    items = [item(f"Item-{n} {LONG_TITLE}", link=VTIGER_LINK) for n in range(3)]
    kpis = [with_history(kpi_report(i, items)) for i in range(MAX_KPIS_PER_TEAM)]
    message = team_message(team_report(*kpis), refresh_function="refresh")
    assert_within_limits(message)
    card = json.dumps(message["cardsV2"], ensure_ascii=False)
    assert card.count("Item-") == 2 * MAX_KPIS_PER_TEAM
    assert card.count("… and 1 more<") + card.count('… and 1 more"') == MAX_KPIS_PER_TEAM
    worse, better = '<font color=\\"#d93025\\">', '<font color=\\"#188038\\">'
    assert f"{worse}▲ +42 vs last post Wed 10:00</font> · {better}▼ −38 vs 7 days ago</font>" in card


def test_twenty_kpis_with_oversized_items_are_shortened_to_fit():
    """Non-ASCII titles far over 60 characters and long links: each KPI keeps at least its heaviest item."""
    link = VTIGER_LINK + "9" * 200
    items = [item(f"Item-{n} {'Überlänge ' * 30}", link=link) for n in range(3)]
    kpis = [kpi_report(i, items) for i in range(MAX_KPIS_PER_TEAM)]
    message = team_message(team_report(*kpis), refresh_function="refresh")
    assert_within_limits(message)
    assert json.dumps(message["cardsV2"]).count("Item-") >= MAX_KPIS_PER_TEAM


def test_a_card_over_the_widget_limit_drops_the_columns_not_the_kpis():
    stale = [kpi_report(i, stale="down") for i in range(MAX_KPIS_PER_TEAM)]  # 5 widgets a KPI with columns
    message = team_message(team_report(*stale), refresh_function="refresh")
    assert_within_limits(message)
    assert "columns" not in json.dumps(message)
    assert json.dumps(message).count("Could not refresh") == MAX_KPIS_PER_TEAM


def ladder_kpi(i: int) -> KpiReport:
    """A KPI with 26 unweighted categories (names of 40 emoji, 12 bytes each as sent) and 10 items
    (5-letter titles, 600-character links): big enough that a growing team walks down every rung."""
    counts = {f"{n:02}{'😀' * 40}": n + 1 for n in range(26)}
    link = "https://crm.example.com/" + "r" * 600
    items = tuple(item(f"T{n:02}{'é' * 5}", category="c", days=2, link=link) for n in range(10))
    kpi = KPI.model_copy(update={"id": f"kpi-{i}", "name": f"KPI {i:02} {'k' * 200}", "top": 10})
    fetch = FetchResult(counts=counts, plan="page records", calls=1, items=items, oldest=None, created_since=None)
    return KpiReport(kpi=kpi, score=score_reading(kpi, counts), as_of=NOW, fetch=fetch)


def shown_per_kpi(message) -> set[tuple[int, int, tuple[str, ...]]]:
    """Per KPI section: the category lines and items it shows, and the lines saying how many more there are."""
    shown = set()
    for section in message["cardsV2"][0]["card"]["sections"][1:-1]:
        text = json.dumps(section, ensure_ascii=False)
        rest = re.findall(r"… (?:and )?\d+ (?:more )?\w+ categories \(\d+ items\)|… and \d+ more(?=[<\"])", text)
        shown.add((text.count("(unweighted)"), len(re.findall(r"T\d\dé", text)), tuple(rest)))
    return shown


def test_a_growing_team_walks_down_every_rung_of_the_shortening_ladder():
    """From 1 to 20 KPIs: 25 category lines and 10 items a KPI, then 10 lines, then 3; then 2 items, then 1;
    then no category line, then no item. Every KPI shows as much as the others, and every card fits."""
    rungs: list[tuple[int, int, tuple[str, ...]]] = []
    for size in range(1, MAX_KPIS_PER_TEAM + 1):
        message = team_message(team_report(*[ladder_kpi(i) for i in range(size)]), refresh_function="refresh")
        assert_within_limits(message)
        (shown,) = shown_per_kpi(message)  # one rung for all the team's KPIs
        if not rungs or rungs[-1] != shown:
            rungs.append(shown)
    # Unweighted lines in name order (counts 1 to 26, 351 items); the 4 weighted categories have no items.
    weighted, all_unweighted = "… and 1 more weighted categories (0 items)", "… 26 unweighted categories (351 items)"
    assert rungs == [
        (25, 10, ("… and 1 more unweighted categories (26 items)",)),
        (10, 10, ("… and 16 more unweighted categories (296 items)",)),
        (3, 10, (weighted, "… and 23 more unweighted categories (345 items)")),
        (3, 2, (weighted, "… and 23 more unweighted categories (345 items)", "… and 8 more")),
        (3, 1, (weighted, "… and 23 more unweighted categories (345 items)", "… and 9 more")),
        (0, 1, ("… 4 weighted categories (0 items)", all_unweighted, "… and 9 more")),
        (0, 0, ("… 4 weighted categories (0 items)", all_unweighted, "… and 10 more")),
    ], "each rung in turn, none skipped, none gone back to"


def test_checks_items_line_names_each_item_with_its_category_and_age_then_the_oldest():
    undated = Item(title="No date", category="High", created=None, link=None)
    result = FetchResult(
        counts=COUNTS,
        plan="p",
        calls=1,
        items=(*ITEMS[:2], undated),
        oldest=NOW - timedelta(days=43),
        oldest_among=("Critical", "High"),
    )
    assert items_line(result, NOW) == (
        "top: Checkout fails for some users (Critical, 43 d); Webhook drops requests (Critical, 12 d); No date (High)"
        " · oldest Critical, High: 43 d"
    )
    nothing = FetchResult(counts={}, plan="p", calls=1, items=(), oldest=NOW - timedelta(hours=5))
    assert items_line(nothing, NOW) == "top: none listed · oldest: 5 h"
    assert items_line(replace(nothing, oldest=None), NOW) == "top: none listed"


def test_an_item_is_new_only_when_created_after_the_last_post():
    at_post = item("Filed as the post went out", days=1)  # created exactly at LAST_POST
    assert at_post.created == LAST_POST
    message = team_message(team_report(kpi_report(items=(at_post,))), refresh_function=None)
    card = json.dumps(message["cardsV2"], ensure_ascii=False)
    assert 'Filed as the post went out</a> (Critical, 1 d)"' in card
    assert "Filed as the post went out> (Critical, 1 d)" in message["text"]


def test_links_up_to_a_thousand_characters_are_kept_and_a_title_cannot_break_chats_link_syntax():
    kept, dropped = VTIGER_LINK + "1" * (1000 - len(VTIGER_LINK)), VTIGER_LINK + "1" * (1001 - len(VTIGER_LINK))
    items = (
        item("Kept", link=kept),
        item("Dropped", link=dropped),
        item("a|b <c> d", link="https://crm.example.com/r/9"),
    )
    text = plain_text(team_report(kpi_report(items=items)))
    assert f"- <{kept}|Kept> (Critical, 12 d)" in text
    assert "- Dropped (Critical, 12 d)" in text and dropped not in text
    assert "- <https://crm.example.com/r/9|a/b ‹c› d> (Critical, 12 d)" in text


def test_an_item_without_a_title_is_listed_as_untitled_and_a_title_is_cut_after_sixty_characters():
    items = (item("  \t ", link=None), item("x" * 60, link=None), item("y" * 61, link=None))
    lines = plain_text(team_report(kpi_report(items=items))).splitlines()
    assert lines[-3:] == [
        "    - (untitled) (Critical, 12 d)",
        f"    - {'x' * 60} (Critical, 12 d)",
        f"    - {'y' * 59}… (Critical, 12 d)",
    ]


def test_an_item_of_unknown_age_is_listed_with_its_category_alone():
    undated = Item(title="No date", category="High", created=None, link=None)
    message = team_message(team_report(kpi_report(items=(undated, ITEMS[1]))), refresh_function=None)
    card = json.dumps(message["cardsV2"], ensure_ascii=False)
    assert "No date (High)" in card and "Webhook drops requests</a> (Critical, 12 d)" in card
    assert "- No date (High)" in message["text"]
