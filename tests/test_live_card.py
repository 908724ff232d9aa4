"""One live card per period: the period's first scheduled post creates a `client-` message, later posts and
Refresh clicks update it in place (`messages.patch` with `allowMissing`), against the loopback Chat API fake."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.app import create_app
from bot.config import load_config
from bot.delivery import Delivery, live_message_id
from bot.errors import ConfigError
from bot.schedule.tick import Scheduler
from bot.services import build_services
from tests import payloads as p
from tests.chat_schema import validate_message
from tests.fakes.chat import CLIENT_ID, FakeChat, write_config

T0 = datetime(2026, 11, 9, 9, 0, 30, tzinfo=UTC)
LIVE_ID = "client-alpha-day-20261109"
LIVE_NAME = f"spaces/A/messages/{LIVE_ID}"
LIVE_TARGET = {"type": "chat_api", "space": "spaces/A", "live": "day"}


@pytest.fixture
def fake():
    chat = FakeChat()
    yield chat
    chat.close()


class Clock:
    """A settable clock for the services (the tick is given its own ``now``)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_scheduler(tmp_path, fake, clock, deliver=(LIVE_TARGET,), owner=None, **settings):
    path = write_config(tmp_path, fake, {"alpha": list(deliver)}, **settings)
    services = build_services(load_config(path), clock=clock)
    delivery = Delivery(
        services.config.chat, services.store, clock, base_dir=tmp_path, backoff_seconds=0.01, pace_seconds=1.0
    )
    return Scheduler(services, delivery=delivery, owner=owner)


def tick(scheduler, clock, minutes):
    clock.now = T0 + timedelta(minutes=minutes)
    return {o.state for o in scheduler.tick(clock.now).outcomes}


def set_open_items(tmp_path, priorities):
    rows = "".join(f"Open,{priority}\n" for priority in priorities)
    (tmp_path / "alpha.csv").write_text("status,priority\n" + rows)


def test_the_first_post_creates_the_live_card_and_later_posts_update_it(tmp_path, fake):
    clock = Clock(T0)
    scheduler = make_scheduler(tmp_path, fake, clock)
    assert tick(scheduler, clock, 0) == set()

    assert tick(scheduler, clock, 1) == {"delivered"}
    set_open_items(tmp_path, ["High"] * 5)
    assert tick(scheduler, clock, 2) == {"delivered"}

    first, second = fake.posts("spaces/A")
    for request in (first, second):
        assert (request.method, request.path) == ("PATCH", f"/v1/{LIVE_NAME}")
        assert request.query == {"updateMask": "text,cardsV2", "allowMissing": "true", "alt": "json"}
        assert validate_message(request.body) == []
    [message] = fake.messages("spaces/A")
    assert message["name"] == LIVE_NAME
    assert message["text"] == second.body["text"] != first.body["text"]
    assert "25" in message["text"]  # five High items × 5: the second post's numbers
    deliveries = scheduler.services.store.deliveries("alpha")
    assert [(d.outcome, d.message_id) for d in deliveries] == [("delivered", LIVE_ID)] * 2


def test_each_period_gets_its_own_live_card(tmp_path, fake):
    clock = Clock(T0)
    scheduler = make_scheduler(tmp_path, fake, clock)
    tick(scheduler, clock, 0)
    tick(scheduler, clock, 1)

    assert "delivered" in tick(scheduler, clock, 24 * 60 + 1)  # 09:01 the next day (the rest of the 9th: missed)

    names = sorted(m["name"] for m in fake.messages("spaces/A"))
    assert names == [LIVE_NAME, "spaces/A/messages/client-alpha-day-20261110"]


def test_a_deleted_live_card_is_created_again_by_the_next_post(tmp_path, fake):
    clock = Clock(T0)
    scheduler = make_scheduler(tmp_path, fake, clock)
    tick(scheduler, clock, 0)
    tick(scheduler, clock, 1)
    fake.delete("spaces/A", LIVE_ID)
    assert fake.messages("spaces/A") == []

    assert tick(scheduler, clock, 2) == {"delivered"}

    [message] = fake.messages("spaces/A")
    assert message["name"] == LIVE_NAME
    assert [r.method for r in fake.posts("spaces/A")] == ["PATCH", "PATCH"]


def test_a_refresh_click_on_the_live_card_updates_that_message(tmp_path, fake):
    clock = Clock(T0)
    scheduler = make_scheduler(tmp_path, fake, clock)
    tick(scheduler, clock, 0)
    tick(scheduler, clock, 1)
    client = create_app(services=scheduler.services, allow_unverified=True).test_client()
    set_open_items(tmp_path, ["Low"] * 7)
    clock.now = T0 + timedelta(minutes=1, seconds=40)

    click = p.classic_click("alpha", space={"name": "spaces/A", "spaceType": "SPACE"}, message_name=LIVE_NAME)
    response = client.post("/", data=json.dumps(click), content_type="application/json")

    reply = response.get_json()
    assert reply["actionResponse"]["type"] == "UPDATE_MESSAGE"
    _, refresh = fake.posts("spaces/A")
    assert (refresh.method, refresh.path) == ("PATCH", f"/v1/{LIVE_NAME}")
    assert refresh.query["updateMask"] == "text,cardsV2"
    [message] = fake.messages("spaces/A")
    assert message["cardsV2"] == reply["cardsV2"]
    assert "7" in message["text"]  # seven Low items × 1: the click's fresh numbers


def test_a_refresh_click_on_another_card_updates_only_that_card(tmp_path, fake):
    clock = Clock(T0)
    scheduler = make_scheduler(tmp_path, fake, clock)
    tick(scheduler, clock, 0)
    tick(scheduler, clock, 1)
    client = create_app(services=scheduler.services, allow_unverified=True).test_client()
    yesterday = "spaces/A/messages/client-alpha-day-20261108"

    for name in ("spaces/A/messages/m2", yesterday):
        click = p.classic_click("alpha", space={"name": "spaces/A", "spaceType": "SPACE"}, message_name=name)
        reply = client.post("/", data=json.dumps(click), content_type="application/json").get_json()
        assert reply["actionResponse"]["type"] == "UPDATE_MESSAGE"

    assert len(fake.posts("spaces/A")) == 1  # only the scheduled post


def test_two_ticks_at_once_leave_one_message(tmp_path, fake):
    clock = Clock(T0)
    first = make_scheduler(tmp_path, fake, clock, owner="one")
    second = Scheduler(
        build_services(first.services.config, clock=clock),
        delivery=Delivery(first.services.config.chat, first.services.store, clock, base_dir=tmp_path, pace_seconds=1.0),
        owner="two",
    )
    tick(first, clock, 0)
    for minutes in (1, 2):
        clock.now = T0 + timedelta(minutes=minutes)
        start = threading.Barrier(2)

        def run(scheduler, start=start):
            start.wait(timeout=5)
            return scheduler.tick(clock.now).outcomes

        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(run, (first, second)))
        assert sorted(o.state for outcomes in results for o in outcomes) == ["delivered"]

    assert len(fake.posts("spaces/A")) == 2  # one update per slot, whichever tick claimed it
    [message] = fake.messages("spaces/A")
    assert message["name"] == LIVE_NAME


def test_racing_creates_of_one_live_card_are_retried_as_an_update(tmp_path, fake):
    clock = Clock(T0)
    scheduler = make_scheduler(tmp_path, fake, clock)
    fake.answer("spaces/A", (409, {}))  # another writer created the card between our check and our create
    tick(scheduler, clock, 0)

    assert tick(scheduler, clock, 1) == {"delivered"}

    assert [r.method for r in fake.posts("spaces/A")] == ["PATCH", "PATCH"]
    assert len(fake.messages("spaces/A")) == 1


def test_live_off_still_posts_a_new_message_per_slot(tmp_path, fake):
    clock = Clock(T0)
    scheduler = make_scheduler(tmp_path, fake, clock, deliver=[{"type": "chat_api", "space": "spaces/A"}])
    tick(scheduler, clock, 0)
    tick(scheduler, clock, 1)
    tick(scheduler, clock, 2)

    assert [r.method for r in fake.posts("spaces/A")] == ["POST", "POST"]
    assert len(fake.messages("spaces/A")) == 2


def test_live_card_ids_follow_the_teams_zone_and_the_chat_api_rules():
    new_york = ZoneInfo("America/New_York")
    late = datetime(2026, 11, 10, 3, 0, tzinfo=UTC).astimezone(new_york)  # still the 9th in New York
    assert live_message_id("alpha", "day", late) == "client-alpha-day-20261109"
    assert live_message_id("alpha", "week", late) == "client-alpha-week-2026-46"
    new_year = datetime(2027, 1, 1, 12, tzinfo=UTC)  # ISO week 53 of 2026
    assert live_message_id("alpha", "week", new_year) == "client-alpha-week-2026-53"
    for live in ("day", "week"):
        assert CLIENT_ID.fullmatch(live_message_id("t" * 40, live, late))


def test_a_live_card_cannot_also_be_threaded(tmp_path, fake):
    target = LIVE_TARGET | {"thread": "{team}-{iso_week}"}
    path = write_config(tmp_path, fake, {"alpha": [target]})

    with pytest.raises(ConfigError, match=r"deliver\[0\]: a live card is one message updated in place"):
        load_config(path)
