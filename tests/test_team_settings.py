"""What a team may change for itself: the ``settings`` block, each field's checks (the configuration's own
messages), the schedule presets and next posts, and the effective team the YAML and the overrides make."""

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.config import load_config
from bot.errors import ConfigError
from bot.settings_view import SettingsView, warn_ignored
from bot.store import Overrides, Store
from bot.team_settings import (
    PRESETS,
    SettingsError,
    SettingsErrors,
    check_changes,
    check_value,
    effective_team,
    link_refusal,
    next_posts,
    preset_of,
    save_settings,
)
from tests.test_config import write

NOW = datetime(2026, 12, 7, 9, 58, tzinfo=UTC)
ALL = ["schedule", "timezone", "live", "alerts", "snooze", "kpis"]


def config_data(editable=ALL, editors=("ana@example.com",), link="editors"):
    """Two teams: ``ops`` posts through the Chat API (a live card may be set) and alerts; ``docs`` posts to
    the log only."""
    kpi = {"source": "crm", "category": "priority", "target": 10, "warning": 20}
    return {
        "chat": {"audience": "1234567890"},
        "sources": {"crm": {"type": "file", "path": "issues.csv"}},
        "settings": {"editable": list(editable), "editors": list(editors), "link": link},
        "teams": [
            {
                "id": "ops",
                "name": "Ops",
                "spaces": ["spaces/OPS"],
                "schedule": "0 9 * * 1-5",
                "timezone": "Europe/Berlin",
                "deliver": [{"type": "chat_api", "space": "spaces/OPS"}],
                "alerts": {"on": ["bad"], "new_items": ["High"]},
                "kpis": [
                    {**kpi, "id": "open", "name": "Open", "weights": {"High": 10, "Low": 1}},
                    {**kpi, "id": "bugs", "name": "Bugs", "weights": {"Urgent": 5}},
                ],
            },
            {
                "id": "docs",
                "name": "Docs",
                "deliver": [{"type": "log"}],
                "kpis": [{**kpi, "id": "open", "name": "Open", "weights": {"High": 1}}],
            },
        ],
    }


def load(tmp_path, **kwargs):
    return load_config(write(tmp_path, config_data(**kwargs)))


def test_without_a_settings_block_nothing_is_editable_by_anyone(tmp_path):
    data = config_data()
    del data["settings"]
    config = load_config(write(tmp_path, data))
    assert (config.settings.editable, config.settings.editors, config.settings.link) == ([], [], "off")
    ops = config.team("ops")
    with pytest.raises(SettingsError, match=r"^schedule: the configuration does not let teams change this"):
        check_value(config, ops, "schedule", "daily", NOW)


def test_the_settings_block_reads_editors_and_a_bare_off(tmp_path):
    text = yaml.safe_dump(config_data(editors=["Ana@Example.com", "*@example.org", "space-managers"]))
    config = load_config(write(tmp_path, text.replace("link: editors", "link: off")))
    assert config.settings.editors == ["ana@example.com", "*@example.org", "space-managers"]
    assert config.settings.link == "off"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"editable": ["schedule", "colour"]}, "settings.editable[1]: Input should be 'schedule', 'timezone',"),
        ({"editable": ["kpis", "kpis"]}, "settings.editable: duplicate editable field 'kpis'"),
        ({"editors": ["ana"]}, "settings.editors: 'ana' is not an editor: write an email (ana@example.com), *@domain"),
        ({"editors": ["*@*"]}, "'*@*' is not an editor"),
        ({"editors": ["a@x.org", "A@x.org"]}, "settings.editors: duplicate editor 'a@x.org'"),
        ({"link": "everyone"}, "settings.link: Input should be 'editors' or 'off'"),
        ({"who": ["a@x.org"]}, "settings.who: unknown key"),
    ],
)
def test_a_wrong_settings_block_is_one_message_naming_the_key(tmp_path, changes, message):
    data = config_data()
    data["settings"].update(changes)
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, data))
    assert message in str(refused.value)


def test_schedule_presets_and_custom_cron_with_the_configurations_messages(tmp_path):
    config = load(tmp_path)
    ops = config.team("ops")
    assert check_value(config, ops, "schedule", "weekdays", NOW) == "0 10 * * 1-5"
    assert check_value(config, ops, "schedule", "monday-thursday", NOW) == "0 10 * * 1,4"
    assert check_value(config, ops, "schedule", " 30 8 * * * ", NOW) == "30 8 * * *"
    assert preset_of("0 10 * * *") == "daily" and preset_of("30 8 * * *") is None
    with pytest.raises(SettingsError) as wrong:
        check_value(config, ops, "schedule", "0 25 * * *", NOW)
    assert (wrong.value.field, wrong.value.message) == (
        "schedule",
        "cron expression '0 25 * * *': '25' is not a valid hour (0-23)",
    )
    # The same words as the configuration's.
    data = config_data()
    data["teams"][0]["schedule"] = "0 25 * * *"
    with pytest.raises(ConfigError, match=r"teams\[0\].schedule: cron expression '0 25 \* \* \*': '25' is not a"):
        load_config(write(tmp_path, data))
    with pytest.raises(SettingsError, match="never fires"):
        check_value(config, ops, "schedule", "0 10 31 2 *", NOW)
    with pytest.raises(SettingsError, match="no deliver targets"):
        check_value(config, config.team("ops").model_copy(update={"deliver": []}), "schedule", "daily", NOW)


def test_next_posts_are_in_the_teams_zone():
    posts = next_posts(PRESETS["monday-thursday"], "America/New_York", NOW)
    assert [p.isoformat() for p in posts] == [
        "2026-12-07T10:00:00-05:00",
        "2026-12-10T10:00:00-05:00",
        "2026-12-14T10:00:00-05:00",
    ]
    assert next_posts("0 10 * * *", ZoneInfo("Europe/Berlin"), NOW, count=1)[0].isoformat() == (
        "2026-12-08T10:00:00+01:00"
    )


def test_zone_live_and_kpis_are_checked(tmp_path):
    config = load(tmp_path)
    ops, docs = config.team("ops"), config.team("docs")
    assert check_value(config, ops, "timezone", "Asia/Tokyo", NOW) == "Asia/Tokyo"
    with pytest.raises(SettingsError, match=r"^timezone: unknown IANA time zone 'Mars/Olympus'$"):
        check_value(config, ops, "timezone", "Mars/Olympus", NOW)
    assert check_value(config, ops, "live", "week", NOW) == "week"
    with pytest.raises(SettingsError, match="write off, day or week"):
        check_value(config, ops, "live", "month", NOW)
    with pytest.raises(SettingsError, match="a live card needs a Chat API target"):
        check_value(config, docs, "live", "day", NOW)
    assert check_value(config, ops, "kpis", ["bugs", "open"], NOW) == ["open", "bugs"]  # the YAML's order
    with pytest.raises(SettingsError, match=r"'nope' is not a KPI of the team \(KPIs: open, bugs\)"):
        check_value(config, ops, "kpis", ["nope"], NOW)
    with pytest.raises(SettingsError, match="show at least one KPI"):
        check_value(config, ops, "kpis", [], NOW)
    with pytest.raises(SettingsError, match=r"^colour: not a setting"):
        check_value(config, ops, "colour", "red", NOW)


def test_alerts_on_off_statuses_and_categories(tmp_path):
    config = load(tmp_path)
    ops, docs = config.team("ops"), config.team("docs")
    value = check_value(config, ops, "alerts", {"enabled": True, "on": ["warning", "bad"], "new_items": []}, NOW)
    assert value == {"enabled": True, "on": ["warning", "bad"], "new_items": []}
    assert check_value(config, docs, "alerts", {"enabled": True}, NOW) == {
        "enabled": True,
        "on": ["bad"],
        "new_items": [],
    }
    with pytest.raises(SettingsError, match=r"'Lowest' is not a weighted category of the team's KPIs \(weighted:"):
        check_value(config, ops, "alerts", {"enabled": True, "new_items": ["Lowest"]}, NOW)
    with pytest.raises(SettingsError, match=r"a status is named twice in \['bad', 'bad'\]"):
        check_value(config, ops, "alerts", {"enabled": True, "on": ["bad", "bad"]}, NOW)
    with pytest.raises(SettingsError, match="Input should be 'warning' or 'bad'"):
        check_value(config, ops, "alerts", {"enabled": True, "on": ["awful"]}, NOW)
    with pytest.raises(SettingsError, match=r"write \{enabled"):
        check_value(config, ops, "alerts", "on", NOW)
    off = check_value(config, ops, "alerts", {"enabled": False}, NOW)
    assert effective_team(config, ops, Overrides({"alerts": off}, 1)).team.alerts is None


def test_snooze_a_day_a_week_or_until_a_date_at_most_90_days_ahead(tmp_path):
    config = load(tmp_path)
    ops = config.team("ops")
    day = check_value(config, ops, "snooze", {"until": "day", "alerts": True}, NOW)
    assert day == {"from": NOW.isoformat(), "until": (NOW + timedelta(days=1)).isoformat(), "alerts": True}
    week = check_value(config, ops, "snooze", {"until": "week"}, NOW)
    assert week["until"] == (NOW + timedelta(days=7)).isoformat() and week["alerts"] is False
    dated = check_value(config, ops, "snooze", {"until": "2027-01-04"}, NOW)
    assert dated["until"] == "2027-01-03T23:00:00+00:00"  # the date's start in Berlin
    with pytest.raises(SettingsError, match=r"^snooze: at most 90 days: until 2027-03-07 at the latest$"):
        check_value(config, ops, "snooze", {"until": "2027-03-08"}, NOW)
    with pytest.raises(SettingsError, match="2026-12-07 is not in the future"):
        check_value(config, ops, "snooze", {"until": "2026-12-07"}, NOW)
    with pytest.raises(SettingsError, match="snooze for a day, a week, or until a date"):
        check_value(config, ops, "snooze", {"until": "fortnight"}, NOW)
    ended = check_value(config, ops, "snooze", None, NOW)  # back to posting: a snooze that ended now
    assert ended == {"from": NOW.isoformat(), "until": NOW.isoformat(), "alerts": False}
    assert not effective_team(config, ops, Overrides({"snooze": ended}, 2)).snoozed(NOW)

    snoozed = effective_team(config, ops, Overrides({"snooze": day}, 1))
    assert snoozed.snoozed(NOW) and snoozed.alerts_paused(NOW)
    assert not snoozed.snoozed(NOW + timedelta(days=1)) and not snoozed.snoozed(NOW - timedelta(seconds=1))
    weekly = effective_team(config, ops, Overrides({"snooze": week}, 1))
    assert weekly.snoozed(NOW) and not weekly.alerts_paused(NOW)


def test_a_snooze_date_is_in_the_zone_changed_with_it(tmp_path):
    config = load(tmp_path)
    current = effective_team(config, config.team("ops"), Overrides())
    values, errors = check_changes(
        config, current, {"snooze": {"until": "2027-01-04"}, "timezone": "America/New_York"}, NOW
    )
    assert errors == []
    assert values["snooze"]["until"] == "2027-01-04T05:00:00+00:00"


def test_the_effective_team_is_the_yaml_with_its_overrides(tmp_path):
    config = load(tmp_path)
    ops = config.team("ops")
    overrides = Overrides(
        {
            "schedule": "0 10 * * *",
            "timezone": "Asia/Tokyo",
            "live": "day",
            "kpis": ["bugs"],
            "alerts": {"enabled": True, "on": ["warning", "bad"], "new_items": ["Urgent"]},
        },
        3,
    )
    effective = effective_team(config, ops, overrides)
    team = effective.team
    assert (team.schedule, team.timezone, [k.id for k in team.kpis]) == ("0 10 * * *", "Asia/Tokyo", ["bugs"])
    assert team.deliver[0].live == "day" and team.live_target("spaces/OPS") is not None
    assert team.alerts is not None and team.alerts.on == ["warning", "bad"] and team.alerts.new_items == ["Urgent"]
    assert effective.yaml == ops and effective.ignored == () and effective.snooze is None
    assert config.zone(team) == ZoneInfo("Asia/Tokyo")
    assert effective_team(config, ops, Overrides()).team == ops


def test_an_override_the_yaml_no_longer_allows_is_ignored_with_one_warning_at_start(tmp_path, caplog):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    config = load(tmp_path)
    store.save_overrides("ops", {"schedule": "0 10 * * *", "kpis": ["open"]}, version=0, who="a@x.org", at=NOW)
    store.save_overrides("docs", {"timezone": "Asia/Tokyo"}, version=0, who="a@x.org", at=NOW)
    narrower = load(tmp_path, editable=["timezone", "kpis"])
    data = config_data(editable=["timezone", "kpis"])
    data["teams"][0]["kpis"] = data["teams"][0]["kpis"][1:]  # the KPI the team chose is gone
    data["teams"][0]["alerts"]["new_items"] = []
    gone = load_config(write(tmp_path, data))

    effective = effective_team(narrower, narrower.team("ops"), store.team_overrides("ops"))
    assert effective.team.schedule == "0 9 * * 1-5" and [k.id for k in effective.team.kpis] == ["open"]
    assert [name for name, _ in effective.ignored] == ["schedule"]
    assert [name for name, _ in effective_team(gone, gone.team("ops"), store.team_overrides("ops")).ignored] == [
        "schedule",
        "kpis",
    ]
    with caplog.at_level(logging.WARNING):
        lines = warn_ignored(SettingsView(gone, store))
    assert lines == [
        "team ops: its schedule override is ignored: the configuration no longer lets teams change it "
        "(settings.editable)",
        "team ops: its kpis override is ignored: none of its KPIs is left",
    ]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == lines
    assert warn_ignored(SettingsView(config, store)) == []
    store.engine.dispose()


def test_save_settings_stores_nothing_when_a_field_is_refused(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    config = load(tmp_path)
    with pytest.raises(SettingsErrors) as refused:
        save_settings(
            store,
            config,
            "ops",
            {"timezone": "Nowhere", "live": "month", "schedule": "daily"},
            version=0,
            who="ana@example.com",
            at=NOW,
        )
    assert [e.field for e in refused.value.errors] == ["timezone", "live"]
    assert store.team_overrides("ops").version == 0 and store.settings_history("ops") == []

    # Choosing KPIs that leave out a category alerts watch is refused, not silently dropped later.
    with pytest.raises(SettingsErrors) as orphaned:
        save_settings(store, config, "ops", {"kpis": ["bugs"]}, version=0, who="ana@example.com", at=NOW)
    assert orphaned.value.errors[0].field == "kpis"
    assert orphaned.value.errors[0].message == (
        "alerts watch what the KPIs left out count: 'High' is not a weighted category "
        "of the team's KPIs (weighted: Urgent)"
    )

    saved = save_settings(store, config, "ops", {"schedule": "daily"}, version=0, who="ana@example.com", at=NOW)
    assert saved.saved and saved.overrides.values == {"schedule": "0 10 * * *"} and saved.overrides.version == 1
    store.engine.dispose()


def test_the_view_follows_the_store_within_its_cache_seconds(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    config = load(tmp_path)
    writer, reader = Store(url), Store(url)  # two processes' stores on one file
    seconds = [0.0]
    view = SettingsView(config, reader, cache_seconds=5, clock=lambda: seconds[0])
    assert view.team("ops").team.schedule == "0 9 * * 1-5"
    writer.save_overrides("ops", {"schedule": "0 10 * * *"}, version=0, who="a@x.org", at=NOW)
    seconds[0] = 4.9
    assert view.team("ops").team.schedule == "0 9 * * 1-5"  # within the cache's seconds
    assert view.team("ops", fresh=True).team.schedule == "0 10 * * *"
    writer.save_overrides("ops", {"schedule": "0 11 * * *"}, version=1, who="a@x.org", at=NOW)
    seconds[0] = 10.0
    assert [t.team.schedule for t in view.teams()] == ["0 11 * * *", None]
    writer.save_overrides("ops", {"schedule": "0 12 * * *"}, version=2, who="a@x.org", at=NOW)
    view.forget()  # this process saved: no need to wait out the seconds
    assert view.team("ops").team.schedule == "0 12 * * *"
    assert view.team("nope") is None
    writer.engine.dispose()
    reader.engine.dispose()


def test_a_linked_space_finds_its_team_and_the_yamls_spaces_win(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    config = load(tmp_path)
    store = Store(url)
    view = SettingsView(config, store, cache_seconds=0)
    assert view.team_for_space("spaces/NEW") is None
    assert link_refusal(config, "spaces/NEW", "docs") is None
    store.link_space("spaces/NEW", "docs", who="ana@example.com", at=NOW)
    assert view.team_for_space("spaces/NEW").team.id == "docs"
    assert link_refusal(config, "spaces/OPS", "docs") == (
        "This Space is given to team 'ops' in the configuration; ask whoever runs Scorebot."
    )
    assert link_refusal(config, "spaces/NEW", "nope") == "There is no team called 'nope'."
    store.link_space("spaces/OPS", "docs", who="ana@example.com", at=NOW)  # written, but the YAML wins
    assert view.team_for_space("spaces/OPS").team.id == "ops"
    store.engine.dispose()
