"""The ``alerts`` settings: top-level defaults, a block per team, and a clear message for each mistake."""

import copy
from datetime import time, timedelta

import pytest

from bot.alert_settings import AlertSettings, QuietHours, format_duration, parse_duration
from bot.config import load_config
from bot.errors import ConfigError
from tests.test_config import VALID, write


def config_text(top: str = "", team: str = "") -> str:
    """The valid test config with YAML ``alerts`` blocks written as a user would (a bare ``on:`` key)."""
    import yaml

    data = copy.deepcopy(VALID)
    text = yaml.safe_dump(data)
    if team:
        text = text.replace("  name: Team A\n", "  name: Team A\n  alerts:\n" + _indent(team, 4), 1)
    if top:
        text += "alerts:\n" + _indent(top, 2)
    return text


def _indent(block: str, spaces: int) -> str:
    return "".join(" " * spaces + line + "\n" for line in block.strip().splitlines())


def load(tmp_path, top: str = "", team: str = ""):
    return load_config(write(tmp_path, config_text(top, team)))


def test_no_block_no_alerts_and_top_level_defaults_alert_nothing_by_themselves(tmp_path):
    assert load(tmp_path).teams[0].alerts is None
    assert load(tmp_path, top="pending: 3").teams[0].alerts is None


def test_an_empty_block_takes_every_default(tmp_path):
    config = load_config(write(tmp_path, config_text().replace("  name: Team A\n", "  name: Team A\n  alerts: {}\n")))
    assert config.teams[0].alerts == AlertSettings()
    defaults = AlertSettings()
    assert defaults.check_every == timedelta(minutes=15) and defaults.on == ["bad"] and defaults.pending == 2
    assert defaults.recover_at == "target" and defaults.repeat == timedelta(days=1)
    assert defaults.quiet_hours is None and defaults.new_items == [] and defaults.no_data_after == 3


def test_the_issue_sketch_loads_with_a_bare_on_key(tmp_path):
    team = """
check_every: 15m
on: [warning, bad]
pending: 2
recover_at: target
repeat: 1d
quiet_hours: "20:00-08:00"
new_items: [High]
no_data_after: 3
"""
    alerts = load(tmp_path, team=team).teams[0].alerts
    assert alerts is not None and alerts.on == ["warning", "bad"]
    assert alerts.quiet_hours == QuietHours(time(20), time(8)) and alerts.new_items == ["High"]


def test_a_team_block_is_laid_over_the_top_level_defaults_key_by_key(tmp_path):
    alerts = load(tmp_path, top="check_every: 5m\npending: 4\nquiet_hours: 22:00-07:00", team="pending: 1").teams[0]
    assert alerts.alerts is not None
    assert alerts.alerts.check_every == timedelta(minutes=5) and alerts.alerts.pending == 1
    assert alerts.alerts.quiet_hours == QuietHours(time(22), time(7))


def test_quiet_hours_off_in_a_team_overrides_the_default(tmp_path):
    alerts = load(tmp_path, top="quiet_hours: 22:00-07:00", team="quiet_hours: off").teams[0].alerts
    assert alerts is not None and alerts.quiet_hours is None


@pytest.mark.parametrize(
    ("top", "team", "message"),
    [
        ("", "check_every: 5 minutes", "teams[0].alerts.check_every: '5 minutes' is not a duration: write a number"),
        ("check_every: 30s", "", "alerts.check_every: must be from 1m to 1d (got 30s)"),
        ("", "on: [bad, bad]", "teams[0].alerts.on: a status is named twice"),
        ("", "on: [good]", "teams[0].alerts.on[0]: Input should be 'warning' or 'bad'"),
        ("", "on: []", "teams[0].alerts.on: List should have at least 1 item"),
        ("", "pending: 0", "teams[0].alerts.pending: Input should be greater than or equal to 1"),
        ("", "recover_at: normal", "teams[0].alerts.recover_at: 'normal': write target, warning or an index value"),
        ("", "recover_at: 25", "teams[0].alerts.recover_at: 25 is past the line KPI 'open' alerts at (20)"),
        ("", "on: [warning]\nrecover_at: warning", "teams[0].alerts: recover_at: warning cannot end an alert on"),
        ("", "repeat: 5m", "teams[0].alerts: repeat (5m) is shorter than check_every (15m)"),
        ("check_every: 1h", "repeat: 30m", "teams[0].alerts: repeat (30m) is shorter than check_every (1h)"),
        ("", "quiet_hours: 8pm-8am", "teams[0].alerts.quiet_hours: '8pm-8am' is not a time window: write it as HH:MM"),
        ("", "quiet_hours: 08:00-08:00", "starts and ends at the same time"),
        ("", "new_items: [Critcal]", "teams[0].alerts.new_items: 'Critcal' is not a weighted category of the team's"),
        ("", "no_data_after: 0", "teams[0].alerts.no_data_after: Input should be greater than or equal to 1"),
        ("", "pendng: 3", "teams[0].alerts.pendng: unknown key"),
    ],
)
def test_each_mistake_names_the_key_and_what_to_write(tmp_path, top, team, message):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, top=top, team=team)
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(tmp_path / "scorebot.yaml"))


def test_recover_at_a_number_at_the_line_is_accepted(tmp_path):
    alerts = load(tmp_path, team="recover_at: 20").teams[0].alerts
    assert alerts is not None and alerts.recover_at == 20


def test_durations_read_and_write_the_same_way():
    for text in ("90s", "15m", "2h", "1d", "0"):
        assert format_duration(parse_duration(text)) == text
    assert parse_duration(0) == timedelta(0)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("1w")
