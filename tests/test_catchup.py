"""No burst: one post per team per tick, older due slots superseded; `tick --now` refused far from the clock
unless --dry-run (which writes nothing) or --force. On a SQLite file and on PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.config import load_config
from bot.delivery import Delivery
from bot.schedule.catchup import plan
from bot.schedule.tick import Scheduler
from bot.services import build_services
from bot.store import SlotRun, metadata
from tests.fakes.chat import FakeChat, write_config
from tests.test_tick import Clock, run_cli

T0 = datetime(2026, 11, 9, 10, 0, 30, tzinfo=UTC)


@pytest.fixture
def fake():
    chat = FakeChat()
    yield chat
    chat.close()


def make(tmp_path, fake, store_url, schedule, deliver=None, **settings):
    """A scheduler for one team ``alpha`` on ``schedule``, its clock at T0, on the store at ``store_url``."""
    deliver = deliver or [{"type": "webhook", "url": fake.webhook_url("A")}]
    path = write_config(tmp_path, fake, {"alpha": deliver}, schedule=schedule, **settings)
    clock = Clock(T0)
    services = build_services(load_config(path), clock=clock, store_url=store_url)
    delivery = Delivery(
        services.config.chat, services.store, clock, base_dir=tmp_path, backoff_seconds=0.01, pace_seconds=1.0
    )
    return Scheduler(services, delivery=delivery), clock


def row_counts(scheduler):
    with scheduler.services.store.engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() for t in metadata.sorted_tables
        }


def test_a_new_every_minute_team_posts_once_on_its_first_tick_and_records_59_superseded(
    tmp_path, fake, store_url, capsys
):
    scheduler, _ = make(tmp_path, fake, store_url, "* * * * *", grace_minutes=60)

    result = scheduler.tick(T0)

    assert result.count("delivered") == 1
    assert result.count("superseded") == 59
    assert len(fake.posts()) == len(fake.messages()) == 1
    assert fake.posts()[0].query["messageId"] == "client-alpha-20261109100000"  # the latest slot
    runs = scheduler.services.store.slot_runs("alpha", limit=1000)
    assert [r.state for r in runs] == ["delivered"] + ["superseded"] * 59
    assert runs[-1].slot == datetime(2026, 11, 9, 9, 1, tzinfo=UTC)
    assert runs[-1].detail == "superseded: the 2026-11-09 10:00 slot was posted"
    assert scheduler.tick(T0 + timedelta(seconds=20)).outcomes == []  # done is done
    assert run_cli(scheduler.services, "history", "alpha", "--limit", "100") == 0
    history = capsys.readouterr().out
    assert history.count("  superseded  attempts 0  superseded: the 2026-11-09 10:00 slot was posted") == 59
    assert "2026-11-09 10:00:00 UTC  delivered  attempts 1" in history
    scheduler.services.store.engine.dispose()


def test_after_a_pause_and_after_a_schedule_change_one_post(tmp_path, fake, store_url):
    scheduler, _ = make(tmp_path, fake, store_url, "0 9 * * *", grace_minutes=60)
    scheduler.tick(T0)  # 09:00 is an hour and 30 s old: predates the scheduler
    assert fake.posts() == []
    path = write_config(
        tmp_path,
        fake,
        {"alpha": [{"type": "webhook", "url": fake.webhook_url("A")}]},
        schedule="*/5 * * * *",
        grace_minutes=60,
    )
    changed = Scheduler(
        build_services(load_config(path), clock=scheduler.services.clock, store_url=store_url),
        delivery=scheduler.delivery,
    )

    result = changed.tick(T0 + timedelta(minutes=40))  # a pause of 40 minutes, on the new schedule

    # 09:45 to 10:40 fell due within the grace period: one post; 09:05 to 09:40 are older than that: missed.
    assert (result.count("delivered"), result.count("superseded"), result.count("missed")) == (1, 11, 8)
    assert [p.query["messageId"] for p in fake.posts()] == ["client-alpha-20261109104000"]
    scheduler.services.store.engine.dispose()
    changed.services.store.engine.dispose()


def test_a_pending_slot_older_than_a_posted_one_is_superseded_not_posted(tmp_path, fake, store_url):
    scheduler, _ = make(tmp_path, fake, store_url, "*/5 * * * *")
    store = scheduler.services.store
    older, newer = datetime(2026, 11, 9, 9, 55, tzinfo=UTC), datetime(2026, 11, 9, 10, 0, tzinfo=UTC)
    # Another tick left 09:55 pending (a 5xx) while a third posted 10:00:
    assert store.claim("alpha", older, "other", T0, T0 + timedelta(seconds=5))
    assert store.claim("alpha", newer, "third", T0, T0 + timedelta(seconds=5))
    assert store.finish("alpha", newer, "third", "delivered", T0, None)
    assert store.release("alpha", older, "other", T0, "webhook to spaces/A: HTTP 503")

    result = scheduler.tick(T0 + timedelta(seconds=10))

    assert [(o.slot, o.state, o.detail) for o in result.outcomes] == [
        (older, "superseded", "a newer slot was already posted")
    ]
    assert fake.posts() == []
    store.engine.dispose()


def test_superseding_never_takes_a_slot_another_process_holds(store_url):
    from bot.store import Store

    store = Store(store_url)
    held, free, new = (datetime(2026, 11, 9, 9, m, tzinfo=UTC) for m in (1, 2, 3))
    assert store.claim("alpha", held, "one", T0, T0 + timedelta(minutes=3))
    assert store.claim("alpha", free, "two", T0 - timedelta(minutes=9), T0 - timedelta(minutes=6))  # lease over

    assert store.supersede("alpha", [held, free, new], T0, "superseded: test") == [free, new]
    assert store.supersede("alpha", [free, new], T0, "superseded: test") == []  # once
    states = {r.slot: (r.state, r.claimed_by) for r in store.slot_runs("alpha")}
    assert states == {held: ("claimed", "one"), free: ("superseded", "two"), new: ("superseded", None)}
    assert not store.claim("alpha", new, "three", T0, T0 + timedelta(minutes=3))  # final: never claimed again
    store.engine.dispose()


def run(slot_minute, state, claimed_until=None, retry_at=None):
    slot = datetime(2026, 11, 9, 10, slot_minute, tzinfo=UTC)
    return slot, SlotRun("alpha", slot, state, 1, "x", claimed_until, T0, None, retry_at)


def test_the_rule_waits_for_another_ticks_lease_and_for_a_retry_after():
    now, cutoff = datetime(2026, 11, 9, 10, 5, 30, tzinfo=UTC), datetime(2026, 11, 9, 9, 55, 30, tzinfo=UTC)
    due = [datetime(2026, 11, 9, 10, m, tzinfo=UTC) for m in range(6)]

    assert plan(due, dict([run(2, "pending")]), now, cutoff).work == due[5]
    held = plan(due, dict([run(2, "claimed", claimed_until=now + timedelta(seconds=9))]), now, cutoff)
    assert (held.work, held.wait_reason) == (None, "slot 2026-11-09T10:02:00+00:00 is being worked by another tick")
    waiting = plan(due, dict([run(2, "pending", retry_at=now + timedelta(seconds=90))]), now, cutoff)
    assert (waiting.work, waiting.wait_reason) == (None, "waiting until 2026-11-09T10:07:00+00:00 (Retry-After)")
    # A lease ending now still holds (a claim takes over only after it); a Retry-After ending now is over:
    assert plan(due, dict([run(2, "claimed", claimed_until=now)]), now, cutoff).work is None
    assert plan(due, dict([run(2, "pending", retry_at=now)]), now, cutoff).work == due[5]
    two_waits = dict(
        [
            run(1, "pending", retry_at=now + timedelta(seconds=5)),
            run(2, "pending", retry_at=now + timedelta(seconds=90)),
        ]
    )
    assert plan(due, two_waits, now, cutoff).wait_reason == "waiting until 2026-11-09T10:07:00+00:00 (Retry-After)"
    # Between two posted slots, a pending one is outdated; after them, the latest due is worked:
    between = plan(due, dict([run(1, "delivered"), run(2, "pending"), run(3, "delivered")]), now, cutoff)
    assert (between.outdated, between.work, between.older) == ((due[0], due[2]), due[5], (due[4],))
    # A pending slot whose grace period ends right now makes the latest slot the last attempt, and a retry:
    edge = plan(
        due,
        {cutoff: SlotRun("alpha", cutoff, "pending", 1, None, None, T0, None), **dict([run(5, "pending")])},
        now,
        cutoff,
    )
    assert (edge.work, edge.retry, edge.last_attempt) == (due[5], True, True)
    assert plan(due, {}, now, cutoff).retry is False
    # A pending slot past its grace period makes the latest slot the last attempt:
    old = datetime(2026, 11, 9, 9, 55, tzinfo=UTC)
    late = plan(due, {old: SlotRun("alpha", old, "pending", 2, None, None, T0, None)}, now, cutoff)
    assert (late.work, late.last_attempt, late.older) == (due[5], True, (old, *due[:5]))


# --- tick --now / --dry-run / --force -----------------------------------------------------------


def test_tick_now_far_from_the_clock_is_refused(tmp_path, fake, store_url, capsys):
    scheduler, _ = make(tmp_path, fake, store_url, "* * * * *", grace_minutes=60)

    assert run_cli(scheduler.services, "tick", "--now", "2026-11-09T08:00:00Z") == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(
        "error: --now 2026-11-09T08:00:00+00:00 is more than the grace period (60 min) from the clock"
    )
    assert "--dry-run" in err and "--force" in err
    assert fake.posts() == []
    assert sum(row_counts(scheduler).values()) == 1  # schema_info only
    scheduler.services.store.engine.dispose()


def test_tick_dry_run_prints_the_plan_and_writes_nothing(tmp_path, fake, store_url, capsys):
    scheduler, _ = make(tmp_path, fake, store_url, "* * * * *", grace_minutes=60)
    empty = row_counts(scheduler)

    assert run_cli(scheduler.services, "tick", "--dry-run") == 0  # as of the clock, before any tick

    out = capsys.readouterr().out
    assert "alpha: would claim 2026-11-09T10:00:00+00:00 (first tick for this team) and post it" in out
    assert row_counts(scheduler) == empty  # not even the team's mark
    scheduler.tick(T0 - timedelta(hours=3))  # a first tick long ago, then a pause
    before = row_counts(scheduler)
    assert (before["slot_runs"], before["team_marks"]) == (60, 1)

    assert run_cli(scheduler.services, "tick", "--now", "2026-11-09T15:00:30Z", "--dry-run") == 0

    out = capsys.readouterr().out
    assert "alpha: would claim 2026-11-09T15:00:00+00:00 and post it (messageId client-alpha-20261109150000)" in out
    assert "to webhook:spaces/A" in out
    assert "alpha: would record 59 older slots superseded once it is posted" in out
    assert "alpha: would record 420 slots missed" in out  # 06:01 to 14:00, less the 60 the first tick handled
    assert out.endswith("dry run: nothing was claimed, posted or written\n")
    assert row_counts(scheduler) == before
    assert len(fake.posts()) == 1  # the first tick's only
    scheduler.services.store.engine.dispose()


def test_tick_force_really_ticks_as_of_then(tmp_path, fake, store_url, capsys):
    scheduler, _ = make(tmp_path, fake, store_url, "0 8 * * *", grace_minutes=60)

    assert run_cli(scheduler.services, "tick", "--now", "2026-11-09T08:00:30Z", "--force") == 0

    assert "alpha 2026-11-09T08:00:00+00:00 delivered" in capsys.readouterr().out
    assert len(fake.messages()) == 1
    scheduler.services.store.engine.dispose()
