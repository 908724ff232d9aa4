"""The demo's generated history: 60 days, the same every run, with gaps, posts and one failed post."""

from datetime import UTC, datetime, timedelta

from bot.__main__ import main
from bot.demo import DEMO_DAYS, seed_history
from bot.store import FAILED, Store
from tests.pages import pages_config

NOW = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)


def generated(tmp_path, name, config, **options):
    store = Store(f"sqlite:///{tmp_path / name}")
    seed_history(store, config, NOW, **options)
    return store


def history(store, config):
    return {
        team.id: store.daily_series(team.id, config.zone(team), DEMO_DAYS, NOW)[team.kpis[0].id]
        for team in config.teams
    }


def test_the_history_is_the_same_on_every_run_with_gaps_and_posts(tmp_path):
    config = pages_config(tmp_path)
    first, second = (
        history(generated(tmp_path, "a.db", config), config),
        history(generated(tmp_path, "b.db", config), config),
    )
    assert first == second
    for team_id, days in first.items():
        assert len(days) == DEMO_DAYS
        read = [reading for _, reading in days if reading is not None]
        assert DEMO_DAYS * 0.75 < len(read) < DEMO_DAYS, team_id  # most days, not all
        assert all(reading.taken_at <= NOW for reading in read)
        assert len({reading.index for reading in read}) > 5, team_id  # a trend, not a flat line
    store = generated(tmp_path, "c.db", config)
    customer = store.slot_runs("customer", limit=100)
    assert [run.state for run in customer if run.slot.date() == (NOW - timedelta(days=3)).date()] == [FAILED]
    assert 10 <= len(customer) <= 14  # one post a day for the last two weeks


def test_the_history_ends_on_todays_counts(tmp_path):
    config = pages_config(tmp_path)
    counts = {"Critical": 2, "High": 7, "Medium": 4, "Low": 0}
    store = generated(tmp_path, "a.db", config, today={("customer", "open-issues"): counts})
    latest = store.latest_readings("customer")["open-issues"]  # today 09:00 New York, before NOW (15:00 there)
    assert (latest.counts, latest.index) == (counts, 2 * 10 + 7 * 5 + 4 * 2)
    assert latest.taken_at == datetime(2026, 11, 26, 14, 0, tzinfo=UTC)


def test_demo_runs_on_the_bundled_config_only(tmp_path, capsys):
    config = pages_config(tmp_path)
    assert main(["--config", str(config.path), "demo", "--port", "1"]) == 2
    assert "demo runs on the bundled demo.yaml only" in capsys.readouterr().err
