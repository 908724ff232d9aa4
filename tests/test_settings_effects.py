"""A saved change is followed everywhere without a restart: the scheduler of another process, alerts, /score's
team; a snooze holds scheduled posts (slots recorded snoozed, not missed) and the first post after it says what
moved; `python -m bot settings TEAM` lists and resets overrides."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from bot.__main__ import main
from bot.config import load_config
from bot.overview import overview
from bot.schedule.tick import Scheduler
from bot.services import build_services
from bot.store import SNOOZED
from bot.team_settings import save_settings
from tests.fakes.chat import FakeChat, write_config
from tests.test_tick import Clock

REPO = Path(__file__).resolve().parent.parent
ANA = "ana@example.com"


@pytest.fixture
def fake():
    chat = FakeChat()
    yield chat
    chat.close()


def at(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def team_config(tmp_path, fake, *, schedule="0 11 * * *", editable=("schedule", "snooze", "kpis", "alerts")):
    """Team ``alpha`` posting to the log target on ``schedule`` (UTC), alerting, with settings it may change."""
    path = write_config(
        tmp_path,
        fake,
        {"alpha": [{"type": "log"}]},
        schedule=schedule,
        team_options={"alpha": {"alerts": {}}},
        grace_minutes=10,
    )
    data = yaml.safe_load(path.read_text())
    data["settings"] = {"editable": list(editable), "editors": [ANA]}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path)


def scheduler_for(config, url, now):
    clock = Clock(now)
    return Scheduler(build_services(config, clock=clock, store_url=url)), clock


def tick(scheduler, clock, when):
    clock.now = when
    result = scheduler.tick(when)
    return sorted((o.team_id, f"{o.slot:%m-%d %H:%M}", o.state) for o in result.outcomes)


def test_a_schedule_changed_at_0958_in_one_process_moves_the_1000_post_of_another(tmp_path, fake):
    config = team_config(tmp_path, fake)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    scheduler, clock = scheduler_for(config, url, at("2026-12-07T09:50:00"))
    assert tick(scheduler, clock, at("2026-12-07T09:50:00")) == []  # the file says 11:00

    # Another process saves the team's schedule at 09:58, as the dialog would.
    script = (
        "import sys; from datetime import datetime; from bot.config import load_config; from bot.store import Store;"
        " from bot.team_settings import save_settings;"
        " config = load_config(sys.argv[1]); store = Store(sys.argv[2]);"
        " r = save_settings(store, config, 'alpha', {'schedule': 'daily'}, version=0, who='ana@example.com',"
        " at=datetime.fromisoformat('2026-12-07T09:58:00+00:00')); print(r.saved); store.engine.dispose()"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    saved = subprocess.run(
        [sys.executable, "-c", script, str(config.path), url], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert saved.stdout == "True\n", saved.stderr

    assert tick(scheduler, clock, at("2026-12-07T10:00:20")) == [("alpha", "12-07 10:00", "delivered")]
    assert len(scheduler.services.store.outbox("alpha")) == 1
    assert tick(scheduler, clock, at("2026-12-07T11:00:20")) == []  # the file's 11:00 no longer posts
    scheduler.services.store.engine.dispose()


def test_a_snoozed_team_gets_no_post_its_slots_are_snoozed_and_the_first_post_after_says_what_moved(tmp_path, fake):
    config = team_config(tmp_path, fake)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    start = at("2026-12-07T11:00:20")
    scheduler, clock = scheduler_for(config, url, start)
    store = scheduler.services.store
    assert tick(scheduler, clock, start) == [("alpha", "12-07 11:00", "delivered")]
    snooze = {"snooze": {"until": "2026-12-10", "alerts": True}}
    assert save_settings(store, config, "alpha", snooze, version=0, who=ANA, at=at("2026-12-07T12:00:00")).saved
    scheduler.services.settings.team("alpha", fresh=True)  # as a tick reads them
    assert scheduler.alerts.teams(at("2026-12-08T09:00:00")) == []  # alerts pause too

    assert tick(scheduler, clock, at("2026-12-08T11:00:20")) == [("alpha", "12-08 11:00", SNOOZED)]
    (tmp_path / "alpha.csv").write_text("status,priority\n" + "Open,High\n" * 5)  # the numbers move meanwhile
    # A day without ticks: the slot is still recorded snoozed, not missed.
    assert tick(scheduler, clock, at("2026-12-09T13:00:00")) == [("alpha", "12-09 11:00", SNOOZED)]
    assert tick(scheduler, clock, at("2026-12-09T14:00:00")) == []
    assert len(store.outbox("alpha")) == 1

    assert tick(scheduler, clock, at("2026-12-10T11:00:20")) == [("alpha", "12-10 11:00", "delivered")]
    assert [r.state for r in store.slot_runs("alpha")] == ["delivered", SNOOZED, SNOOZED, "delivered"]
    text = store.outbox("alpha")[0].message["text"]
    assert text.startswith("Back from a snooze: 2 posts skipped since Tue 08 Dec 11:00: Open issues 11 → 25.\n")
    assert [t.id for t in scheduler.alerts.teams(at("2026-12-10T11:00:00"))] == ["alpha"]

    assert tick(scheduler, clock, at("2026-12-11T11:00:20")) == [("alpha", "12-11 11:00", "delivered")]
    assert not store.outbox("alpha")[0].message["text"].startswith("Back")
    store.engine.dispose()


def test_a_snooze_ended_early_still_says_what_moved_at_the_next_post(tmp_path, fake):
    config = team_config(tmp_path, fake)
    scheduler, clock = scheduler_for(config, f"sqlite:///{tmp_path / 'store.db'}", at("2026-12-07T11:00:20"))
    store = scheduler.services.store
    tick(scheduler, clock, at("2026-12-07T11:00:20"))
    save_settings(store, config, "alpha", {"snooze": {"until": "week"}}, version=0, who=ANA, at=at("2026-12-07T12:00"))
    assert tick(scheduler, clock, at("2026-12-08T11:00:20")) == [("alpha", "12-08 11:00", SNOOZED)]
    assert save_settings(store, config, "alpha", {"snooze": None}, version=1, who=ANA, at=at("2026-12-08T12:00")).saved

    assert tick(scheduler, clock, at("2026-12-09T11:00:20")) == [("alpha", "12-09 11:00", "delivered")]
    text = store.outbox("alpha")[0].message["text"]
    assert text.startswith("Back from a snooze: 1 post skipped since Tue 08 Dec 11:00: Open issues 11 → 11.\n")
    store.engine.dispose()


def test_a_snooze_without_alerts_keeps_alerting(tmp_path, fake):
    config = team_config(tmp_path, fake)
    services = build_services(config, store_url=f"sqlite:///{tmp_path / 'store.db'}")
    now = datetime.now(UTC)
    save_settings(services.store, config, "alpha", {"snooze": {"until": "week"}}, version=0, who=ANA, at=now)
    scheduler = Scheduler(services)
    services.settings.team("alpha", fresh=True)  # as a tick reads them
    assert [t.id for t in scheduler.alerts.teams(now + timedelta(hours=1))] == ["alpha"]
    assert services.settings.team("alpha", fresh=True).snoozed(now + timedelta(hours=1))
    save_settings(services.store, config, "alpha", {"alerts": {"enabled": False}}, version=1, who=ANA, at=now)
    services.settings.team("alpha", fresh=True)
    assert scheduler.alerts.teams(now) == []  # alerts turned off from the dialog
    services.store.engine.dispose()


def test_score_follows_a_saved_change_within_the_cache_seconds(tmp_path, fake):
    config = team_config(tmp_path, fake, editable=("kpis",))
    services = build_services(config, store_url=f"sqlite:///{tmp_path / 'store.db'}")
    services.settings.cache_seconds = 0.0  # the next request reads the store again
    assert services.team("alpha").kpis[0].id == "open"
    data = yaml.safe_load(config.path.read_text())
    second = {**data["teams"][0]["kpis"][0], "id": "high", "name": "High only"}
    data["teams"][0]["kpis"].append(second)
    config.path.write_text(yaml.safe_dump(data, sort_keys=False))
    config = load_config(config.path)
    services = build_services(config, store_url=f"sqlite:///{tmp_path / 'store.db'}")
    services.settings.cache_seconds = 0.0
    assert [k.id for k in services.team("alpha").kpis] == ["open", "high"]
    save_settings(services.store, config, "alpha", {"kpis": ["high"]}, version=0, who=ANA, at=datetime.now(UTC))
    assert [k.id for k in services.team("alpha").kpis] == ["high"]
    assert [k.kpi.id for k in services.report(services.team("alpha"), "score", record=False).kpis] == ["high"]
    [glance] = overview(config, services.store, datetime.now(UTC), [t.team for t in services.settings.teams()])
    assert [k.kpi.id for k in glance.kpis] == ["high"]  # /score all shows the same KPIs
    services.store.engine.dispose()


def test_the_settings_command_lists_overrides_and_history_and_resets_them(tmp_path, fake, monkeypatch, capsys):
    config = team_config(tmp_path, fake)
    monkeypatch.setenv("SCOREBOT_CONFIG", str(config.path))
    monkeypatch.setenv("SCOREBOT_STORE", f"sqlite:///{tmp_path / 'store.db'}")
    assert main(["settings", "alpha"]) == 0
    assert capsys.readouterr().out == (
        "team alpha: editable here: schedule, snooze, kpis, alerts\n"
        "overrides: none (the configuration file's settings apply)\n"
        "history: none\n"
    )
    services = build_services(config)
    when = at("2026-12-07T09:58:00")
    save_settings(services.store, config, "alpha", {"schedule": "weekdays"}, version=0, who=ANA, at=when)
    services.store.engine.dispose()

    assert main(["settings", "alpha"]) == 0
    assert capsys.readouterr().out == (
        "team alpha: editable here: schedule, snooze, kpis, alerts\n"
        "overrides (version 1, last changed 2026-12-07 09:58 UTC by ana@example.com):\n"
        "  schedule: 0 10 * * 1-5  (file: 0 11 * * *)\n"
        "history (newest first):\n"
        "  2026-12-07 09:58 UTC  ana@example.com  schedule: (file) → 0 10 * * 1-5  saved\n"
    )
    assert main(["settings", "alpha", "--reset", "schedule"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("reset: schedule\nteam alpha: editable here: schedule, snooze, kpis, alerts\n")
    assert "overrides: none" in out
    assert "python -m bot settings  schedule: 0 10 * * 1-5 → (file)  reset\n" in out
    assert main(["settings", "alpha", "--reset"]) == 0
    assert capsys.readouterr().out.startswith("reset: nothing to clear\n")
    assert main(["settings", "nope"]) == 2
    assert "no team 'nope'; teams: alpha" in capsys.readouterr().err


def test_the_schedule_command_shows_the_saved_schedule_and_starts_after_a_snooze(tmp_path, fake, monkeypatch, capsys):
    config = team_config(tmp_path, fake)
    monkeypatch.setenv("SCOREBOT_CONFIG", str(config.path))
    monkeypatch.setenv("SCOREBOT_STORE", f"sqlite:///{tmp_path / 'store.db'}")
    services = build_services(config)
    now = datetime.now(UTC)
    changes = {"schedule": "0 10 * * *", "snooze": {"until": (now + timedelta(days=3)).date().isoformat()}}
    save_settings(services.store, config, "alpha", changes, version=0, who=ANA, at=now)
    services.store.engine.dispose()

    assert main(["schedule", "--count", "1"]) == 0
    resume = (now + timedelta(days=3)).date()
    assert capsys.readouterr().out == (
        "alpha: '0 10 * * *' in UTC → log\n"
        f"  snoozed until {resume:%Y-%m-%d} 00:00 UTC\n"
        f"  {resume:%Y-%m-%d} 10:00 UTC  ({resume:%Y-%m-%d} 10:00 UTC)\n"
    )


def test_a_dry_run_tick_says_a_snoozed_teams_slot_would_be_recorded_snoozed(tmp_path, fake, monkeypatch, capsys):
    config = team_config(tmp_path, fake)
    monkeypatch.setenv("SCOREBOT_CONFIG", str(config.path))
    monkeypatch.setenv("SCOREBOT_STORE", f"sqlite:///{tmp_path / 'store.db'}")
    services = build_services(config)
    save_settings(
        services.store, config, "alpha", {"snooze": {"until": "week"}}, version=0, who=ANA, at=at("2026-12-07T12:00")
    )
    services.store.engine.dispose()

    assert main(["tick", "--now", "2026-12-08T11:00:20Z", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "alpha: nothing due (first tick for this team)\n" in out
    assert "alpha: would record 1 slots snoozed (2026-12-08T11:00:00+00:00)\n" in out


def test_check_counts_the_calls_of_the_schedules_and_alerts_teams_chose(tmp_path, fake, monkeypatch, capsys):
    config = team_config(tmp_path, fake)
    monkeypatch.setenv("SCOREBOT_CONFIG", str(config.path))
    monkeypatch.setenv("SCOREBOT_STORE", f"sqlite:///{tmp_path / 'store.db'}")
    assert main(["check"]) == 0
    assert "(average 96)" in capsys.readouterr().out  # the file: a post a day and a check every 15 minutes
    services = build_services(config)
    changes = {"schedule": "*/30 * * * *", "alerts": {"enabled": False}}
    save_settings(services.store, config, "alpha", changes, version=0, who=ANA, at=datetime.now(UTC))
    services.store.engine.dispose()

    assert main(["check"]) == 0
    assert "(average 48)" in capsys.readouterr().out  # two posts an hour, no alert checks
