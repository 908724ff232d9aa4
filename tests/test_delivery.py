"""Delivery to the loopback fake of Chat: webhooks and the Chat API, retries, 409, 404, unexpected errors,
pacing, message ids."""

import itertools
import json
import logging
import random
import re
import socket
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.config import ChatApiTarget, WebhookTarget, load_config
from bot.delivery import Delivery, Post, manual_message_id, message_id
from bot.errors import DeliveryError
from bot.http_headers import retry_after_seconds
from bot.schedule.tick import Scheduler
from bot.services import build_services
from bot.sources import Deadline
from bot.store import POST
from tests.chat_schema import validate_message
from tests.fakes.chat import ACCESS_TOKEN, FakeChat, write_config

T0 = datetime(2026, 11, 9, 9, 0, 30, tzinfo=UTC)
SLOT = datetime(2026, 11, 9, 9, 1, tzinfo=UTC)
MESSAGE_ID = re.compile(r"^client-[a-z0-9-]+$")


@pytest.fixture
def fake():
    chat = FakeChat()
    yield chat
    chat.close()


def make_scheduler(tmp_path, fake, teams, delivery_options=None, **settings):
    services = build_services(load_config(write_config(tmp_path, fake, teams, **settings)))
    options = {"backoff_seconds": 0.01, "pace_seconds": services.config.schedule.pace_seconds} | (
        delivery_options or {}
    )
    delivery = Delivery(services.config.chat, services.store, services.clock, base_dir=tmp_path, **options)
    return Scheduler(services, delivery=delivery)


def delivery_alone(tmp_path, fake, deliver, **options):
    """A Delivery without pacing on a one-team config (``deliver``: alpha's targets), and a post of SLOT."""
    config = load_config(write_config(tmp_path, fake, {"alpha": deliver}))
    services = build_services(config)
    delivery = Delivery(config.chat, services.store, services.clock, pace_seconds=0, base_dir=tmp_path, **options)
    return delivery, Post("alpha", SLOT, {"text": "x"}, message_id("alpha", SLOT)), config


def first_slot(scheduler):
    """Tick once to start the schedule, then at 09:01:30 when the 09:01 slot is due."""
    assert scheduler.tick(T0).outcomes == []
    return scheduler.tick(T0 + timedelta(minutes=1))


def states(result):
    return {o.team_id: o.state for o in result.outcomes}


@pytest.mark.parametrize("kind", ["webhook", "chat_api"])
def test_429_then_success_posts_once_after_the_advertised_wait(tmp_path, fake, kind):
    target = {"type": "webhook", "url": fake.webhook_url("A")} if kind == "webhook" else {"type": kind}
    if kind == "chat_api":
        target["space"] = "spaces/A"
    fake.answer("spaces/A", (429, {"Retry-After": "1"}))
    scheduler = make_scheduler(tmp_path, fake, {"alpha": [target]})

    result = first_slot(scheduler)

    assert states(result) == {"alpha": "delivered"}
    posts = fake.posts("spaces/A")
    assert len(posts) == 2
    assert len(fake.messages("spaces/A")) == 1
    assert posts[1].at - posts[0].at >= 1.0
    assert [d.outcome for d in scheduler.services.store.deliveries("alpha")] == ["delivered"]


def test_a_webhook_off_the_chat_form_is_named_by_a_hash_of_its_url_never_by_its_key(tmp_path, fake):
    url = f"{fake.url}hooks/alpha?key=hook-key-91d2&token=hook-token-7e40"  # not /v1/spaces/…/messages
    scheduler = make_scheduler(tmp_path, fake, {"alpha": [{"type": "webhook", "url": url}]})

    result = first_slot(scheduler)

    assert states(result) == {"alpha": "failed"}  # the fake knows no such path: 404
    [record] = scheduler.services.store.deliveries("alpha")
    assert re.fullmatch(r"webhook:webhook-[0-9a-f]{12}", record.target)
    assert record.outcome == "rejected"
    assert record.detail.startswith(f"webhook to {record.target.removeprefix('webhook:')}: ")
    stored = f"{record} {result.outcomes}"
    assert "hook-key-91d2" not in stored and "hook-token-7e40" not in stored and "hooks/alpha" not in stored


def test_a_space_failing_every_time_gets_6_tries_with_backoff_windows_doubling_from_1_s(tmp_path, fake, monkeypatch):
    monkeypatch.setattr(random, "uniform", lambda low, high: (low + high) / 2)  # each wait mid-window
    fake.answer("spaces/A", *[(500, {})] * 7)
    waits: list[float] = []
    delivery, post, _ = delivery_alone(tmp_path, fake, [], sleep=waits.append)

    with pytest.raises(DeliveryError, match=r"^Chat API post to spaces/A: HTTP 500 \(SCRIPTED\)$"):
        delivery.send(ChatApiTarget(type="chat_api", space="spaces/A"), post, Deadline.after(60))

    assert len(fake.posts("spaces/A")) == 6
    assert waits == [0.5, 1, 2, 4, 8]  # no wait stretched to a floor when no Retry-After came


@pytest.mark.parametrize(("lease_left", "timeout"), [(0.3, 0.3), (0.02, 0.1)])
def test_a_requests_timeout_is_cut_to_the_claims_lease_but_never_below_a_tenth_of_a_second(
    tmp_path, fake, lease_left, timeout
):
    fake.slow("spaces/A", 0.6)
    delivery, post, _ = delivery_alone(tmp_path, fake, [], max_attempts=1)
    target = WebhookTarget(type="webhook", url=fake.webhook_url("A"))

    started = time.monotonic()
    with pytest.raises(DeliveryError, match=r"^webhook to spaces/A: ReadTimeout$"):
        delivery.send(target, post, Deadline.after(30), lambda: lease_left)

    assert time.monotonic() - started >= timeout  # given up before the answer came (0.6 s), not sooner


def test_a_chat_api_request_that_timed_out_is_retried_and_finds_its_message_there(tmp_path, fake):
    hang = fake.hang("spaces/A", landed=True)  # the first request's message is stored; its answer never comes
    deliver = [{"type": "chat_api", "space": "spaces/A"}]
    delivery, post, config = delivery_alone(tmp_path, fake, deliver, backoff_seconds=0.01)

    sent = delivery.send(config.teams[0].deliver[0], post, Deadline.after(30), lambda: 0.2)
    hang.release.set()

    assert sent.already is True  # the retry was answered 409: the first request had landed
    assert (len(fake.posts("spaces/A")), len(fake.messages("spaces/A"))) == (2, 1)


def test_server_errors_are_retried_with_backoff(tmp_path, fake):
    fake.answer("spaces/A", (500, {}), (503, {}))
    scheduler = make_scheduler(tmp_path, fake, {"alpha": [{"type": "webhook", "url": fake.webhook_url("A")}]})

    assert states(first_slot(scheduler)) == {"alpha": "delivered"}
    assert len(fake.posts("spaces/A")) == 3
    assert len(fake.messages("spaces/A")) == 1


@pytest.mark.parametrize(("kind", "detail"), [("UNAVAILABLE", "HTTP 503 (UNAVAILABLE)"), ("see key=k-51", "HTTP 503")])
def test_a_failures_kind_is_reported_only_when_it_is_a_status_word(tmp_path, fake, kind, detail):
    fake.always("spaces/A", 503)
    fake.scripted_status = kind
    scheduler = make_scheduler(tmp_path, fake, {"alpha": [{"type": "chat_api", "space": "spaces/A"}]})

    result = first_slot(scheduler)

    assert [o.detail for o in result.outcomes] == [f"Chat API post to spaces/A: {detail}"]


@pytest.mark.parametrize(
    ("status", "posts", "state"), [(428, 1, "failed"), (429, 2, "delivered"), (499, 1, "failed"), (500, 2, "delivered")]
)
def test_429_and_5xx_are_retried_other_errors_are_not(tmp_path, fake, status, posts, state):
    fake.answer("spaces/A", (status, {}))
    scheduler = make_scheduler(tmp_path, fake, {"alpha": [{"type": "webhook", "url": fake.webhook_url("A")}]})

    assert states(first_slot(scheduler)) == {"alpha": state}
    assert len(fake.posts("spaces/A")) == posts


def test_a_deleted_webhook_is_reported_and_the_other_teams_still_get_theirs(tmp_path, fake, caplog):
    fake.always("spaces/GONE", 404)
    teams = {
        "alpha": [{"type": "webhook", "url": fake.webhook_url("GONE")}],
        "beta": [{"type": "webhook", "url": fake.webhook_url("B")}],
        "gamma": [{"type": "chat_api", "space": "spaces/C"}],
    }
    scheduler = make_scheduler(tmp_path, fake, teams)
    caplog.set_level(logging.INFO)

    result = first_slot(scheduler)

    assert states(result) == {"alpha": "failed", "beta": "delivered", "gamma": "delivered"}
    assert len(fake.posts("spaces/GONE")) == 1  # a 404 is not retried
    assert len(fake.messages("spaces/B")) == len(fake.messages("spaces/C")) == 1
    store = scheduler.services.store
    [run] = store.slot_runs("alpha")
    assert run.state == "failed"
    assert "HTTP 404" in (run.detail or "")
    [attempt] = store.deliveries("alpha")
    assert (attempt.target, attempt.outcome) == ("webhook:spaces/GONE", "rejected")
    # The failure is final: the next tick does not try the slot again.
    assert scheduler.tick(T0 + timedelta(minutes=1, seconds=20)).outcomes == []
    assert len(fake.posts("spaces/GONE")) == 1
    assert "spaces/GONE" in caplog.text
    assert "secret-token" not in caplog.text
    assert "secret-key" not in caplog.text


def test_chat_api_posts_through_the_client_with_a_client_message_id(tmp_path, fake):
    teams = {
        "alpha": [{"type": "chat_api", "space": "spaces/A", "thread": "{team}-{iso_week}"}],
        "beta": [{"type": "webhook", "url": fake.webhook_url("B"), "thread": "{team}-{iso_week}"}],
    }
    scheduler = make_scheduler(tmp_path, fake, teams)

    first_slot(scheduler)

    [api] = fake.posts("spaces/A")
    assert api.path == "/v1/spaces/A/messages"
    assert api.query["messageId"] == "client-alpha-20261109090100"
    assert MESSAGE_ID.match(api.query["messageId"])
    assert api.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"  # token from the fake's token_uri
    assert fake.token_requests == 1
    assert api.query["messageReplyOption"] == "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
    assert api.body["thread"] == {"threadKey": "alpha-2026-W46"}
    assert validate_message(api.body) == []
    buttons = api.body["cardsV2"][0]["card"]["sections"][-1]["widgets"][0]["buttonList"]["buttons"]
    assert buttons[0]["onClick"]["action"]["function"] == "refresh"

    [hook] = fake.posts("spaces/B")
    assert validate_message(hook.body) == []
    assert hook.query["key"] == "secret-key"
    assert hook.query["messageReplyOption"] == "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
    assert hook.body["thread"] == {"threadKey": "beta-2026-W46"}
    assert '"action"' not in json.dumps(hook.body)  # a webhook cannot receive clicks: openLink buttons only
    assert fake.messages("spaces/B")[0]["thread"]["name"] == "spaces/B/threads/beta-2026-W46"


def test_a_repeated_message_id_is_answered_409_and_counts_as_delivered(tmp_path, fake):
    scheduler = make_scheduler(tmp_path, fake, {"alpha": [{"type": "chat_api", "space": "spaces/A"}]})
    target = scheduler.services.config.teams[0].deliver[0]
    # A post that landed, but whose process died before recording it:
    report = scheduler.services.report(scheduler.services.config.teams[0], POST, slot=SLOT)
    post = scheduler.post_for(scheduler.services.config.teams[0], SLOT, report, target)
    assert scheduler.delivery.send(target, post, Deadline.after(5)).already is False

    result = first_slot(scheduler)

    assert states(result) == {"alpha": "delivered"}
    assert len(fake.posts("spaces/A")) == 2
    assert len(fake.messages("spaces/A")) == 1
    assert [d.outcome for d in scheduler.services.store.deliveries("alpha")] == ["already"]


def test_retries_stop_before_the_deadline(tmp_path, fake):
    fake.always("spaces/A", 503)
    fake.answer("spaces/A", (503, {"Retry-After": "30"}))
    scheduler = make_scheduler(tmp_path, fake, {"alpha": [{"type": "chat_api", "space": "spaces/A"}]})
    target = scheduler.services.config.teams[0].deliver[0]
    post = Post("alpha", SLOT, {"text": "hello"}, message_id("alpha", SLOT))

    started = time.monotonic()
    with pytest.raises(DeliveryError, match=r"^Chat API post to spaces/A: HTTP 503") as caught:
        scheduler.delivery.send(target, post, Deadline.after(2))

    assert time.monotonic() - started < 2
    assert caught.value.retryable
    assert caught.value.retry_after == 30
    assert len(fake.posts("spaces/A")) == 1  # waiting 30 s would pass the deadline


def test_connection_errors_are_retryable_and_never_show_the_webhook_url(tmp_path, fake, caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1/spaces/DOWN/messages?key=secret-key&token=secret-token"
    scheduler = make_scheduler(tmp_path, fake, {"alpha": [{"type": "webhook", "url": url}]})
    caplog.set_level(logging.DEBUG, logger="bot")

    with pytest.raises(DeliveryError, match=r"^webhook to spaces/DOWN: ConnectionError$") as caught:
        scheduler.delivery.send(WebhookTarget(type="webhook", url=url), Post("alpha", SLOT, {}, "x"), Deadline.after(1))

    assert caught.value.retryable
    assert "spaces/DOWN" in str(caught.value)
    assert "secret" not in str(caught.value)
    assert "secret" not in caplog.text


def test_errors_other_than_connection_errors_fail_the_slot_not_the_tick_and_never_show_the_secret(
    tmp_path, fake, caplog
):
    secret = "TOPSECRET-9b2e"
    bad_port = f"http://127.0.0.1:99999/v1/spaces/BAD/messages?key=secret-key&token={secret}"  # requests: InvalidURL
    teams = {
        "alpha": [{"type": "webhook", "url": bad_port}],
        "beta": [{"type": "chat_api", "space": "spaces/B"}],
        "gamma": [{"type": "webhook", "url": fake.webhook_url("C")}],
    }
    scheduler = make_scheduler(tmp_path, fake, teams)
    (tmp_path / "service-account.json").unlink()  # the Chat API key file is missing
    caplog.set_level(logging.DEBUG)

    result = first_slot(scheduler)

    assert states(result) == {"alpha": "failed", "beta": "failed", "gamma": "delivered"}
    assert len(fake.messages("spaces/C")) == 1
    store = scheduler.services.store
    attempts = {d.target: (d.outcome, d.detail) for team in teams for d in store.deliveries(team)}
    assert attempts["webhook:spaces/BAD"] == ("rejected", "webhook to spaces/BAD: InvalidURL")
    assert attempts["chat_api:spaces/B"] == (
        "rejected",
        "Chat API post to spaces/B: credentials unusable (FileNotFoundError)",
    )
    details = [r.detail or "" for team in teams for r in store.slot_runs(team)]
    assert secret not in caplog.text + " ".join(details)


@pytest.mark.parametrize("content", ["not json", '{"type": "service_account"}'])
def test_a_malformed_key_file_is_a_delivery_error_not_retried(tmp_path, fake, content):
    scheduler = make_scheduler(tmp_path, fake, {"alpha": [{"type": "chat_api", "space": "spaces/A"}]})
    (tmp_path / "service-account.json").write_text(content)
    target = scheduler.services.config.teams[0].deliver[0]

    with pytest.raises(
        DeliveryError, match=r"^Chat API post to spaces/A: credentials unusable \((JSONDecodeError|MalformedError)\)$"
    ) as caught:
        scheduler.delivery.send(
            target, Post("alpha", SLOT, {"text": "hi"}, message_id("alpha", SLOT)), Deadline.after(5)
        )

    assert not caught.value.retryable
    assert fake.posts() == []


def test_posts_to_one_space_are_paced(tmp_path, fake):
    teams = {name: [{"type": "webhook", "url": fake.webhook_url("SHARED")}] for name in ("alpha", "beta", "gamma")}
    scheduler = make_scheduler(tmp_path, fake, teams, pace_seconds=0.3)

    assert states(first_slot(scheduler)) == dict.fromkeys(teams, "delivered")

    times = sorted(p.at for p in fake.posts("spaces/SHARED"))
    assert len(times) == 3
    assert all(later - earlier >= 0.25 for earlier, later in itertools.pairwise(times))


def test_a_webhook_and_a_chat_api_post_to_one_space_are_paced_together(tmp_path, fake):
    both = [{"type": "webhook", "url": fake.webhook_url("SHARED")}, {"type": "chat_api", "space": "spaces/SHARED"}]
    scheduler = make_scheduler(tmp_path, fake, {"alpha": both}, pace_seconds=0.3)

    assert states(first_slot(scheduler)) == {"alpha": "delivered"}

    first, second = sorted(p.at for p in fake.posts("spaces/SHARED"))
    assert second - first >= 0.25


def test_the_log_target_writes_the_console_and_the_outbox(tmp_path, fake, caplog):
    scheduler = make_scheduler(tmp_path, fake, {"alpha": [{"type": "log"}]})
    caplog.set_level(logging.INFO, logger="bot")

    assert states(first_slot(scheduler)) == {"alpha": "delivered"}

    [entry] = scheduler.services.store.outbox("alpha")
    assert entry.slot == SLOT
    assert entry.message["cardsV2"][0]["card"]["header"]["title"].endswith("Alpha")
    assert "scheduled post for alpha" in caplog.text
    assert fake.posts() == []


def test_retry_after_in_seconds_or_as_an_http_date():
    now = datetime(2026, 11, 9, 9, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7", now) == 7
    assert retry_after_seconds("Mon, 09 Nov 2026 09:00:12 GMT", now) == 12
    assert retry_after_seconds("Mon, 09 Nov 2026 08:00:00 GMT", now) == 0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_message_ids_fit_the_chat_api_rules_for_the_longest_team_id():
    mid = message_id("t" * 40, datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert len(mid) <= 63
    assert MESSAGE_ID.match(mid)
    # The slot's UTC instant, whatever zone it is given in:
    berlin = datetime(2026, 11, 9, 10, 1, tzinfo=UTC).astimezone(ZoneInfo("Europe/Berlin"))
    assert message_id("alpha", berlin) == "client-alpha-20261109100100"


def test_manual_message_ids_fit_the_rules_and_differ_each_time():
    moment = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    longest = manual_message_id("t" * 40, moment)
    assert len(longest) <= 63
    assert MESSAGE_ID.match(longest)
    assert re.fullmatch(r"client-alpha-1231235959-[0-9a-f]{4}", manual_message_id("alpha", moment))
    assert len({manual_message_id("alpha", moment) for _ in range(20)}) > 1
