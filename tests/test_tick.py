"""The tick: first tick, grace, missed slots, sources down, per-target retries, deadline, concurrency,
unexpected errors, DST, templates, the /tasks/tick route, the background ticker and the CLI commands."""

import argparse
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from bot.config import load_config
from bot.delivery import Delivery
from bot.errors import ConfigError
from bot.schedule.cli import add_commands, parse_instant
from bot.schedule.route import create_tick_blueprint
from bot.schedule.templates import validate_templates
from bot.schedule.tick import Scheduler, start_background_ticker
from bot.services import build_services
from bot.store import metadata
from tests.fakes.chat import FakeChat, write_config
from tests.tokens import bearer

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 9, 9, 0, 30, tzinfo=UTC)
EVERY_5_FROM_0905 = "5-55/5 9 * * *"  # nothing due yet at T0
SECRET = "TOPSECRET-4c1d"


@pytest.fixture
def fake():
    chat = FakeChat()
    yield chat
    chat.close()


class Clock:
    """A clock the test moves; the Reporter stamps snapshots with it."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def setup(tmp_path, fake, teams, delivery_options=None, **options):
    """An in-process scheduler on ``teams`` (config written by `write_config`), and its clock."""
    clock = Clock(T0)
    config = load_config(write_config(tmp_path, fake, teams, **options))
    services = build_services(config, clock=clock, store_url=f"sqlite:///{tmp_path / 'store.db'}")
    delivery_settings = {"backoff_seconds": 0.01, "pace_seconds": config.schedule.pace_seconds}
    delivery = Delivery(
        config.chat, services.store, clock, base_dir=tmp_path, **(delivery_settings | (delivery_options or {}))
    )
    return Scheduler(services, delivery=delivery), clock


def tick(scheduler, clock, at):
    clock.now = at
    return scheduler.tick(at)


def at(hhmmss):
    return datetime.fromisoformat(f"2026-11-09T{hhmmss}+00:00")


def states(result, *, unexpected=()):
    """(team, HH:MM, state) per slot, sorted. A slot whose detail tells of an unexpected error fails the test
    (a bug would otherwise pass as "pending") unless its team is listed in ``unexpected``."""
    surprises = [o for o in result.outcomes if (o.detail or "").startswith("unexpected")]
    assert all(o.team_id in unexpected for o in surprises), surprises
    return sorted((o.team_id, f"{o.slot:%H:%M}", o.state) for o in result.outcomes)


def details(result):
    """{(team, HH:MM): detail} per slot."""
    return {(o.team_id, f"{o.slot:%H:%M}"): o.detail for o in result.outcomes}


def test_deployed_20_s_after_a_slot_the_slot_is_sent(tmp_path, fake, capsys):
    scheduler, clock = setup(
        tmp_path, fake, {"alpha": [{"type": "webhook", "url": fake.webhook_url("A")}]}, schedule="0 10 * * *"
    )
    clock.now = at("10:00:20")

    assert run_cli(scheduler.services, "tick", "--now", "2026-11-09T10:00:20Z") == 0  # a fresh store

    assert "alpha 2026-11-09T10:00:00+00:00 delivered" in capsys.readouterr().out
    assert len(fake.posts()) == 1
    assert scheduler.tick(at("10:00:50")).outcomes == []  # done is done


def test_a_first_tick_posts_the_latest_slot_within_the_grace_period_and_ignores_older_ones(tmp_path, fake):
    teams = {"alpha": [{"type": "webhook", "url": fake.webhook_url("A")}]}
    scheduler, clock = setup(tmp_path, fake, teams, schedule="*/5 * * * *")

    result = tick(scheduler, clock, at("09:12:30"))  # grace is 10 minutes

    assert states(result) == [("alpha", "09:05", "superseded"), ("alpha", "09:10", "delivered")]
    assert tick(scheduler, clock, at("09:13:00")).outcomes == []
    # 09:00 and earlier predate the scheduler: neither sent nor recorded missed.
    runs = {f"{r.slot:%H:%M}": r.state for r in scheduler.services.store.slot_runs("alpha")}
    assert runs == {"09:05": "superseded", "09:10": "delivered"}
    assert len(fake.posts()) == 1


def test_slots_older_than_the_grace_period_are_recorded_missed_not_sent(tmp_path, fake):
    scheduler, clock = setup(
        tmp_path, fake, {"alpha": [{"type": "chat_api", "space": "spaces/A"}]}, schedule=EVERY_5_FROM_0905
    )
    tick(scheduler, clock, T0)

    result = tick(scheduler, clock, at("09:30:30"))  # nothing ran for half an hour; grace is 10 minutes

    assert states(result) == [
        ("alpha", "09:05", "missed"),
        ("alpha", "09:10", "missed"),
        ("alpha", "09:15", "missed"),
        ("alpha", "09:20", "missed"),
        ("alpha", "09:25", "superseded"),
        ("alpha", "09:30", "delivered"),
    ]
    assert [p.query["messageId"][-6:-2] for p in fake.posts()] == ["0930"]
    runs = {f"{r.slot:%H:%M}": r.state for r in scheduler.services.store.slot_runs("alpha")}
    assert runs == {"09:05": "missed", "09:10": "missed", "09:15": "missed", "09:20": "missed"} | {
        "09:25": "superseded",
        "09:30": "delivered",
    }


def test_a_source_down_retries_within_grace_then_posts_the_marked_card(tmp_path, fake):
    teams = {"alpha": [{"type": "webhook", "url": fake.webhook_url("A")}]}
    scheduler, clock = setup(tmp_path, fake, teams, schedule=EVERY_5_FROM_0905)
    tick(scheduler, clock, T0)
    assert states(tick(scheduler, clock, at("09:05:30"))) == [("alpha", "09:05", "delivered")]
    (tmp_path / "alpha.csv").rename(tmp_path / "alpha.csv.away")

    assert states(tick(scheduler, clock, at("09:10:30"))) == [("alpha", "09:10", "pending")]
    # Only the latest slot is tried; the older pending one keeps its grace clock.
    assert states(tick(scheduler, clock, at("09:15:30"))) == [("alpha", "09:15", "pending")]
    runs = {f"{r.slot:%H:%M}": r.state for r in scheduler.services.store.slot_runs("alpha")}
    assert runs == {"09:05": "delivered", "09:10": "pending", "09:15": "pending"}
    assert len(fake.posts()) == 1  # no post while the data cannot be read

    result = tick(scheduler, clock, at("09:20:40"))  # the 09:10 slot's grace (10 min) has run out

    # One marked card, for the latest slot; the older ones are superseded, not posted.
    assert states(result) == [
        ("alpha", "09:10", "superseded"),
        ("alpha", "09:15", "superseded"),
        ("alpha", "09:20", "delivered"),
    ]
    assert len(fake.posts()) == 2
    stale = fake.posts()[-1].body
    assert stale["text"].startswith("⚠ Could not refresh: Open issues: cannot read alpha.csv")
    widgets = [w for s in stale["cardsV2"][0]["card"]["sections"] for w in s["widgets"]]
    warning = next(
        w["decoratedText"] for w in widgets if w.get("decoratedText", {}).get("topLabel") == "⚠ Could not refresh"
    )
    assert warning["bottomLabel"].startswith("Last known value, read 15 min ago")
    assert "<b>11</b>" in json.dumps(stale, ensure_ascii=False)  # the last known index, not 0
    [run] = [r for r in scheduler.services.store.slot_runs("alpha") if f"{r.slot:%H:%M}" == "09:20"]
    assert (run.state, run.attempts) == ("delivered", 1)
    assert run.detail.startswith("posted stale")

    assert states(tick(scheduler, clock, at("09:25:30"))) == [("alpha", "09:25", "pending")]
    (tmp_path / "alpha.csv.away").rename(tmp_path / "alpha.csv")
    result = tick(scheduler, clock, at("09:30:30"))  # back: the latest slot goes out fresh
    assert states(result) == [("alpha", "09:25", "superseded"), ("alpha", "09:30", "delivered")]
    assert len(fake.posts()) == 3
    assert not fake.posts()[-1].body["text"].startswith("⚠")


def test_on_failure_skip_records_the_slot_skipped_and_posts_nothing(tmp_path, fake):
    teams = {"alpha": [{"type": "webhook", "url": fake.webhook_url("A")}]}
    scheduler, clock = setup(
        tmp_path, fake, teams, schedule=EVERY_5_FROM_0905, team_options={"alpha": {"on_failure": "skip"}}
    )
    tick(scheduler, clock, T0)
    (tmp_path / "alpha.csv").unlink()

    assert states(tick(scheduler, clock, at("09:05:30"))) == [("alpha", "09:05", "pending")]
    assert states(tick(scheduler, clock, at("09:15:40"))) == [  # 09:05's grace is over: the last attempt
        ("alpha", "09:05", "superseded"),
        ("alpha", "09:10", "superseded"),
        ("alpha", "09:15", "skipped"),
    ]
    assert fake.posts() == []
    [run] = [r for r in scheduler.services.store.slot_runs("alpha") if r.state == "skipped"]
    assert "cannot read alpha.csv" in run.detail


def test_a_slot_left_unfinished_long_past_its_grace_is_given_up_not_posted_late(tmp_path, fake):
    teams = {"alpha": [{"type": "webhook", "url": fake.webhook_url("A")}]}
    scheduler, clock = setup(tmp_path, fake, teams, schedule=EVERY_5_FROM_0905)
    tick(scheduler, clock, T0)
    (tmp_path / "alpha.csv").rename(tmp_path / "alpha.csv.away")
    assert states(tick(scheduler, clock, at("09:05:30"))) == [("alpha", "09:05", "pending")]
    (tmp_path / "alpha.csv.away").rename(tmp_path / "alpha.csv")

    result = tick(scheduler, clock, at("09:30:00"))  # no tick for 25 minutes; grace is 10

    assert states(result) == [
        ("alpha", "09:10", "missed"),
        ("alpha", "09:15", "missed"),
        ("alpha", "09:20", "missed"),
        ("alpha", "09:25", "superseded"),
        ("alpha", "09:30", "delivered"),
    ]
    [run] = [r for r in scheduler.services.store.slot_runs("alpha") if f"{r.slot:%H:%M}" == "09:05"]
    assert (run.state, run.detail) == ("missed", "not completed within the grace period")
    assert len(fake.posts()) == 1


def test_a_retry_does_not_resend_to_targets_that_already_succeeded(tmp_path, fake):
    teams = {"alpha": [{"type": "webhook", "url": fake.webhook_url("A")}, {"type": "chat_api", "space": "spaces/B"}]}
    fake.answer("spaces/B", (500, {}), (500, {}), (500, {}))
    scheduler, clock = setup(tmp_path, fake, teams, delivery_options={"max_attempts": 3})
    tick(scheduler, clock, T0)

    assert states(tick(scheduler, clock, at("09:01:05"))) == [("alpha", "09:01", "pending")]
    assert (len(fake.posts("spaces/A")), len(fake.posts("spaces/B"))) == (1, 3)

    assert states(tick(scheduler, clock, at("09:01:35"))) == [("alpha", "09:01", "delivered")]
    assert (len(fake.posts("spaces/A")), len(fake.posts("spaces/B"))) == (1, 4)
    assert len(fake.messages()) == 2
    outcomes = [(d.target, d.outcome) for d in reversed(scheduler.services.store.deliveries("alpha"))]
    assert outcomes == [
        ("webhook:spaces/A", "delivered"),
        ("chat_api:spaces/B", "error"),
        ("chat_api:spaces/B", "delivered"),
    ]


def test_the_deadline_decides_whether_a_slot_starts_and_a_started_post_gets_its_full_timeout(tmp_path, fake):
    teams = {name: [{"type": "webhook", "url": fake.webhook_url(name.upper())}] for name in ("slow", "beta")}
    scheduler, clock = setup(tmp_path, fake, teams, deadline_seconds=1, concurrency=1)
    tick(scheduler, clock, T0)
    fake.slow("spaces/SLOW", 1.5)  # the post lands at once, its answer takes 1.5 s: past the 1 s deadline

    result = tick(scheduler, clock, at("09:01:05"))

    # not timed out, not given back; beta, reached after the deadline, is named as not reached
    assert states(result) == [("beta", "09:01", "not reached"), ("slow", "09:01", "delivered")]
    assert result.not_reached == ["beta"]
    assert result.summary() == "1 delivered, 1 not reached; deadline reached before: beta"
    assert scheduler.services.store.slot_runs("beta") == []  # claimed with its batch, given back unstarted
    assert states(tick(scheduler, clock, at("09:01:35"))) == [("beta", "09:01", "delivered")]
    assert (len(fake.messages("spaces/SLOW")), len(fake.messages("spaces/BETA"))) == (1, 1)


def test_slots_the_deadline_left_unstarted_are_recorded_missed_once_their_grace_is_over(tmp_path, fake):
    teams = {name: [{"type": "webhook", "url": fake.webhook_url(name.upper())}] for name in ("slow", "beta")}
    scheduler, clock = setup(tmp_path, fake, teams, deadline_seconds=1, concurrency=1, schedule="1-3 9 * * *")
    tick(scheduler, clock, T0)
    fake.slow("spaces/SLOW", 1.5)
    assert states(tick(scheduler, clock, at("09:03:05"))) == [
        ("beta", "09:03", "not reached"),
        ("slow", "09:01", "superseded"),
        ("slow", "09:02", "superseded"),
        ("slow", "09:03", "delivered"),
    ]

    result = tick(scheduler, clock, at("09:20:00"))  # the next tick comes after the grace period

    assert states(result) == [("beta", "09:01", "missed"), ("beta", "09:02", "missed"), ("beta", "09:03", "missed")]
    assert fake.messages("spaces/BETA") == []


def test_an_unexpected_error_gives_the_slot_back_and_the_other_teams_go_on(tmp_path, fake, caplog, monkeypatch):
    teams = {name: [{"type": "webhook", "url": fake.webhook_url(name.upper())}] for name in ("alpha", "beta")}
    scheduler, clock = setup(tmp_path, fake, teams)
    tick(scheduler, clock, T0)
    send = scheduler.delivery.send

    def broken(target, post, deadline, gate=None):
        if post.team_id == "alpha":
            raise RuntimeError(f"cannot post to {fake.url}v1/spaces/ALPHA/messages?token={SECRET}")
        return send(target, post, deadline, gate)

    monkeypatch.setattr(scheduler.delivery, "send", broken)
    caplog.set_level(logging.DEBUG, logger="bot")

    result = tick(scheduler, clock, at("09:01:05"))

    assert states(result, unexpected={"alpha"}) == [("alpha", "09:01", "pending"), ("beta", "09:01", "delivered")]
    assert details(result) == {("alpha", "09:01"): "unexpected RuntimeError", ("beta", "09:01"): None}
    assert "RuntimeError" in caplog.text
    assert SECRET not in caplog.text
    [run] = scheduler.services.store.slot_runs("alpha")
    assert (run.state, run.detail) == ("pending", "unexpected RuntimeError")

    monkeypatch.setattr(scheduler.delivery, "send", send)
    assert states(tick(scheduler, clock, at("09:01:35"))) == [("alpha", "09:01", "delivered")]


def test_one_slow_space_does_not_hold_the_other_teams(tmp_path, fake):
    teams = {name: [{"type": "webhook", "url": fake.webhook_url(name.upper())}] for name in ("slow", "beta", "gamma")}
    scheduler, clock = setup(tmp_path, fake, teams, concurrency=3)
    tick(scheduler, clock, T0)
    hang = fake.hang("spaces/SLOW", landed=False)
    released: list[float] = []

    def release_slow_space() -> None:
        released.append(time.monotonic())
        hang.release.set()

    release = threading.Timer(3.0, release_slow_space)
    started = time.monotonic()
    release.start()
    result = tick(scheduler, clock, at("09:01:05"))

    release.join()
    assert states(result) == [
        ("beta", "09:01", "delivered"),
        ("gamma", "09:01", "delivered"),
        ("slow", "09:01", "delivered"),
    ]
    others = [p.at for p in fake.posts() if p.space != "spaces/SLOW"]
    assert max(others) < released[0]  # beta and gamma went out while the slow Space was still hanging
    assert time.monotonic() - started >= 3.0


def test_fall_back_night_in_two_zones_posts_each_wall_clock_slot_once(tmp_path, fake):
    teams = {"newyork": [{"type": "log"}], "berlin": [{"type": "log"}]}
    options = {
        "newyork": {"timezone": "America/New_York", "schedule": "30 1 * * *"},  # 01:30 happens twice on 1 Nov
        "berlin": {"timezone": "Europe/Berlin", "schedule": "30 2 * * *"},  # 02:30 happens twice on 25 Oct
    }
    scheduler, clock = setup(tmp_path, fake, teams, team_options=options)
    for start, hours in ((datetime(2026, 10, 24, 22, 5, tzinfo=UTC), 5), (datetime(2026, 11, 1, 3, 5, tzinfo=UTC), 6)):
        for step in range(hours * 6):
            tick(scheduler, clock, start + timedelta(minutes=10 * step))

    store = scheduler.services.store
    assert [e.slot for e in store.outbox("berlin")] == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]  # 02:30 CEST
    assert [e.slot for e in store.outbox("newyork")] == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC)]  # 01:30 EDT


def test_a_team_template_becomes_the_message_text(tmp_path, fake):
    template = (
        "{{ team.name }} is {{ team.status }}: {% for k in kpis %}{{ k.name }} {{ k.index }}/{{ k.target }}"
        " ({% for b in k.breakdown %}{{ b.category }}={{ b.count }} {% endfor %}){% endfor %} {{ crm_url }} {{ slot }}"
    )
    options = {"alpha": {"template": template, "crm_url": "https://crm.example.com/list"}}
    scheduler, clock = setup(
        tmp_path, fake, {"alpha": [{"type": "webhook", "url": fake.webhook_url("A")}]}, team_options=options
    )
    validate_templates(scheduler.services.config)
    tick(scheduler, clock, T0)
    tick(scheduler, clock, at("09:01:05"))

    [post] = fake.posts()
    assert (
        post.body["text"]
        == "Alpha is good: Open issues 11/20 (High=2 Low=1 ) https://crm.example.com/list 2026-11-09 09:01"
    )
    assert post.body["cardsV2"][0]["cardId"] == "score-alpha"  # the card stays the formatter's


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ team.name ", "teams[1].template: TemplateSyntaxError"),
        ("{{ score }}", "teams[1].template: TemplateError: unknown name 'score' (known: crm_url, date, kpi, kpis,"),
        ("{% if stale %}{{ nosuch }}{% endif %}", "teams[1].template: TemplateError: unknown name 'nosuch'"),
        (
            "{% for k in kpis %}{% if k.status == 'bad' %}{{ k.indx }}{% endif %}{% endfor %}",
            "teams[1].template: UndefinedError: 'dict object' has no attribute 'indx' (sample report: bad)",
        ),
        ("{% for k in kpis %}{{ k.index + 1 }}{% endfor %}", "teams[1].template: TypeError"),
        ("{{ team.nickname }}", "teams[1].template: UndefinedError"),
        ("{{ kpi['missing'].index }}", "teams[1].template: UndefinedError"),
        ("{{ team.__class__.__mro__ }}", "teams[1].template: "),
    ],
)
def test_a_bad_template_fails_at_start_naming_file_and_key(tmp_path, fake, template, expected):
    path = write_config(tmp_path, fake, {"alpha": [], "beta": []}, team_options={"beta": {"template": template}})
    with pytest.raises(ConfigError, match=re.escape(expected)) as caught:
        validate_templates(load_config(path))
    assert str(caught.value).startswith(f"{path.resolve()}: {expected}")


def test_a_template_using_every_state_and_loop_names_passes(tmp_path, fake):
    template = (
        "{% for k in kpis %}{% if k.status == 'bad' %}{{ k.name }}: {{ k.index }}{% elif k.stale %}{{ k.stale }}"
        "{% endif %}{% set last = loop.last %}{% endfor %}{% if stale %}{{ range(2) | list }}{% endif %}"
    )
    path = write_config(tmp_path, fake, {"alpha": []}, team_options={"alpha": {"template": template}})
    validate_templates(load_config(path))


def test_a_bad_thread_key_fails_at_start(tmp_path, fake):
    target = {"type": "webhook", "url": fake.webhook_url("A"), "thread": "{team}-{weekday}"}
    path = write_config(tmp_path, fake, {"alpha": [target]})
    with pytest.raises(ConfigError, match=r"teams\[0\]\.deliver\[0\]\.thread: bad thread key template \(KeyError"):
        validate_templates(load_config(path))


# --- GET /tasks/tick -------------------------------------------------------------------------

AUDIENCE = "https://scorebot.example.com/tasks/tick"
SCHEDULER_ACCOUNT = "cron@scorebot-test.iam.gserviceaccount.com"


@pytest.fixture
def route(tmp_path, fake, token_factory):
    scheduler, _ = setup(
        tmp_path,
        fake,
        {"alpha": [{"type": "log"}]},
        cron_audience=AUDIENCE,
        cron_service_account=SCHEDULER_ACCOUNT,
    )

    def client(env):
        app = Flask(__name__)
        blueprint = create_tick_blueprint(
            scheduler.services, scheduler=scheduler, certs=token_factory.cert_cache(), env=env
        )
        app.register_blueprint(blueprint)
        return app.test_client()

    return client


def test_the_tick_route_refuses_requests_that_are_not_from_cron(route, token_factory, caplog):
    client = route({})
    assert client.get("/tasks/tick").status_code == 403
    assert client.get("/tasks/tick", headers={"X-Appengine-Cron": "true"}).status_code == 403  # not on App Engine
    wrong = token_factory.oidc_token(AUDIENCE, "someone@example.com")
    assert client.get("/tasks/tick", headers={"Authorization": bearer(wrong)}).status_code == 403
    other = token_factory.oidc_token("https://elsewhere.example.com", SCHEDULER_ACCOUNT)
    assert client.get("/tasks/tick", headers={"Authorization": bearer(other)}).status_code == 403
    assert "wrong email" in caplog.text
    assert "wrong audience" in caplog.text


def test_the_tick_route_runs_a_tick_for_app_engine_cron_and_cloud_scheduler(route, token_factory):
    on_app_engine = route({"GAE_ENV": "standard"})
    response = on_app_engine.get("/tasks/tick", headers={"X-Appengine-Cron": "true"})
    assert response.status_code == 200
    assert response.json["summary"] == "nothing due"

    token = token_factory.oidc_token(AUDIENCE, SCHEDULER_ACCOUNT)
    response = route({}).get("/tasks/tick", headers={"Authorization": bearer(token)})
    assert response.status_code == 200
    assert "now" in response.json

    token_factory.fail_with = 500
    token_factory.add_key("rotated", 1)
    rotated = token_factory.served["rotated"].sign({"aud": AUDIENCE}, "unseen-key")
    response = route({}).get("/tasks/tick", headers={"Authorization": bearer(rotated)})
    assert response.status_code == 503  # cannot verify now: Cloud Scheduler retries


def test_the_tick_route_answers_500_without_the_error_text(tmp_path, fake, caplog):
    scheduler, _ = setup(tmp_path, fake, {"alpha": [{"type": "log"}]})

    def broken():
        raise RuntimeError(SECRET)

    scheduler.tick = broken
    app = Flask(__name__)
    app.register_blueprint(create_tick_blueprint(scheduler.services, scheduler=scheduler, env={"GAE_ENV": "standard"}))

    response = app.test_client().get("/tasks/tick", headers={"X-Appengine-Cron": "true"})

    assert response.status_code == 500
    assert "tick failed: RuntimeError" in caplog.text
    assert SECRET not in caplog.text + response.get_data(as_text=True)


def test_a_tick_removes_at_most_5000_old_rows_a_table_and_logs_what_it_removed(tmp_path, fake, caplog):
    scheduler, clock = setup(tmp_path, fake, {"alpha": [{"type": "log"}]}, schedule=EVERY_5_FROM_0905)
    store = scheduler.services.store
    outbox = {t.name: t for t in metadata.sorted_tables}["outbox"]
    old = T0 - timedelta(days=500)  # keep_days is 400
    with store.engine.begin() as conn:
        conn.execute(
            outbox.insert(),
            [
                {"team_id": "alpha", "slot_utc": old + timedelta(minutes=n), "created_at": old, "message": "{}"}
                for n in range(5001)
            ],
        )

    def left() -> int:
        with store.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()

    caplog.set_level(logging.INFO, logger="bot.schedule.tick")
    assert tick(scheduler, clock, T0).outcomes == []  # nothing due: the tick only prunes
    assert left() == 1
    assert "retention: removed 5000 outbox" in caplog.messages
    caplog.clear()
    tick(scheduler, clock, at("09:01:00"))
    assert left() == 0
    assert "retention: removed 1 outbox" in caplog.messages


# --- serve's in-process ticker -----------------------------------------------------------------


def test_the_background_ticker_posts_when_a_slot_falls_due_and_stops(tmp_path, fake):
    config = load_config(write_config(tmp_path, fake, {"alpha": [{"type": "log"}]}, tick_seconds=0.1))
    started = time.monotonic()

    def fast_clock():  # a minute passes every second
        return T0 + timedelta(minutes=time.monotonic() - started)

    services = build_services(config, clock=fast_clock, store_url=f"sqlite:///{tmp_path / 'store.db'}")
    stop = threading.Event()
    thread = start_background_ticker(services, stop)
    try:
        deadline = time.monotonic() + 5
        while not services.store.outbox("alpha") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    [first, *_] = reversed(services.store.outbox("alpha"))
    # 09:01 is the first slot; a loaded machine may tick first after 09:02 fell due: then 09:01 is superseded.
    assert first.slot >= datetime(2026, 11, 9, 9, 1, tzinfo=UTC)
    runs = {r.slot: r.state for r in services.store.slot_runs("alpha")}
    assert runs[first.slot] == "delivered"
    assert {state for slot, state in runs.items() if slot < first.slot} <= {"superseded"}


def test_the_background_ticker_survives_a_failing_tick_and_logs_no_error_text(tmp_path, fake, caplog, monkeypatch):
    calls = []

    def broken(self, now=None):
        calls.append(now)
        raise RuntimeError(f"https://chat.googleapis.com/v1/spaces/A/messages?token={SECRET}")

    monkeypatch.setattr(Scheduler, "tick", broken)
    config = load_config(write_config(tmp_path, fake, {"alpha": [{"type": "log"}]}, tick_seconds=0.05))
    services = build_services(config, store_url=f"sqlite:///{tmp_path / 'store.db'}")
    caplog.set_level(logging.DEBUG, logger="bot")
    stop = threading.Event()
    thread = start_background_ticker(services, stop)
    try:
        deadline = time.monotonic() + 5
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(5)

    assert len(calls) >= 2  # a failed tick does not stop the next
    assert "scheduler tick failed: RuntimeError" in caplog.text
    assert SECRET not in caplog.text


def test_the_background_ticker_does_not_keep_the_process_alive(tmp_path, fake):
    """serve's ticker runs beside the server: when the server's main thread ends, the process ends too, though
    the ticker still waits for its next tick (an hour away)."""
    path = write_config(
        tmp_path, fake, {"alpha": [{"type": "log"}]}, tick_seconds=3600, team_options={"alpha": {"schedule": None}}
    )
    code = (
        "import sys, threading; from bot.config import load_config; from bot.services import build_services; "
        "from bot.schedule.tick import start_background_ticker; "
        "start_background_ticker(build_services(load_config(sys.argv[1]), store_url=sys.argv[2]), threading.Event()); "
        "print('started', flush=True)"
    )
    command = [sys.executable, "-c", code, str(path), f"sqlite:///{tmp_path / 'store.db'}"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as run:
        try:
            out, err = run.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            run.kill()
            out, err = run.communicate()
            pytest.fail(f"the process outlived its main thread by a minute: {out!r} {err[-300:]!r}")
    assert (run.returncode, out) == (0, "started\n"), err[-300:]


# --- python -m bot tick / send / history / schedule --------------------------------------------


def run_cli(services, *argv):
    parser = argparse.ArgumentParser()
    handlers = add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    assert handlers[args.command] is args.handler
    return args.handler(args, services)


def test_cli_tick_send_history_and_schedule(tmp_path, fake, capsys):
    target = {"type": "webhook", "url": fake.webhook_url("A"), "thread": "{team}-{iso_week}"}
    options = {"alpha": {"template": "{{ team.name }}: {{ kpi['open'].index }}", "timezone": "Europe/Berlin"}}
    scheduler, clock = setup(tmp_path, fake, {"alpha": [target]}, schedule="1-59 10 * * *", team_options=options)
    services = scheduler.services

    assert run_cli(services, "tick", "--now", "2026-11-09T09:00:30") == 0
    assert run_cli(services, "tick", "--now", "2026-11-09T10:01:05+01:00") == 0
    assert "alpha 2026-11-09T09:01:00+00:00 delivered" in capsys.readouterr().out

    assert run_cli(services, "send", "alpha", "--dry-run") == 0
    out = capsys.readouterr().out
    assert re.search(
        r"→ webhook:spaces/A \(messageId client-alpha-1109090030-[0-9a-f]{4}, thread alpha-2026-W46\)", out
    )
    assert '"text": "Alpha: 11"' in out
    assert "secret" not in out
    assert len(fake.posts()) == 1  # a dry run posts nothing

    clock.now = at("09:30:00")
    assert run_cli(services, "send", "alpha") == 0
    assert "ok   webhook:spaces/A: delivered" in capsys.readouterr().out
    assert len(fake.posts()) == 2

    assert run_cli(services, "history", "alpha") == 0
    out = capsys.readouterr().out
    assert "2026-11-09 10:01:00 CET  delivered  attempts 1" in out
    assert "webhook:spaces/A  delivered  client-alpha-1109093000-" in out
    assert "open  index 11" in out

    assert run_cli(services, "schedule", "--count", "2") == 0
    out = capsys.readouterr().out
    assert "alpha: '1-59 10 * * *' in Europe/Berlin → webhook:spaces/A" in out
    assert "2026-11-09 10:31 CET  (2026-11-09 09:31 UTC)" in out

    assert run_cli(services, "history", "nobody") == 2
    assert "no team 'nobody'" in capsys.readouterr().err


def test_cli_times_with_an_offset_become_utc():
    moment = parse_instant("2026-11-09T09:00:30-05:00")
    assert (moment, moment.tzinfo) == (datetime(2026, 11, 9, 14, 0, 30, tzinfo=UTC), UTC)
    assert parse_instant("2026-11-09T09:00:30").tzinfo == UTC


def test_two_sends_in_the_same_second_are_two_messages(tmp_path, fake, capsys):
    scheduler, _ = setup(tmp_path, fake, {"alpha": [{"type": "chat_api", "space": "spaces/A"}]})

    assert run_cli(scheduler.services, "send", "alpha") == 0
    assert run_cli(scheduler.services, "send", "alpha") == 0  # the clock has not moved

    assert capsys.readouterr().out.count("ok   chat_api:spaces/A: delivered") == 2
    ids = [p.query["messageId"] for p in fake.posts("spaces/A")]
    assert len(set(ids)) == len(fake.messages("spaces/A")) == 2
    assert all(re.fullmatch(r"client-alpha-1109090030-[0-9a-f]{4}", mid) for mid in ids)


def test_cli_tick_exits_1_when_a_slot_failed(tmp_path, fake, capsys):
    fake.always("spaces/A", 404)  # a deleted webhook: not retried
    scheduler, _ = setup(tmp_path, fake, {"alpha": [{"type": "webhook", "url": fake.webhook_url("A")}]})
    assert run_cli(scheduler.services, "tick", "--now", "2026-11-09T09:00:30Z") == 0  # the first tick: nothing due

    assert run_cli(scheduler.services, "tick", "--now", "2026-11-09T09:01:05Z") == 1

    out = capsys.readouterr().out
    assert "alpha 2026-11-09T09:01:00+00:00 failed: webhook to spaces/A: HTTP 404" in out
    assert "tick at 2026-11-09T09:01:05+00:00: 1 failed" in out
    [run] = scheduler.services.store.slot_runs("alpha")
    assert run.state == "failed"


def test_cli_tick_exits_1_when_a_teams_store_fails(tmp_path, fake, capsys):
    scheduler, _ = setup(tmp_path, fake, {"alpha": [{"type": "log"}]})
    with scheduler.services.store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE team_marks")

    assert run_cli(scheduler.services, "tick", "--now", "2026-11-09T09:01:05Z") == 1

    out = capsys.readouterr().out
    assert "alpha 2026-11-09T09:01:05+00:00 error: (sqlite3.OperationalError) no such table: team_marks" in out
    assert "tick at 2026-11-09T09:01:05+00:00: 1 error" in out


def test_an_unexpected_error_in_a_teams_work_is_an_error_outcome_and_the_other_teams_go_on(
    tmp_path, fake, capsys, monkeypatch
):
    teams = {name: [{"type": "webhook", "url": fake.webhook_url(name.upper())}] for name in ("alpha", "beta")}
    scheduler, _ = setup(tmp_path, fake, teams)
    store = scheduler.services.store
    open_team = store.open_team  # a team's first store work in a tick

    def broken(team_id, *args):
        if team_id == "alpha":
            raise RuntimeError(SECRET)
        return open_team(team_id, *args)

    monkeypatch.setattr(store, "open_team", broken)
    assert run_cli(scheduler.services, "tick", "--now", "2026-11-09T09:00:30Z") == 1
    assert run_cli(scheduler.services, "tick", "--now", "2026-11-09T09:01:05Z") == 1

    out = capsys.readouterr().out
    assert "alpha 2026-11-09T09:01:05+00:00 error: unexpected RuntimeError" in out
    assert "beta 2026-11-09T09:01:00+00:00 delivered" in out
    assert "tick at 2026-11-09T09:01:05+00:00: 1 delivered, 1 error" in out
    assert SECRET not in out
    assert [p.space for p in fake.posts()] == ["spaces/BETA"]


def test_only_teams_with_a_schedule_and_targets_tick(tmp_path, fake):
    teams = {"alpha": [], "beta": [{"type": "webhook", "url": fake.webhook_url("B")}]}
    scheduler, clock = setup(tmp_path, fake, teams)
    tick(scheduler, clock, T0)

    result = tick(scheduler, clock, at("09:01:05"))

    assert states(result) == [("beta", "09:01", "delivered")]
    assert scheduler.services.store.slot_runs("alpha") == []
    assert [d.at >= at("09:01:05") for d in scheduler.services.store.deliveries("beta")] == [True]


def test_after_a_pause_of_days_only_the_last_day_is_recorded_missed(tmp_path, fake):
    teams = {"alpha": [{"type": "webhook", "url": fake.webhook_url("A")}]}
    scheduler, clock = setup(tmp_path, fake, teams, schedule="0 * * * *")  # hourly; grace is 10 minutes
    tick(scheduler, clock, T0)

    result = tick(scheduler, clock, T0 + timedelta(days=3))

    missed = sorted(o.slot for o in result.outcomes if o.state == "missed")
    assert len(missed) == 23  # 10:00 two days after T0 … 08:00 on the day: a day's worth, not three
    assert (missed[0], missed[-1]) == (datetime(2026, 11, 11, 10, tzinfo=UTC), datetime(2026, 11, 12, 8, tzinfo=UTC))
    assert [(f"{o.slot:%d %H:%M}", o.state) for o in result.outcomes if o.state != "missed"] == [
        ("12 09:00", "delivered")
    ]


def test_a_worked_slot_names_the_host_and_process_that_worked_it(tmp_path, fake):
    scheduler, clock = setup(tmp_path, fake, {"alpha": [{"type": "webhook", "url": fake.webhook_url("A")}]})
    other = Scheduler(scheduler.services, delivery=scheduler.delivery)
    tick(scheduler, clock, T0)
    tick(scheduler, clock, at("09:01:05"))

    [run] = scheduler.services.store.slot_runs("alpha")
    assert re.fullmatch(rf"{re.escape(socket.gethostname())}-{os.getpid()}-[0-9a-f]{{8}}", run.claimed_by)
    assert other.owner != scheduler.owner  # two schedulers in one process are two claimants


def dry_run_after_a_pending_0905(tmp_path, fake, capsys, hhmmss):
    """Leave the 09:05 slot pending (its source down), then print a dry run at ``hhmmss`` (no tick since)."""
    teams = {"alpha": [{"type": "webhook", "url": fake.webhook_url("A")}]}
    scheduler, clock = setup(tmp_path, fake, teams, schedule=EVERY_5_FROM_0905)  # grace is 10 minutes
    tick(scheduler, clock, T0)
    (tmp_path / "alpha.csv").rename(tmp_path / "alpha.csv.away")
    assert states(tick(scheduler, clock, at("09:05:30"))) == [("alpha", "09:05", "pending")]
    (tmp_path / "alpha.csv.away").rename(tmp_path / "alpha.csv")
    clock.now = at(hhmmss)
    capsys.readouterr()
    assert run_cli(scheduler.services, "tick", "--now", f"2026-11-09T{hhmmss}Z", "--dry-run") == 0
    return scheduler, clock, capsys.readouterr().out


def test_dry_run_after_a_pause_says_what_the_tick_then_does(tmp_path, fake, capsys):
    # No tick for 21 minutes: 09:05 is more than two grace periods old.
    scheduler, clock, out = dry_run_after_a_pending_0905(tmp_path, fake, capsys, "09:27:00")

    assert "alpha: would claim 2026-11-09T09:25:00+00:00 and post it (messageId" in out
    assert "alpha: would record 1 older slots superseded once it is posted (2026-11-09T09:20:00+00:00)" in out
    result = tick(scheduler, clock, at("09:27:00"))
    assert [(f"{o.slot:%H:%M}", o.state) for o in result.outcomes if o.state != "missed"] == [
        ("09:25", "delivered"),
        ("09:20", "superseded"),
    ]


def test_dry_run_counts_a_pending_slot_between_one_and_two_grace_periods_old(tmp_path, fake, capsys):
    # 09:05 is 12 minutes old: past its grace period, not yet given up.
    scheduler, clock, out = dry_run_after_a_pending_0905(tmp_path, fake, capsys, "09:17:00")

    assert "alpha: would claim 2026-11-09T09:15:00+00:00 and post it (last attempt at messageId" in out
    assert (
        "alpha: would record 2 older slots superseded once it is posted"
        " (2026-11-09T09:05:00+00:00 … 2026-11-09T09:10:00+00:00)" in out
    )
    result = tick(scheduler, clock, at("09:17:00"))
    assert states(result) == [
        ("alpha", "09:05", "superseded"),
        ("alpha", "09:10", "superseded"),
        ("alpha", "09:15", "delivered"),
    ]


def test_a_slot_waits_until_every_kpi_is_read_not_just_one(tmp_path, fake):
    kpi = {"name": "Open issues", "count": {"where": {"status": "Open"}}, "category": "priority"}
    kpi |= {"weights": {"High": 5, "Low": 1}, "target": 20, "warning": 40}
    kpis = [kpi | {"id": "open", "source": "alpha"}, kpi | {"id": "other", "name": "Other issues", "source": "beta"}]
    teams = {"alpha": [{"type": "webhook", "url": fake.webhook_url("A")}], "beta": []}
    scheduler, clock = setup(tmp_path, fake, teams, team_options={"alpha": {"kpis": kpis}})
    tick(scheduler, clock, T0)
    (tmp_path / "beta.csv").unlink()  # one of alpha's two sources is down

    result = tick(scheduler, clock, at("09:01:05"))

    assert states(result) == [("alpha", "09:01", "pending")]
    assert details(result)[("alpha", "09:01")].startswith("could not refresh: ")
    assert fake.posts() == []


def test_a_failing_target_does_not_hold_back_the_next_one(tmp_path, fake):
    teams = {"alpha": [{"type": "chat_api", "space": "spaces/B"}, {"type": "webhook", "url": fake.webhook_url("A")}]}
    fake.answer("spaces/B", (500, {}), (500, {}), (500, {}))
    scheduler, clock = setup(tmp_path, fake, teams, delivery_options={"max_attempts": 3})
    tick(scheduler, clock, T0)

    result = tick(scheduler, clock, at("09:01:05"))

    assert states(result) == [("alpha", "09:01", "pending")]
    assert (len(fake.posts("spaces/A")), len(fake.posts("spaces/B"))) == (1, 3)
    assert "Retry-After" not in details(result)[("alpha", "09:01")]  # no wait was asked for: the next tick retries


def test_a_slot_waits_for_the_longest_retry_after_of_its_targets(tmp_path, fake):
    teams = {"alpha": [{"type": "chat_api", "space": "spaces/A"}, {"type": "chat_api", "space": "spaces/B"}]}
    fake.answer("spaces/A", (429, {"Retry-After": "60"}))
    fake.answer("spaces/B", (429, {"Retry-After": "120"}))
    scheduler, clock = setup(tmp_path, fake, teams)
    tick(scheduler, clock, T0)

    started = time.monotonic()
    result = tick(scheduler, clock, at("09:01:05"))
    took = timedelta(seconds=time.monotonic() - started)  # the tick's clock moves on while it works

    assert states(result) == [("alpha", "09:01", "pending")]
    [detail] = details(result).values()
    found = re.search(r"not retried before (\S+) \(Retry-After\)$", detail)
    assert found, detail
    assert at("09:03:05") <= datetime.fromisoformat(found.group(1)) <= at("09:03:05") + took


def test_cli_tick_names_the_teams_the_deadline_came_before_and_exits_3(tmp_path, fake, capsys):
    teams = {name: [{"type": "webhook", "url": fake.webhook_url(name.upper())}] for name in ("slow", "beta")}
    scheduler, clock = setup(tmp_path, fake, teams, deadline_seconds=1, concurrency=1)
    assert run_cli(scheduler.services, "tick", "--now", "2026-11-09T09:00:30Z") == 0
    fake.slow("spaces/SLOW", 1.5)  # slow's post outlasts the 1 s deadline: beta is not reached
    clock.now = at("09:01:05")

    assert run_cli(scheduler.services, "tick", "--now", "2026-11-09T09:01:05Z") == 3

    out = capsys.readouterr().out
    assert "beta 2026-11-09T09:01:00+00:00 not reached: the tick's deadline came first" in out
    assert "tick at 2026-11-09T09:01:05+00:00: 1 delivered, 1 not reached; deadline reached before: beta" in out
    clock.now = at("09:01:35")
    assert run_cli(scheduler.services, "tick", "--now", "2026-11-09T09:01:35Z") == 0
    assert len(fake.messages("spaces/BETA")) == 1, "the next tick posts it"


def test_a_teams_slot_costs_a_few_store_transactions(tmp_path, fake):
    """Counted with a SQLAlchemy ``begin`` listener: one per transaction or read connection, whatever its size."""
    scheduler, clock = setup(tmp_path, fake, {"alpha": [{"type": "webhook", "url": fake.webhook_url("A")}]})
    tick(scheduler, clock, T0)
    begins = []
    sa.event.listen(scheduler.services.store.engine, "begin", lambda conn: begins.append(1))

    assert states(tick(scheduler, clock, at("09:01:05"))) == [("alpha", "09:01", "delivered")]

    # 1 the teams' own settings for the whole tick (read afresh every tick), 1 the team's bookkeeping with its
    # slots, 1 the claim, 1 the card's reads, 1 its readings, 1 the lease renewal before the request, 1 the
    # delivery record with the finish; then 1 retention for the whole tick (a new slot has no settled targets)
    assert len(begins) == 8, f"{len(begins)} transactions"


def test_a_retried_slot_posts_only_to_the_targets_not_settled_yet_and_records_each_attempt(tmp_path, fake):
    teams = {"alpha": [{"type": "webhook", "url": fake.webhook_url(s)} for s in ("A", "B", "C")]}
    fake.answer("spaces/B", (500, {}))
    scheduler, clock = setup(tmp_path, fake, teams, delivery_options={"max_attempts": 1})
    tick(scheduler, clock, T0)

    assert states(tick(scheduler, clock, at("09:01:05"))) == [("alpha", "09:01", "pending")]
    assert states(tick(scheduler, clock, at("09:01:35"))) == [("alpha", "09:01", "delivered")]

    assert [len(fake.posts(f"spaces/{s}")) for s in "ABC"] == [1, 2, 1]
    outcomes = sorted((d.target, d.outcome) for d in scheduler.services.store.deliveries("alpha"))
    assert outcomes == [
        ("webhook:spaces/A", "delivered"),
        ("webhook:spaces/B", "delivered"),
        ("webhook:spaces/B", "error"),
        ("webhook:spaces/C", "delivered"),  # the last target's attempt, recorded with the slot's release
    ]
