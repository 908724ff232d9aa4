"""The settings dialog through Flask's test client with signed tokens, in both event formats: open, check,
submit with an error, submit, cancel, read-only, a conflicting save, and space managers asked of the
loopback Chat API. Every answer is checked against the offline Chat schema and Chat's size limits."""

import json
import shutil
import time
from datetime import UTC, datetime

import pytest
import yaml

from bot.app import create_app
from bot.config import CHAT_ISSUER, DEMO_CONFIG, load_config
from bot.services import build_services
from tests import payloads as p
from tests.chat_schema import validate_addon_dialog, validate_message
from tests.fakes.chat import FakeChat, service_account_file
from tests.test_web import PROJECT_NUMBER, card_of, post

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # a Monday
ADA = p.USER | {"email": "ada@example.com"}
BOB = {"name": "users/222", "displayName": "Bob", "type": "HUMAN", "email": "bob@elsewhere.org"}
CAROL = {"name": "users/333", "displayName": "Carol", "type": "HUMAN", "email": "carol@example.com"}
EVERYTHING = ["schedule", "timezone", "live", "alerts", "snooze", "kpis"]
CLICKS = [p.classic_dialog_click, p.addon_dialog_click]


class App:
    """The app on a copy of the demo configuration with ``settings:``, its store, and helpers for each step."""

    def __init__(self, tmp_path, token_factory, settings, team_options=None, chat=None):
        for name in ("demo.yaml", "demo-issues.csv"):
            shutil.copy(DEMO_CONFIG.parent / name, tmp_path / name)
        data = yaml.safe_load((tmp_path / "demo.yaml").read_text())
        data["chat"] = {
            "verify": True,
            "score_command_id": 1,
            "audience": PROJECT_NUMBER,
            "certs_url": token_factory.certs_url,
            **(chat or {}),
        }
        data["settings"] = settings
        for team in data["teams"]:
            team.update((team_options or {}).get(team["id"], {}))
        (tmp_path / "demo.yaml").write_text(yaml.safe_dump(data))
        self.services = build_services(
            load_config(tmp_path / "demo.yaml"), clock=lambda: NOW, store_url="sqlite:///store.db"
        )
        self.client = create_app(services=self.services).test_client()
        now = int(time.time())
        token = token_factory.sign(iss=CHAT_ISSUER, aud=PROJECT_NUMBER, iat=now, exp=now + 3600)
        self.auth = {"Authorization": f"Bearer {token}"}

    def send(self, body):
        response = post(self.client, body, self.auth)
        assert response.status_code == 200
        return response.get_json()

    def overrides(self, team="customer"):
        return self.services.store.team_overrides(team)


def dialog_of(body):
    """The dialog card of an answer in either format (None when it closes the dialog), checked against the
    schema; and the notice shown on closing."""
    if "action" in body:
        assert validate_addon_dialog(body) == []
        action = body["action"]
        navigation = action["navigations"][0]
        card = navigation.get("pushCard")
        return card, action.get("notification", {}).get("text", "")
    assert validate_message(body) == []
    dialog_action = body["actionResponse"]["dialogAction"]
    assert body["actionResponse"]["type"] == "DIALOG"
    status = dialog_action.get("actionStatus", {})
    return dialog_action.get("dialog", {}).get("body"), status.get("userFacingMessage", "")


def widgets(card):
    return [w for section in card["sections"] for w in section["widgets"]]


def named(card, name):
    """The input widget called ``name``."""
    for widget in widgets(card):
        kind = next(iter(widget))
        if widget[kind].get("name") == name:
            return widget[kind]
    raise AssertionError(f"no input {name}")


def text_of(card):
    return json.dumps(card, ensure_ascii=False)


def footer_params(card, button="primaryButton"):
    params = card["fixedFooter"][button]["onClick"]["action"]["parameters"]
    return {item["key"]: item["value"] for item in params}


def form(**changes):
    """A submitted form as the dialog opened on the demo's customer team would send it, with ``changes``."""
    values = {
        "schedule_preset": "custom",
        "schedule_cron": "* * * * *",
        "timezone": "America/New_York",
        "live": "off",
        "alerts_on": ["bad"],
        "snooze": "none",
        "kpis": ["open-issues"],
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


@pytest.fixture
def app(tmp_path, token_factory):
    return App(tmp_path, token_factory, {"editable": EVERYTHING, "editors": ["ada@example.com"], "link": "editors"})


@pytest.mark.parametrize(
    "body",
    [
        p.classic_dialog_click({"action": "settings"}, "REQUEST_DIALOG", user=ADA),
        p.addon_dialog_click({"action": "settings"}, "REQUEST_DIALOG", user=ADA),
        p.classic_dialog_command(" settings", user=ADA),
        p.addon_dialog_command(" settings", user=ADA),
    ],
)
def test_the_button_and_the_dialog_command_open_the_spaces_team_dialog(app, body):
    card, _ = dialog_of(app.send(body))
    assert card["header"]["title"] == "Settings · Customer Issues"
    assert [s.get("header") for s in card["sections"] if s.get("header")] == [
        "Schedule",
        "Time zone",
        "Live card",
        "Alerts",
        "Snooze scheduled posts",
        "KPIs on the card",
    ]
    assert named(card, "schedule_cron")["value"] == "* * * * *"
    assert named(card, "timezone")["value"] == "America/New_York"
    assert [i["value"] for i in named(card, "kpis")["items"] if i["selected"]] == ["open-issues"]
    assert "Mon 7 Dec 04:01, Mon 7 Dec 04:02, Mon 7 Dec 04:03 (America/New_York)" in text_of(card)
    assert "No change from Chat yet" in text_of(card)
    assert footer_params(card) == {"action": "settings-save", "team": "customer", "version": "0"}
    assert footer_params(card, "secondaryButton")["action"] == "settings-cancel"


@pytest.mark.parametrize("make", [p.classic_slash, p.addon_slash])
def test_a_plain_settings_command_answers_the_asker_with_a_button_that_opens_the_dialog(app, make):
    kind, message = card_of(app.send(make(" settings") | {}))
    assert kind in ("NEW_MESSAGE", "createMessageAction")
    assert message["privateMessageViewer"] == {"name": "users/111"}
    button = message["cardsV2"][0]["card"]["sections"][0]["widgets"][1]["buttonList"]["buttons"][0]
    assert button["onClick"]["action"]["interaction"] == "OPEN_DIALOG"
    assert button["onClick"]["action"]["parameters"] == [{"key": "action", "value": "settings"}]


@pytest.mark.parametrize("make", CLICKS)
def test_check_shows_the_next_three_posts_of_the_typed_schedule_in_the_typed_zone(app, make):
    submitted = form(schedule_cron="30 9 * * 1-5", timezone="Europe/Berlin")
    body = app.send(make({"action": "settings-check", "team": "customer", "version": "0"}, form=submitted, user=ADA))
    card, _ = dialog_of(body)
    assert "Tue 8 Dec 09:30, Wed 9 Dec 09:30, Thu 10 Dec 09:30 (Europe/Berlin)" in text_of(card)
    assert named(card, "schedule_cron")["value"] == "30 9 * * 1-5"  # the form is kept as typed
    assert footer_params(card)["version"] == "0"
    assert app.overrides().version == 0  # a check writes nothing
    if "action" in body:
        assert "pushCard" in body["action"]["navigations"][0]


@pytest.mark.parametrize("make", CLICKS)
def test_check_shows_what_is_wrong_under_the_field(app, make):
    submitted = form(schedule_cron="61 9 * * *", timezone="Mars/Olympus")
    card, _ = dialog_of(
        app.send(make({"action": "settings-check", "team": "customer", "version": "0"}, form=submitted, user=ADA))
    )
    sections = {s.get("header"): text_of(s) for s in card["sections"]}
    assert "minute (0-59)" in sections["Schedule"]
    assert "Mars/Olympus" in sections["Time zone"] and "⚠" in sections["Time zone"]
    assert app.overrides().version == 0


@pytest.mark.parametrize("make", CLICKS)
def test_a_save_with_an_error_keeps_the_dialog_with_the_error_on_the_field_and_writes_nothing(app, make):
    submitted = form(timezone="Mars/Olympus", schedule_cron="0 8 * * *")
    card, notice = dialog_of(
        app.send(make({"action": "settings-save", "team": "customer", "version": "0"}, form=submitted, user=ADA))
    )
    assert card is not None and notice == ""
    sections = {s.get("header"): text_of(s) for s in card["sections"]}
    assert "⚠" in sections["Time zone"] and "⚠" not in sections["Schedule"]
    assert named(card, "schedule_cron")["value"] == "0 8 * * *"
    assert "Mon 7 Dec 08:00, Tue 8 Dec 08:00, Wed 9 Dec 08:00 (America/New_York)" in sections["Schedule"]
    assert app.overrides().version == 0
    assert app.services.store.settings_history("customer") == []


@pytest.mark.parametrize("make", CLICKS)
def test_no_kpi_shown_is_refused_on_the_kpis_field(app, make):
    card, _ = dialog_of(
        app.send(make({"action": "settings-save", "team": "customer", "version": "0"}, form=form(kpis=None), user=ADA))
    )
    kpis = next(s for s in card["sections"] if s.get("header") == "KPIs on the card")
    assert "show at least one KPI" in text_of(kpis)
    assert app.overrides().version == 0


@pytest.mark.parametrize("make", CLICKS)
def test_a_save_stores_the_changes_audited_and_the_footer_then_shows_them(app, make):
    submitted = form(schedule_preset="weekdays", timezone="Europe/Berlin", snooze="week", snooze_alerts=["on"])
    card, notice = dialog_of(
        app.send(make({"action": "settings-save", "team": "customer", "version": "0"}, form=submitted, user=ADA))
    )
    assert card is None
    assert notice == "Saved: schedule, time zone, snooze scheduled posts."
    stored = app.overrides()
    assert stored.version == 1
    assert stored.values["schedule"] == "0 10 * * 1-5"
    assert stored.values["timezone"] == "Europe/Berlin"
    assert stored.values["snooze"]["alerts"] is True
    history = app.services.store.settings_history("customer")
    assert {(h.field, h.who, h.outcome) for h in history} == {
        ("schedule", "ada@example.com", "saved"),
        ("timezone", "ada@example.com", "saved"),
        ("snooze", "ada@example.com", "saved"),
    }
    card, _ = dialog_of(app.send(make({"action": "settings"}, "REQUEST_DIALOG", user=ADA)))
    assert "Last change: ada@example.com, Mon 7 Dec 2026 10:00 (Europe/Berlin)." in text_of(card)
    assert [i["value"] for i in named(card, "schedule_preset")["items"] if i["selected"]] == ["weekdays"]
    assert [i["value"] for i in named(card, "snooze")["items"] if i["selected"]] == ["keep"]
    assert "Keep: until Mon 14 Dec 2026 10:00 (Europe/Berlin)" in text_of(card)
    # the next posts that go out: from the snooze's end, its own moment included
    assert "Mon 14 Dec 10:00, Tue 15 Dec 10:00, Wed 16 Dec 10:00 (Europe/Berlin)" in text_of(card)
    assert footer_params(card)["version"] == "1"


@pytest.mark.parametrize("make", CLICKS)
def test_saving_the_values_shown_changes_nothing(app, make):
    card, notice = dialog_of(
        app.send(make({"action": "settings-save", "team": "customer", "version": "0"}, form=form(), user=ADA))
    )
    assert (card, notice) == (None, "Nothing changed.")
    assert app.overrides().version == 0


@pytest.mark.parametrize("make", CLICKS)
@pytest.mark.parametrize("how", ["button", "icon"])
def test_cancel_closes_the_dialog_and_writes_nothing(app, make, how):
    if how == "button":
        body = make(
            {"action": "settings-cancel", "team": "customer", "version": "0"}, form=form(timezone="UTC"), user=ADA
        )
    else:
        body = make({}, "CANCEL_DIALOG", form=form(timezone="UTC"), user=ADA)
    assert dialog_of(app.send(body)) == (None, "")
    assert app.overrides().version == 0
    assert app.services.store.settings_history("customer") == []


@pytest.mark.parametrize("make", CLICKS)
def test_someone_without_the_right_sees_the_values_read_only_and_who_can_change_them(app, make):
    card, _ = dialog_of(app.send(make({"action": "settings"}, "REQUEST_DIALOG", user=BOB)))
    kinds = {next(iter(w)) for w in widgets(card)}
    assert not kinds & {"textInput", "selectionInput", "dateTimePicker"}
    assert "Only ada@example.com can change these settings." in text_of(card)
    assert "America/New_York" in text_of(card)
    assert footer_params(card)["action"] == "settings-cancel" and "secondaryButton" not in card["fixedFooter"]
    # a save sent anyway is refused
    body = make({"action": "settings-save", "team": "customer", "version": "0"}, form=form(timezone="UTC"), user=BOB)
    assert dialog_of(app.send(body)) == (None, "Only ada@example.com can change these settings.")
    assert app.overrides().version == 0


@pytest.mark.parametrize("make", CLICKS)
def test_a_conflicting_save_tells_the_user_and_shows_the_current_values(app, make):
    opened, _ = dialog_of(app.send(make({"action": "settings"}, "REQUEST_DIALOG", user=ADA)))
    version = footer_params(opened)["version"]
    app.services.store.save_overrides(
        "customer", {"timezone": "Asia/Tokyo"}, version=0, who="carol@example.com", at=NOW
    )
    body = make(
        {"action": "settings-save", "team": "customer", "version": version},
        form=form(schedule_cron="0 8 * * *"),
        user=ADA,
    )
    card, _ = dialog_of(app.send(body))
    assert "carol@example.com saved these settings while you were editing" in text_of(card)
    assert named(card, "timezone")["value"] == "Asia/Tokyo"  # the current values
    assert named(card, "schedule_cron")["value"] == "* * * * *"
    assert footer_params(card)["version"] == "1"
    stored = app.overrides()
    assert stored.values == {"timezone": "Asia/Tokyo"}
    conflict = [h for h in app.services.store.settings_history("customer") if h.outcome == "conflict"]
    # the form still held the zone from before, so the attempt changed both: both are audited as lost
    assert {(h.who, h.field, h.new) for h in conflict} == {
        ("ada@example.com", "schedule", "0 8 * * *"),
        ("ada@example.com", "timezone", "America/New_York"),
    }


@pytest.mark.parametrize("make", CLICKS)
def test_a_step_of_a_dialog_for_another_team_closes_it(app, make):
    body = make({"action": "settings-save", "team": "security", "version": "0"}, form=form(timezone="UTC"), user=ADA)
    card, notice = dialog_of(app.send(body))
    assert card is None and "open the settings again" in notice
    assert app.services.store.team_overrides("security").version == 0


def test_only_the_editable_fields_appear(tmp_path, token_factory):
    app = App(tmp_path, token_factory, {"editable": ["snooze", "kpis"], "editors": ["*@example.com"]})
    card, _ = dialog_of(app.send(p.classic_dialog_click({"action": "settings"}, "REQUEST_DIALOG", user=ADA)))
    assert [s.get("header") for s in card["sections"] if s.get("header")] == [
        "Snooze scheduled posts",
        "KPIs on the card",
    ]


def test_live_cards_are_offered_only_to_teams_with_a_chat_api_target(tmp_path, token_factory):
    chat_api = {"deliver": [{"type": "chat_api", "space": "spaces/DEMO-CUSTOMER", "live": "day"}]}
    app = App(tmp_path, token_factory, {"editable": ["live"], "editors": ["ada@example.com"]}, {"customer": chat_api})
    card, _ = dialog_of(app.send(p.addon_dialog_click({"action": "settings"}, "REQUEST_DIALOG", user=ADA)))
    assert [i["value"] for i in named(card, "live")["items"] if i["selected"]] == ["day"]
    body = p.addon_dialog_click(
        {"action": "settings-save", "team": "customer", "version": "0"}, form={"live": "week"}, user=ADA
    )
    assert dialog_of(app.send(body)) == (None, "Saved: live card.")
    assert app.overrides().values == {"live": "week"}


def test_without_settings_the_command_says_so(tmp_path, token_factory):
    app = App(tmp_path, token_factory, {})
    _, message = card_of(app.send(p.classic_slash(" settings")))
    assert "settings.editable is empty" in text_of(message)
    assert dialog_of(app.send(p.classic_dialog_command(" settings", user=ADA)))[1].endswith(
        "settings.editable is empty)."
    )


@pytest.fixture
def chat():
    fake = FakeChat()
    yield fake
    fake.close()


@pytest.mark.parametrize("make", CLICKS)
def test_space_managers_are_asked_of_the_chat_api(tmp_path, token_factory, chat, make):
    service_account_file(chat, tmp_path)
    options = {"api_endpoint": chat.url, "service_account_file": "service-account.json"}
    app = App(tmp_path, token_factory, {"editable": EVERYTHING, "editors": ["space-managers"]}, chat=options)
    chat.member("spaces/DEMO-CUSTOMER", "users/111", "ROLE_MANAGER")
    chat.member("spaces/DEMO-CUSTOMER", "users/222", "ROLE_MEMBER")
    card, _ = dialog_of(app.send(make({"action": "settings"}, "REQUEST_DIALOG", user=ADA)))
    assert "fixedFooter" in card and "secondaryButton" in card["fixedFooter"]
    body = make({"action": "settings-save", "team": "customer", "version": "0"}, form=form(timezone="UTC"), user=ADA)
    assert dialog_of(app.send(body)) == (None, "Saved: time zone.")
    read_only, _ = dialog_of(app.send(make({"action": "settings"}, "REQUEST_DIALOG", user=BOB)))
    assert "Only the Space's managers can change these settings." in text_of(read_only)
    assert chat.member_requests == [("spaces/DEMO-CUSTOMER", "111"), ("spaces/DEMO-CUSTOMER", "222")]
