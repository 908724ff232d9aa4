"""Delivery hardening on the loopback fake of Chat: a slow answer is not a failed post, the claim is checked
before every send, a token endpoint's 503 is retried, pacing holds on the wire, a Retry-After outlives the tick."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.config import load_config
from bot.delivery import Delivery
from bot.schedule.claim import Claim, ClaimLost
from bot.schedule.tick import Scheduler
from bot.services import build_services
from bot.store import Store, metadata
from bot.store.migrate import upgrade
from tests.fakes.chat import FakeChat, write_config
from tests.test_migrations import at_revision
from tests.test_tick import Clock, run_cli

T0 = datetime(2026, 11, 9, 9, 0, 30, tzinfo=UTC)
SLOT = datetime(2026, 11, 9, 9, 1, tzinfo=UTC)


@pytest.fixture
def fake():
    chat = FakeChat()
    yield chat
    chat.close()


def make(tmp_path, fake, deliver, store_url=None, sleep=None, **settings):
    """A scheduler for team ``alpha`` posting to ``deliver``, ticked once at T0 (the schedule's start)."""
    path = write_config(tmp_path, fake, {"alpha": deliver}, **settings)
    clock = Clock(T0)
    services = build_services(load_config(path), clock=clock, store_url=store_url or f"sqlite:///{tmp_path / 's.db'}")
    options = {"backoff_seconds": 0.01, "pace_seconds": services.config.schedule.pace_seconds}
    delivery = Delivery(
        services.config.chat, services.store, clock, base_dir=tmp_path, **options, **({"sleep": sleep} if sleep else {})
    )
    scheduler = Scheduler(services, delivery=delivery)
    assert scheduler.tick(T0).outcomes == []
    return scheduler


def tick(scheduler, seconds_after_slot):
    moment = SLOT + timedelta(seconds=seconds_after_slot)
    scheduler.services.clock.now = moment
    return [(o.state, o.detail) for o in scheduler.tick(moment).outcomes]


def webhook(fake, space):
    return {"type": "webhook", "url": fake.webhook_url(space)}


@pytest.mark.parametrize("deadline", [1.55, 2.0, 2.45])
def test_a_slow_webhook_answer_near_the_deadline_is_posted_once(tmp_path, fake, deadline):
    for space in ("A", "B"):
        fake.slow(f"spaces/{space}", 1.5)  # each post lands at once; its answer takes 1.5 s
    scheduler = make(tmp_path, fake, [webhook(fake, "A"), webhook(fake, "B")], deadline_seconds=deadline)

    assert tick(scheduler, 5) == [("delivered", None)]  # B started with < 1 s of the deadline left
    assert tick(scheduler, 35) == tick(scheduler, 50) == []

    assert (len(fake.messages("spaces/A")), len(fake.messages("spaces/B"))) == (1, 1)
    assert [d.outcome for d in scheduler.services.store.deliveries("alpha")] == ["delivered", "delivered"]


def test_webhook_posts_carry_message_and_request_ids_and_a_409_counts_as_already(tmp_path):
    fake = FakeChat(webhook_ids=True)  # as if webhooks honoured messageId (unverified)
    try:
        scheduler = make(tmp_path, fake, [webhook(fake, "A")])
        fake._create("spaces/A", {"messageId": "client-alpha-20261109090100"}, {"text": "landed earlier"})

        assert tick(scheduler, 5) == [("delivered", None)]

        [post] = fake.posts("spaces/A")
        assert (post.query["messageId"], post.query["requestId"]) == ("client-alpha-20261109090100",) * 2
        assert post.query["key"] == "secret-key"
        assert len(fake.messages("spaces/A")) == 1
        assert [d.outcome for d in scheduler.services.store.deliveries("alpha")] == ["already"]
    finally:
        fake.close()


def test_a_slot_another_tick_claimed_is_not_taken_and_not_renewed(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    first, second = (Claim(store, "alpha", SLOT, owner, 60, lambda: SLOT + timedelta(seconds=5)) for owner in "AB")

    assert (first.take(), first.attempt) == (True, 1)
    assert (second.take(), second.attempt) == (False, 0)
    with pytest.raises(ClaimLost, match=r"^claim on alpha 2026-11-09T09:01:00\+00:00 lost: the lease ran out$"):
        second.keep()
    assert first.keep() == 60
    [run] = store.slot_runs("alpha")
    assert (run.state, run.claimed_by, run.attempts) == ("claimed", "A", 1)


def test_a_claim_taken_over_during_a_retry_wait_stops_the_send_and_is_reported_lost(tmp_path, fake):
    fake.answer("spaces/A", (429, {"Retry-After": "1"}))
    store_path = tmp_path / "s.db"

    def another_tick_takes_over(_seconds):  # while this process waits, its lease runs out and another claims
        Store(f"sqlite:///{store_path}").claim(
            "alpha", SLOT, "other", SLOT + timedelta(hours=1), SLOT + timedelta(hours=2)
        )

    scheduler = make(tmp_path, fake, [webhook(fake, "A")], sleep=another_tick_takes_over)

    [(state, detail)] = tick(scheduler, 5)

    assert state == "lost"
    assert "lease ran out" in detail
    assert len(fake.posts("spaces/A")) == 1  # the 429 only: nothing sent after the claim was lost
    assert fake.messages("spaces/A") == []
    [run] = scheduler.services.store.slot_runs("alpha")
    assert (run.state, run.claimed_by) == ("claimed", "other")
    assert [d.outcome for d in scheduler.services.store.deliveries("alpha")] == []


def test_a_process_that_lost_its_claim_during_a_slow_post_does_not_report_delivered(tmp_path, fake):
    slow = fake.slow("spaces/A", 1.0)
    scheduler = make(tmp_path, fake, [webhook(fake, "A")])
    store = scheduler.services.store

    def take_over():  # our lease (5 s) is over by 09:01:20 in the store's eyes; another tick claims until 09:01:21
        if slow.arrived.wait(10):
            store.claim("alpha", SLOT, "other", SLOT + timedelta(seconds=20), SLOT + timedelta(seconds=21))

    thief = threading.Thread(target=take_over)
    thief.start()
    [(state, detail)] = tick(scheduler, 5)
    thief.join()

    assert state == "lost"
    assert detail == "claim lost before the slot could be recorded delivered: another tick took it over"
    [run] = store.slot_runs("alpha")
    assert (run.state, run.claimed_by) == ("claimed", "other")
    # The post did land and is recorded, so whoever finishes the slot does not post it again:
    assert [d.outcome for d in store.deliveries("alpha")] == ["delivered"]
    del fake._slow["spaces/A"]
    assert tick(scheduler, 30) == [("delivered", None)]  # the other's lease ran out; this tick finishes it
    assert len(fake.posts("spaces/A")) == len(fake.messages("spaces/A")) == 1


def test_a_token_endpoint_failing_for_a_moment_is_retried_like_a_5xx(tmp_path, fake):
    # google-auth itself tries a token request 3 times (about 3 s); a 4th answer of 503 would still pass.
    fake.token_answers(503, 503, 503)
    scheduler = make(tmp_path, fake, [{"type": "chat_api", "space": "spaces/A"}], deadline_seconds=20, lease_seconds=30)

    assert tick(scheduler, 5) == [("delivered", None)]

    assert fake.token_requests == 4
    assert len(fake.messages("spaces/A")) == 1


def test_a_token_endpoint_refusing_the_key_is_not_retried(tmp_path, fake):
    fake.token_answers(400)
    scheduler = make(tmp_path, fake, [{"type": "chat_api", "space": "spaces/A"}])

    assert tick(scheduler, 5) == [("failed", "Chat API post to spaces/A: credentials refused (RefreshError)")]
    assert fake.token_requests == 1
    assert fake.posts() == []


def test_two_posts_to_one_space_are_paced_on_the_wire(tmp_path):
    fake = FakeChat(token_delay=0.3)  # a token fetch takes 0.3 s, before the first Chat API post
    try:
        deliver = [{"type": "chat_api", "space": "spaces/S"}, webhook(fake, "S")]
        scheduler = make(tmp_path, fake, deliver, pace_seconds=0.5)

        assert tick(scheduler, 5) == [("delivered", None)]

        first, second = sorted(p.at for p in fake.posts("spaces/S"))
        assert second - first >= 0.45  # measured where Chat counts them
    finally:
        fake.close()


def test_a_retry_after_longer_than_the_tick_is_kept_with_the_slot(tmp_path, fake, store_url, capsys):
    fake.answer("spaces/A", (429, {"Retry-After": "120"}))
    scheduler = make(tmp_path, fake, [webhook(fake, "A")], store_url=store_url, schedule="1 9 * * *")
    store = scheduler.services.store

    [(state, detail)] = tick(scheduler, 5)

    assert state == "pending"
    assert detail.endswith("(Retry-After)")
    [run] = store.slot_runs("alpha")
    assert SLOT + timedelta(seconds=124) <= run.retry_at <= SLOT + timedelta(seconds=127)
    assert tick(scheduler, 35) == tick(scheduler, 95) == []  # the next ticks do not retry early
    assert run_cli(scheduler.services, "history", "alpha") == 0
    history = capsys.readouterr().out
    assert "pending  attempts 1  webhook to spaces/A: HTTP 429" in history
    assert "(not retried before 2026-11-09 09:03:0" in history
    assert not store.claim("alpha", SLOT, "other", SLOT + timedelta(seconds=100), SLOT + timedelta(seconds=200))
    assert len(fake.posts("spaces/A")) == 1

    assert tick(scheduler, 130) == [("delivered", None)]
    assert len(fake.posts("spaces/A")) == 2
    assert [r.origin for r in store.recent_readings("alpha")] == ["retry", "post"]  # the second read was a retry
    [run] = store.slot_runs("alpha")
    assert (run.state, run.retry_at) == ("delivered", None)
    store.engine.dispose()


def test_a_store_from_before_retry_at_gets_the_column(store_url):
    old = Store(store_url)
    assert old.claim("alpha", SLOT, "one", T0, T0)
    at_revision(old.engine, "0001", "downgrade")  # the tables as the release before Alembic left them
    with old.engine.begin() as conn:  # back to the version-2 slot_runs table, with the slot in it
        conn.execute(sa.text("ALTER TABLE slot_runs DROP COLUMN retry_at"))
        conn.execute(sa.text("UPDATE schema_info SET version = 2"))
        conn.execute(sa.text("DROP TABLE alembic_version"))  # as before Alembic
    upgrade(old.engine)
    old.engine.dispose()

    store = Store(store_url)

    assert "retry_at" in {c["name"] for c in sa.inspect(store.engine).get_columns("slot_runs")}
    assert store.release("alpha", SLOT, "one", T0, "HTTP 429", retry_at=T0 + timedelta(minutes=2))
    assert store.slot_runs("alpha")[0].retry_at == T0 + timedelta(minutes=2)
    assert {t.name for t in metadata.sorted_tables} <= set(sa.inspect(store.engine).get_table_names())
    store.engine.dispose()
