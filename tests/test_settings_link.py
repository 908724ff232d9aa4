"""Linking a Space from Chat (`/score link TEAM`, `/score unlink`), the welcome of a Space without a team, and
the Settings button on the Space's own team card: through Flask's test client, both event formats."""

import json

import pytest

from tests import payloads as p
from tests.test_settings_dialog import ADA, BOB, EVERYTHING, App, dialog_of, named
from tests.test_web import card_of

NEW_SPACE = {"name": "spaces/NEW", "type": "ROOM", "spaceType": "SPACE", "displayName": "New"}
EDITORS = {"editable": EVERYTHING, "editors": ["ada@example.com"], "link": "editors"}
SLASHES = [p.classic_slash, p.addon_slash]


def slash(make, argument, user=ADA, space=NEW_SPACE):
    body = make(argument, space=space)
    if "chat" in body:
        body["chat"]["user"] = user
    else:
        body["user"] = user
    return body


def text(message):
    return json.dumps(message, ensure_ascii=False)


@pytest.fixture
def app(tmp_path, token_factory):
    return App(tmp_path, token_factory, EDITORS)


@pytest.mark.parametrize("make", SLASHES)
def test_an_editor_links_a_space_and_its_team_card_and_settings_follow(app, make):
    _, message = card_of(app.send(slash(make, " link security")))
    assert message["text"] == "This Space is now linked to Security (security): /score shows its card here."
    assert "privateMessageViewer" not in message
    assert app.services.store.linked_team("spaces/NEW") == "security"
    history = app.services.store.settings_history("security")
    assert [(h.field, h.new, h.who, h.outcome) for h in history] == [
        ("space", "spaces/NEW", "ada@example.com", "linked")
    ]
    card, _ = dialog_of(app.send(p.classic_dialog_command(" settings", user=ADA, space=NEW_SPACE)))
    assert card["header"]["title"] == "Settings · Security"
    _, score = card_of(app.send(slash(make, "")))  # /score in the Space, at once in this process
    assert score["cardsV2"][0]["card"]["header"]["title"].endswith("Security")


@pytest.mark.parametrize("make", SLASHES)
def test_relinking_names_the_team_it_was_linked_to(app, make):
    app.send(slash(make, " link security"))
    _, message = card_of(app.send(slash(make, " link performance")))
    assert message["text"].endswith("(it was linked to Security): /score shows its card here.")
    assert app.services.store.linked_team("spaces/NEW") == "performance"


@pytest.mark.parametrize("make", SLASHES)
def test_unlink_takes_the_link_away_and_says_so(app, make):
    app.send(slash(make, " link security"))
    _, message = card_of(app.send(slash(make, " unlink")))
    assert message["text"] == "This Space is no longer linked to Security."
    assert app.services.store.linked_team("spaces/NEW") is None
    _, again = card_of(app.send(slash(make, " unlink")))
    assert "This Space is not linked to a team." in text(again) and again["privateMessageViewer"]


@pytest.mark.parametrize(
    ("argument", "user", "space", "note"),
    [
        (" link security", BOB, NEW_SPACE, "Only ada@example.com can link this Space to a team."),
        (" unlink", BOB, NEW_SPACE, "Only ada@example.com can link this Space to a team."),
        (" link", ADA, NEW_SPACE, "Name the team: /score link TEAM."),
        (" link nosuch", ADA, NEW_SPACE, "There is no team called"),
        (" link security", ADA, p.SPACE, "given to team 'customer' in the configuration"),
        (" unlink", ADA, p.SPACE, "This Space is given to Customer Issues in the configuration"),
    ],
)
@pytest.mark.parametrize("make", SLASHES)
def test_links_refused_tell_the_asker_alone_and_change_nothing(app, make, argument, user, space, note):
    _, message = card_of(app.send(slash(make, argument, user=user, space=space)))
    assert note in text(message)
    assert message["privateMessageViewer"] == {"name": user["name"]}
    assert app.services.store.space_links() == {}


def test_linking_is_off_unless_the_configuration_allows_it(tmp_path, token_factory):
    app = App(tmp_path, token_factory, {"editable": EVERYTHING, "editors": ["ada@example.com"]})
    _, message = card_of(app.send(slash(p.classic_slash, " link security")))
    assert "settings.link is off" in text(message)
    assert app.services.store.space_links() == {}


def test_the_mention_form_links_too(app):
    body = p.classic_mention(" score link security") | {"space": NEW_SPACE, "user": ADA}
    body["message"]["space"] = NEW_SPACE
    _, message = card_of(app.send(body))
    assert message["text"].startswith("This Space is now linked to Security")


@pytest.mark.parametrize(("make", "user"), [(p.classic_added, ADA), (p.classic_added, BOB)])
def test_an_unlinked_space_is_told_how_to_link_it(app, make, user):
    body = make(space=NEW_SPACE) | {"user": user}
    _, message = card_of(app.send(body))
    lines = text(message)
    if user is ADA:
        assert "You can link it: type <b>/score link TEAM</b>, e.g. <b>/score link customer</b>" in lines
    else:
        assert "Only ada@example.com can link it, with <b>/score link TEAM</b>;" in lines
        assert "You can link it" not in lines


def test_an_addon_unlinked_space_welcome_offers_the_link(app):
    body = p.addon_added()
    body["chat"]["addedToSpacePayload"]["space"] = NEW_SPACE
    body["chat"]["user"] = ADA
    _, message = card_of(app.send(body))
    assert "You can link it" in text(message)


def test_a_linked_space_is_welcomed_with_its_team(app):
    app.send(slash(p.classic_slash, " link security"))
    _, message = card_of(app.send(p.classic_added(space=NEW_SPACE)))
    assert "This Space is linked to <b>Security</b> (security)." in text(message)


def buttons(message):
    return message["cardsV2"][0]["card"]["sections"][-1]["widgets"][0]["buttonList"]["buttons"]


@pytest.mark.parametrize("make", SLASHES)
def test_the_spaces_own_team_card_has_a_settings_button_that_opens_the_dialog(app, make):
    _, own = card_of(app.send(make("")))
    settings = [b for b in buttons(own) if b["text"] == "Settings"]
    assert len(settings) == 1
    action = settings[0]["onClick"]["action"]
    assert action["interaction"] == "OPEN_DIALOG"
    assert {x["key"]: x["value"] for x in action["parameters"]} == {"action": "settings", "team": "customer"}
    _, other = card_of(app.send(make(" security")))
    assert [b["text"] for b in buttons(other)] == ["Refresh"]  # another team's card: no settings here
    card, _ = dialog_of(
        app.send(p.classic_dialog_click({"action": "settings", "team": "customer"}, "REQUEST_DIALOG", user=ADA))
    )
    assert named(card, "timezone")["value"] == "America/New_York"


def test_without_editable_settings_no_card_has_the_button(tmp_path, token_factory):
    app = App(tmp_path, token_factory, {})
    _, own = card_of(app.send(p.classic_slash()))
    assert "Settings" not in [b["text"] for b in buttons(own)]


def test_a_refreshed_card_keeps_the_settings_button(app):
    kind, message = card_of(app.send(p.classic_click("customer")))
    assert kind == "UPDATE_MESSAGE"
    assert [b["text"] for b in buttons(message)][:2] == ["Refresh", "Settings"]


def test_help_lists_the_settings_and_link_commands_only_where_they_work(app, tmp_path, token_factory):
    _, message = card_of(app.send(p.classic_slash(" help")))
    assert "<b>/score settings</b>" in text(message) and "<b>/score link TEAM</b>" in text(message)
    (tmp_path / "plain").mkdir()
    plain = App(tmp_path / "plain", token_factory, {})
    _, message = card_of(plain.send(p.classic_slash(" help")))
    assert "/score settings" not in text(message) and "/score link" not in text(message)


def test_a_save_shows_on_the_spaces_next_card_at_once(app):
    performance = {"name": "spaces/DEMO-PERFORMANCE", "type": "ROOM", "spaceType": "SPACE"}
    _, before = card_of(app.send(p.classic_slash(space=performance)))
    assert "Search p95 latency" in text(before)
    save = {"action": "settings-save", "team": "performance", "version": "0"}
    submitted = {
        "schedule_preset": "custom",
        "schedule_cron": "0 9 * * 1,4",
        "timezone": "Europe/Berlin",
        "alerts_on": ["bad"],
        "snooze": "none",
        "kpis": ["open-issues", "fixed"],
    }
    body = p.classic_dialog_click(save, form=submitted, user=ADA, space=performance)
    assert dialog_of(app.send(body)) == (None, "Saved: KPIs on the card.")
    _, after = card_of(app.send(p.classic_slash(space=performance)))
    assert "Search p95 latency" not in text(after) and "Open performance issues" in text(after)
