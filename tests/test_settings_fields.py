"""The settings dialog's fields one by one (snooze, alerts, a large team within Chat's limits), its text
rendering, and `python -m bot preview TEAM --settings`."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from bot.__main__ import main
from bot.card_text import dialog_as_text
from bot.config import DEMO_CONFIG
from tests import payloads as p
from tests.chat_schema import validate_dialog_card
from tests.test_settings_dialog import ADA, EVERYTHING, NOW, App, dialog_of, form, named, text_of

EDITORS = {"editable": EVERYTHING, "editors": ["ada@example.com"]}
SAVE = {"action": "settings-save", "team": "customer", "version": "0"}


def ms(day: datetime) -> int:
    return int(day.timestamp() * 1000)


@pytest.fixture
def app(tmp_path, token_factory):
    return App(tmp_path, token_factory, EDITORS)


@pytest.mark.parametrize("make", [p.classic_dialog_click, p.addon_dialog_click])
def test_a_snooze_until_a_date_is_saved_and_one_past_90_days_is_refused(app, make):
    far = NOW + timedelta(days=91)
    card, _ = dialog_of(app.send(make(SAVE, form=form(snooze="date", snooze_until=ms(far)), user=ADA)))
    snooze = next(s for s in card["sections"] if s.get("header") == "Snooze scheduled posts")
    assert "at most 90 days" in text_of(snooze)
    assert named(card, "snooze_until")["valueMsEpoch"] == str(ms(far))  # the date picked is kept
    assert app.overrides().version == 0
    near = datetime(2026, 12, 20, tzinfo=UTC)
    assert dialog_of(app.send(make(SAVE, form=form(snooze="date", snooze_until=ms(near)), user=ADA)))[1] == (
        "Saved: snooze scheduled posts."
    )
    stored = app.overrides().values["snooze"]
    assert stored["alerts"] is False
    assert datetime.fromisoformat(stored["until"]) == datetime(2026, 12, 20, 5, 0, tzinfo=UTC)  # midnight, New York


def test_a_date_snooze_without_a_date_is_refused_on_the_field(app):
    card, _ = dialog_of(app.send(p.classic_dialog_click(SAVE, form=form(snooze="date"), user=ADA)))
    snooze = next(s for s in card["sections"] if s.get("header") == "Snooze scheduled posts")
    assert "⚠" in text_of(snooze)
    assert app.overrides().version == 0


def test_ending_a_snooze_and_a_finished_one_is_not_offered_to_keep(app):
    app.send(p.classic_dialog_click(SAVE, form=form(snooze="day"), user=ADA))
    card, _ = dialog_of(app.send(p.classic_dialog_click({"action": "settings"}, "REQUEST_DIALOG", user=ADA)))
    assert [i["value"] for i in named(card, "snooze")["items"]] == ["keep", "none", "day", "week", "date"]
    save = SAVE | {"version": "1"}
    notice = dialog_of(app.send(p.classic_dialog_click(save, form=form(snooze="none"), user=ADA)))[1]
    assert notice == "Saved: snooze scheduled posts."
    ended = app.overrides().values.get("snooze")  # none, or one that ended now
    assert ended is None or datetime.fromisoformat(ended["until"]) <= NOW
    app.services.store.save_overrides(
        "customer",
        {"snooze": {"from": "2026-11-01T00:00:00+00:00", "until": "2026-11-02T00:00:00+00:00", "alerts": True}},
        version=2,
        who="carol@example.com",
        at=NOW,
    )
    card, _ = dialog_of(app.send(p.classic_dialog_click({"action": "settings"}, "REQUEST_DIALOG", user=ADA)))
    assert [i["value"] for i in named(card, "snooze")["items"] if i["selected"]] == ["none"]
    assert "Keep" not in text_of(named(card, "snooze"))


def test_alerts_are_turned_on_with_their_statuses_and_categories(app):
    submitted = form(alerts_enabled=["on"], alerts_on=["warning", "bad"], alerts_new_items=["Critical"])
    assert dialog_of(app.send(p.addon_dialog_click(SAVE, form=submitted, user=ADA)))[1] == "Saved: alerts."
    assert app.overrides().values["alerts"] == {"enabled": True, "on": ["warning", "bad"], "new_items": ["Critical"]}
    card, _ = dialog_of(app.send(p.addon_dialog_click({"action": "settings"}, "REQUEST_DIALOG", user=ADA)))
    assert [i["value"] for i in named(card, "alerts_enabled")["items"] if i["selected"]] == ["on"]
    assert [i["value"] for i in named(card, "alerts_new_items")["items"] if i["selected"]] == ["Critical"]


def test_alerts_without_a_status_are_refused_on_the_field(app):
    submitted = form(alerts_enabled=["on"], alerts_on=None)
    card, _ = dialog_of(app.send(p.classic_dialog_click(SAVE, form=submitted, user=ADA)))
    alerts = next(s for s in card["sections"] if s.get("header") == "Alerts")
    assert "⚠" in text_of(alerts)
    assert app.overrides().version == 0


def test_the_largest_team_the_configuration_allows_keeps_the_dialog_within_chats_limits(tmp_path, token_factory):
    weights = {f"Category number {i:02d} with a long name": i + 1 for i in range(60)}
    kpis = [
        {
            "id": f"kpi-{i:02d}",
            "name": f"A KPI with a fairly long name, number {i:02d}",
            "source": "demo",
            "count": {"where": {"team": "customer"}},
            "category": "priority",
            "weights": weights,
            "target": 10,
            "warning": 20,
        }
        for i in range(20)
    ]
    app = App(tmp_path, token_factory, EDITORS, {"customer": {"kpis": kpis}})
    card, _ = dialog_of(app.send(p.classic_dialog_click({"action": "settings"}, "REQUEST_DIALOG", user=ADA)))
    assert len(named(card, "kpis")["items"]) == 20
    assert len(named(card, "alerts_new_items")["items"]) == 60
    assert validate_dialog_card(card) == []


def test_a_dialog_as_text_shows_inputs_values_and_buttons(app):
    card, _ = dialog_of(app.send(p.classic_dialog_click({"action": "settings"}, "REQUEST_DIALOG", user=ADA)))
    text = dialog_as_text(card)
    assert "│ Time zone (IANA name): [America/New_York]" in text
    assert "│ When to post: [Custom (cron below) ▾]" in text
    assert "│   [x] Open customer issues" in text
    assert "│   (•) Off: a new message at every post" not in text  # no Chat API target: no live card choice
    assert "│ [Save]  [Cancel]" in text
    assert text.startswith("┌ Settings · Customer Issues") and text.endswith("└")


def test_preview_prints_the_settings_dialog(tmp_path, monkeypatch, capsys):
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["settings"] = EDITORS
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "demo-issues.csv").write_text((DEMO_CONFIG.parent / "demo-issues.csv").read_text())
    monkeypatch.setenv("SCOREBOT_STORE", f"sqlite:///{tmp_path / 'cli.db'}")
    assert main(["--config", str(tmp_path / "demo.yaml"), "db", "upgrade"]) == 0
    capsys.readouterr()
    config = str(tmp_path / "demo.yaml")
    assert main(["--config", config, "preview", "performance", "--settings"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("┌ Settings · Performance")
    assert "│ Time zone (IANA name): [Europe/Berlin]" in out
    assert main(["--config", config, "preview", "performance", "--settings", "--format", "json"]) == 0
    assert validate_dialog_card(json.loads(capsys.readouterr().out)) == []


def test_preview_of_settings_without_editable_fields_says_so(tmp_path, monkeypatch, capsys):
    for name in ("demo.yaml", "demo-issues.csv"):
        (tmp_path / name).write_text((DEMO_CONFIG.parent / name).read_text())
    monkeypatch.setenv("SCOREBOT_STORE", f"sqlite:///{tmp_path / 'cli.db'}")
    assert main(["--config", str(tmp_path / "demo.yaml"), "preview", "customer", "--settings"]) == 2
    assert "settings.editable is empty" in capsys.readouterr().err
