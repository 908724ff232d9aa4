"""`/score all`: every team on one card from the stored readings (paged over 100 teams), worst status first,
each team against its own target and its own past week; a team's full card in place, and back."""

import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from bot.__main__ import main
from bot.app import create_app
from bot.cards import (
    MAX_MESSAGE_BYTES,
    OVERVIEW_PAGE,
    _overview_message,
    message_bytes,
    overview_message,
    overview_page_size,
    widget_count,
)
from bot.config import DEMO_CONFIG, load_config
from bot.errors import ConfigError
from bot.overview import glance
from bot.services import build_services
from bot.store import SCORE, Reading
from tests import payloads as p
from tests.chat_schema import MAX_CARD_WIDGETS, validate_message

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
LONG = "x" * 60


def write_teams(folder, count, kpis=3, tail=LONG):
    """``count`` teams with ``kpis`` KPIs each, all on one CSV file source; ``tail`` lengthens every name."""
    (folder / "issues.csv").write_text("team,priority\nt000,High\n")
    teams = []
    for n in range(count):
        team_kpis = [
            {
                "id": f"k{k}",
                "name": f"KPI {k} {tail}",
                "source": "issues",
                "count": {"where": {"team": f"t{n:03d}"}},
                "category": "priority",
                "weights": {"High": 5, "Low": 1},
                "target": 20,
                "warning": 40,
            }
            for k in range(kpis)
        ]
        teams.append({"id": f"t{n:03d}", "name": f"Team {n:03d} {tail}".strip(), "kpis": team_kpis})
    data = {"chat": {"verify": False}, "sources": {"issues": {"type": "file", "path": "issues.csv"}}, "teams": teams}
    (folder / "scorebot.yaml").write_text(yaml.safe_dump(data))
    return load_config(folder / "scorebot.yaml")


def reading(team, kpi, high, when):
    return Reading(team, kpi, when, SCORE, {"High": high}, high * 5.0)


def client_for(config, store_url):
    services = build_services(config, clock=lambda: NOW, store_url=store_url)
    return services, create_app(services=services, allow_unverified=True).test_client()


def ask(client, body):
    response = client.post("/", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    return response.get_json()


def page_click(page):
    body = p.classic_click()
    body["common"]["parameters"] = {"action": "overview", "page": str(page)}
    body["action"] = {"actionMethodName": "overview", "parameters": [{"key": "page", "value": str(page)}]}
    return body


def rows(message):
    sections = message["cardsV2"][0]["card"]["sections"]
    return [w["decoratedText"] for s in sections for w in s["widgets"] if "decoratedText" in w]


def shown_team(row):
    return {x["key"]: x["value"] for x in row["button"]["onClick"]["action"]["parameters"]}["team"]


def check_limits(message):
    assert validate_message(message) == []  # the Chat API schema, 32,000 bytes, 100 widgets a card
    assert message_bytes(message) <= MAX_MESSAGE_BYTES
    assert widget_count(message) <= MAX_CARD_WIDGETS


@pytest.mark.parametrize(
    ("count", "tail", "pages"),
    [(3, LONG, 1), (60, "", 1), (100, "", 4), (100, LONG, 4), (250, LONG, 10)],
    ids=["3", "60", "100", "100-long-names", "250"],
)
def test_every_page_is_valid_and_within_limits_and_shows_every_team_once(tmp_path, count, tail, pages):
    config = write_teams(tmp_path, count, tail=tail)
    services, client = client_for(config, f"sqlite:///{tmp_path / 'store.db'}")
    services.store.add_readings(
        [reading(f"t{n:03d}", f"k{k}", n % 9, NOW - timedelta(minutes=n)) for n in range(count) for k in range(3)]
        + [reading(f"t{n:03d}", f"k{k}", 4, NOW - timedelta(days=7)) for n in range(0, count, 2) for k in range(3)]
    )

    first = ask(client, p.classic_slash(" all"))
    assert first["actionResponse"]["type"] == "NEW_MESSAGE"
    messages = [first] + [ask(client, page_click(n)) for n in range(1, pages)]

    seen = []
    for number, message in enumerate(messages, start=1):
        check_limits(message)
        seen += [shown_team(row) for row in rows(message)]
        subtitle = message["cardsV2"][0]["card"]["header"]["subtitle"]
        assert (f"page {number} of {pages}" in subtitle) == (pages > 1)
    assert sorted(seen) == [f"t{n:03d}" for n in range(count)]
    if pages > 1:
        assert [len(rows(m)) for m in messages] == [25] * pages
        buttons = messages[0]["cardsV2"][0]["card"]["sections"][-1]["widgets"][0]["buttonList"]["buttons"]
        assert [b["text"] for b in buttons] == ["Next 25"]
        assert all(ask(client, page_click(n))["actionResponse"]["type"] == "UPDATE_MESSAGE" for n in (1, 9))


def test_worst_status_first_then_most_worsened_against_its_own_target(tmp_path):
    config = write_teams(tmp_path, 5, kpis=1)
    services, client = client_for(config, f"sqlite:///{tmp_path / 'store.db'}")
    week = NOW - timedelta(days=7)
    services.store.add_readings(
        [
            reading("t000", "k0", 2, NOW),  # good (10), worse by 5 in the week
            reading("t000", "k0", 1, week),
            reading("t001", "k0", 9, NOW),  # bad (45), no reading a week ago
            reading("t002", "k0", 10, NOW),  # bad (50), worse by 30
            reading("t002", "k0", 4, week),
            reading("t003", "k0", 6, NOW),  # warning (30), better by 10
            reading("t003", "k0", 8, week),
        ]
    )  # t004: never read

    message = ask(client, p.classic_slash(" all"))

    assert [shown_team(row) for row in rows(message)] == ["t004", "t002", "t001", "t003", "t000"]
    texts = [row["text"] for row in rows(message)]
    assert '<b>50</b> (target 20) · <font color="#d93025">▲ +30 vs 7 days ago</font>' in texts[1], "worse: red"
    assert "no reading 7 days ago" in texts[2]
    assert '<font color="#188038">▼ −10 vs 7 days ago</font>' in texts[3], "better: green"
    assert "no reading yet" in texts[0]
    assert message["cardsV2"][0]["card"]["header"]["subtitle"] == (
        "5 teams, each against its own target and its own past week"
    )
    assert all(text[0] in "🟢🟡🔴⚪" for text in texts)  # each row opens with its status, never a position
    assert message["text"] == "All teams: 1 no data, 2 bad, 1 warning, 1 good (from stored readings)"


def test_the_overview_reads_no_source_and_writes_nothing(tmp_path):
    config = write_teams(tmp_path, 2, kpis=1)
    services, client = client_for(config, f"sqlite:///{tmp_path / 'store.db'}")
    services.store.add_readings([reading("t000", "k0", 3, NOW - timedelta(hours=3)), reading("t001", "k0", 1, NOW)])
    (tmp_path / "issues.csv").unlink()  # a live read would fail now

    message = ask(client, p.classic_slash(" all"))

    check_limits(message)
    assert [row["bottomLabel"] for row in rows(message)] == ["read 3 h ago", "read 0 min ago"]  # both good: by name
    assert message["cardsV2"][0]["card"]["sections"][0]["header"] == "From stored readings, 0 min to 3 h old"
    assert len(services.store.recent_readings("t000")) == 1


def test_show_opens_a_teams_full_card_in_place_and_all_teams_goes_back(tmp_path):
    config = write_teams(tmp_path, 3, kpis=1)
    _, client = client_for(config, f"sqlite:///{tmp_path / 'store.db'}")
    overview = ask(client, p.classic_slash(" all"))
    button = rows(overview)[1]["button"]
    params = {x["key"]: x["value"] for x in button["onClick"]["action"]["parameters"]}
    click = p.classic_click(params["team"])
    click["common"]["parameters"] = params
    click["action"] = {"actionMethodName": "overview-team", "parameters": button["onClick"]["action"]["parameters"]}

    card = ask(client, click)

    assert card["actionResponse"]["type"] == "UPDATE_MESSAGE"
    check_limits(card)
    assert card["cardsV2"][0]["card"]["header"]["title"].endswith(f"Team {params['team'][1:]} {LONG}")
    buttons = card["cardsV2"][0]["card"]["sections"][-1]["widgets"][-1]["buttonList"]["buttons"]
    assert [b["text"] for b in buttons] == ["Refresh", "All teams"]
    back = {x["key"]: x["value"] for x in buttons[-1]["onClick"]["action"]["parameters"]}
    assert back == {"action": "overview", "page": "0"}
    again = ask(client, page_click(0))
    assert again["actionResponse"]["type"] == "UPDATE_MESSAGE"
    assert again["cardsV2"][0]["card"]["header"]["title"] == "All teams"


def test_score_all_in_a_mention_and_in_the_add_on_format(tmp_path):
    config = write_teams(tmp_path, 3, kpis=1)
    _, client = client_for(config, f"sqlite:///{tmp_path / 'store.db'}")
    mention = ask(client, p.classic_mention(" what's the score for all teams?"))
    addon = ask(client, p.addon_slash(" all"))
    assert mention["cardsV2"][0]["card"]["header"]["title"] == "All teams"
    created = addon["hostAppDataAction"]["chatDataAction"]["createMessageAction"]["message"]
    assert created["cardsV2"][0]["card"]["header"]["title"] == "All teams"
    assert "privateMessageViewer" not in created


@pytest.mark.parametrize("team_id", ["all", "help"])
def test_no_team_may_be_called_like_a_command_word(tmp_path, team_id):
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["teams"][0]["id"] = team_id
    shutil.copy(DEMO_CONFIG.parent / "demo-issues.csv", tmp_path / "demo-issues.csv")
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=rf"teams\[0\]\.id: '{team_id}' cannot be a team id"):
        load_config(tmp_path / "demo.yaml")


def test_preview_all_prints_the_overview_as_text(tmp_path, monkeypatch, capsys):
    for name in ("demo.yaml", "demo-issues.csv"):
        shutil.copy(DEMO_CONFIG.parent / name, tmp_path / name)
    monkeypatch.setenv("SCOREBOT_STORE", f"sqlite:///{tmp_path / 'cli.db'}")
    assert main(["--config", str(tmp_path / "demo.yaml"), "send", "security"]) == 0
    capsys.readouterr()

    assert main(["--config", str(tmp_path / "demo.yaml"), "preview", "all"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("┌ All teams\n│ 3 teams, each against its own target and its own past week\n")
    assert "│ 🟢 Security · Good\n│ Open security findings: " in out
    assert "│ ⚪ Customer Issues · No data\n│ Open customer issues: no reading yet\n" in out
    assert out.rstrip().endswith("(from stored readings)")


def glances(folder, count, kpis=1, name=lambda n: f"Team {n:03d}"):
    """``count`` teams never read, each with ``kpis`` KPIs, named by ``name``."""
    config = write_teams(folder, count, kpis=kpis, tail="")
    return [glance(t.model_copy(update={"name": name(n)}), {}, {}) for n, t in enumerate(config.teams)]


def padded_to(teams, size, kpis, named):
    """``teams`` with longer names (one ASCII byte a letter) so the one-card overview showing ``kpis`` KPIs,
    ``named`` or not, is ``size`` bytes."""
    missing = size - message_bytes(_overview_message(teams, teams, NOW, 0, 1, kpis, named, "f"))
    padded = []
    for team in teams:
        extra = max(0, min(missing, 80 - len(team.team.name)))
        missing -= extra
        padded.append(replace(team, team=team.team.model_copy(update={"name": team.team.name + "y" * extra})))
    assert missing == 0
    return padded


def params(row):
    return {x["key"]: x["value"] for x in row["button"]["onClick"]["action"]["parameters"]}


def subtitle(message):
    return message["cardsV2"][0]["card"]["header"]["subtitle"]


def test_a_hundred_teams_share_one_card_when_their_rows_fit_without_kpi_names(tmp_path):
    teams = glances(tmp_path, 100)
    named = _overview_message(teams, teams, NOW, 0, 1, 1, True, "f")
    assert message_bytes(named) > MAX_MESSAGE_BYTES  # only rows without KPI names fit

    message = overview_message(teams, NOW, button_function="f")

    assert overview_page_size(teams, NOW, "f") == 100
    assert len(rows(message)) == 100 and "page" not in subtitle(message)
    assert "KPI 0" not in json.dumps(message)
    check_limits(message)


@pytest.mark.parametrize(("over", "size"), [(0, 90), (1, OVERVIEW_PAGE)], ids=["at-the-limit", "one-byte-over"])
def test_teams_share_one_card_up_to_exactly_chats_size_limit(tmp_path, over, size):
    teams = padded_to(glances(tmp_path, 90), MAX_MESSAGE_BYTES + over, kpis=1, named=False)

    assert overview_page_size(teams, NOW, "f") == size
    message = overview_message(teams, NOW, button_function="f")
    assert len(rows(message)) == size
    check_limits(message)
    if not over:
        assert message_bytes(message) == MAX_MESSAGE_BYTES
        assert all("page" not in params(row) for row in rows(message))


def test_rows_keep_their_kpi_names_when_the_card_is_exactly_at_chats_size_limit(tmp_path):
    teams = padded_to(glances(tmp_path, 80), MAX_MESSAGE_BYTES, kpis=1, named=True)

    message = overview_message(teams, NOW, button_function="f")

    assert message_bytes(message) == MAX_MESSAGE_BYTES
    assert all(row["text"].endswith("<br>KPI 0 : no reading yet") for row in rows(message))


def test_pages_open_on_the_first_a_page_past_the_end_shows_the_last_and_rows_carry_their_page(tmp_path):
    teams = glances(tmp_path, 50, name=lambda n: chr(0x1F600 + n) * 40)  # 12 bytes a letter as sent

    first = overview_message(teams, NOW, button_function="f")
    past = overview_message(teams, NOW, page=5, button_function="f")

    assert overview_page_size(teams, NOW, "f") == OVERVIEW_PAGE
    assert subtitle(first).endswith(" · page 1 of 2") and subtitle(past).endswith(" · page 2 of 2")
    assert [shown_team(row) for row in rows(first)] == [f"t{n:03d}" for n in range(25)]
    assert [shown_team(row) for row in rows(past)] == [f"t{n:03d}" for n in range(25, 50)]
    assert {params(row)["page"] for row in rows(first)} == {"0"}  # a team's card goes back to its page
    assert {params(row)["page"] for row in rows(past)} == {"1"}
    check_limits(first)
    check_limits(past)


def test_rows_of_a_single_page_name_no_page(tmp_path):
    teams = glances(tmp_path, 3)
    message = overview_message(teams, NOW, button_function="f")
    assert [params(row) for row in rows(message)] == [
        {"action": "overview-team", "team": f"t{n:03d}"} for n in range(3)
    ]


def read_glances(folder):
    """Three teams of four KPIs: t000 read 90 minutes ago, t001 with one KPI read, t002 read 3 hours ago."""
    config = write_teams(folder, 3, kpis=4, tail="")
    a, b, c = config.teams
    at, then = NOW - timedelta(minutes=90), NOW - timedelta(days=7)
    highs = {"k0": 10, "k1": 1, "k2": 5, "k3": 2}
    latest = {k: reading("t000", k, high, at) for k, high in highs.items()}
    past = {"k0": reading("t000", "k0", 6, then), "k2": reading("t000", "k2", 5, then)}
    return [
        glance(a, latest, past),
        glance(b, {"k0": reading("t001", "k0", 1, at)}, {}),
        glance(c, {k: reading("t002", k, 1, NOW - timedelta(hours=3)) for k in highs}, {}),
    ]


def row(text, label, team, page="1"):
    parameters = [{"key": "action", "value": "overview-team"}, {"key": "team", "value": team}]
    parameters += [{"key": "page", "value": page}] if page is not None else []
    button = {"text": "Show", "onClick": {"action": {"function": "f", "parameters": parameters}}}
    return {"decoratedText": {"text": text, "bottomLabel": label, "wrapText": True, "button": button}}


def page_button(text, page):
    parameters = [{"key": "action", "value": "overview"}, {"key": "page", "value": str(page)}]
    return {"text": text, "onClick": {"action": {"function": "f", "parameters": parameters}}}


RED, GREY, GREEN = '<font color="#d93025">', '<font color="#5f6368">', '<font color="#188038">'


def test_a_row_shows_each_kpi_worst_first_how_many_more_and_its_age_and_show_goes_back_to_its_page(tmp_path):
    teams = read_glances(tmp_path)

    message = _overview_message(teams, teams, NOW, 1, 2, 3, True, "f")

    unread = "KPI 1 : no reading yet<br>KPI 2 : no reading yet<br>KPI 3 : no reading yet"
    fresh = "<br>".join(f"KPI {k} : <b>5</b> (target 20) · no reading 7 days ago" for k in range(3))
    assert message == {
        "text": "All teams: 1 no data, 1 bad, 1 good (from stored readings)",
        "cardsV2": [
            {
                "cardId": "overview",
                "card": {
                    "header": {
                        "title": "All teams",
                        "subtitle": "3 teams, each against its own target and its own past week · page 2 of 2",
                    },
                    "sections": [
                        {
                            "header": "From stored readings, 1 h 30 min to 3 h old; 1 team not fully read yet",
                            "widgets": [
                                row(
                                    f"🔴 <b>Team 000</b> · {RED}Bad</font>"
                                    f"<br>KPI 0 : <b>50</b> (target 20) · {RED}▲ +20 vs 7 days ago</font>"
                                    f"<br>KPI 2 : <b>25</b> (target 20) · {GREY}= no change vs 7 days ago</font>"
                                    "<br>KPI 1 : <b>5</b> (target 20) · no reading 7 days ago<br>… and 1 more KPIs",
                                    "read 1 h 30 min ago",
                                    "t000",
                                ),
                                row(
                                    f"⚪ <b>Team 001</b> · {GREY}No data</font><br>{unread}<br>… and 1 more KPIs",
                                    "not every KPI read yet",
                                    "t001",
                                ),
                                row(
                                    f"🟢 <b>Team 002</b> · {GREEN}Good</font><br>{fresh}<br>… and 1 more KPIs",
                                    "read 3 h ago",
                                    "t002",
                                ),
                            ],
                        },
                        {"widgets": [{"buttonList": {"buttons": [page_button("Previous 25", 0)]}}]},
                    ],
                },
            }
        ],
    }


def test_pages_between_the_first_and_last_go_both_ways_and_next_counts_the_teams_left(tmp_path):
    teams = glances(tmp_path, 60)

    def paging(page, function="f"):
        message = _overview_message(teams, teams[page * 25 : (page + 1) * 25], NOW, page, 3, 1, False, function)
        sections = message["cardsV2"][0]["card"]["sections"]
        return [w["buttonList"]["buttons"] for s in sections for w in s["widgets"] if "buttonList" in w]

    assert paging(0) == [[page_button("Next 25", 1)]]
    assert paging(1) == [[page_button("Previous 25", 0), page_button("Next 10", 2)]]
    assert paging(2) == [[page_button("Previous 25", 1)]]
    assert paging(1, function=None) == []  # no buttons to page with where rows have none to show a team


def test_rows_without_kpi_names_and_the_age_of_what_a_page_shows(tmp_path):
    done, partly, fresh = read_glances(tmp_path)
    value = fresh.team.kpis[0].model_copy(update={"kind": "value", "unit": "ms", "category": "", "weights": {}})
    timed = glance(
        fresh.team.model_copy(update={"kpis": [value]}),
        {"k0": Reading("t002", "k0", NOW - timedelta(hours=3), SCORE, {}, 30.0)},
        {"k0": Reading("t002", "k0", NOW - timedelta(days=7), SCORE, {}, 20.0)},
    )

    def card(*shown, kpis=4):
        message = _overview_message(shown, shown, NOW, 0, 1, kpis, False, "f")
        section = message["cardsV2"][0]["card"]["sections"][0]
        return section["header"], [row["text"] for row in rows(message)]

    assert card(fresh) == (
        "From stored readings, 3 h old",
        ["🟢 <b>Team 002</b> · Good" + "<br><b>5</b> (target 20) · no reading 7 days ago" * 4],
    )
    assert card(partly, partly, kpis=1) == (
        "From stored readings: none yet",
        ["⚪ <b>Team 001</b> · No data<br>no reading yet<br>… and 3 more KPIs"] * 2,
    )
    assert card(done, partly, partly, kpis=0)[0] == "From stored readings, 1 h 30 min old; 2 teams not fully read yet"
    assert card(timed) == (  # a value's change in its unit
        "From stored readings, 3 h old",
        [f"🟡 <b>Team 002</b> · Warning<br><b>30 ms</b> (target 20 ms) · {RED}▲ +10 ms vs 7 days ago</font>"],
    )
