"""`/score` keeps a team's card as JSON text and answers it again while nothing on it would read differently.

Each check compares what a worker that kept the card answers with what a cold worker (new services,
nothing loaded) answers at the same moment: equal means the kept card showed nothing stale. Whether the
card was kept or made again is seen in the worker's kept card (`bot.kept_cards`). Real SQLite files and
PostgreSQL, the app through Flask's test client with signed tokens, another process for a reading.
"""

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from bot.cards import Encoded
from bot.chat.events import Format
from bot.chat.replies import Reply, body_json, wrap
from bot.config import CHAT_ISSUER
from bot.kept_cards import KeptCard
from bot.store import POST, SCORE
from tests import payloads as p
from tests import test_kept_history as history
from tests.test_kept_history import NEW_YORK, NOW, REPO, Worker, add_critical_issue

TEAM = "customer"
setup = history.setup
"""The kept history's fixture: the demo's configuration and 60 days of history on one store, a clock, workers."""


def kept(worker: Worker) -> KeptCard | None:
    """The card the worker keeps for the customer team (None: none kept)."""
    cards = worker.services.kept_cards._cards
    return next((card for (team, *_), card in cards.items() if team == TEAM), None)


def cold(worker_factory) -> dict:
    """The card a worker that has loaded nothing answers now."""
    fresh = worker_factory()
    try:
        return fresh.score()
    finally:
        fresh.close()


def long_cache(folder: Path) -> None:
    """Readings shown for a day, so a kept card lives through minutes and hours of the clock."""
    data = yaml.safe_load((folder / "demo.yaml").read_text())
    for source in data["sources"].values():
        source["cache_seconds"] = 86_400
    (folder / "demo.yaml").write_text(yaml.safe_dump(data))


def test_a_kept_card_is_made_once_and_its_seconds_move_on(setup):
    worker, clock, _ = setup
    first = worker()
    worker().score()  # another worker reads the CSV and stores the reading
    clock.now += timedelta(seconds=5)
    first.score()
    card = kept(first)
    assert card is not None, "every KPI is shown from its stored reading: the card is kept"
    for seconds in (6, 13, 29, 45, 59):
        clock.now = NOW + timedelta(seconds=seconds)
        answer = first.score()
        assert kept(first) is card, "answered from the kept card"
        assert answer == cold(worker)
        assert f"read {seconds} s ago" in json.dumps(answer)


def test_the_cards_time_moves_on_in_a_kept_card(setup):
    worker, clock, folder = setup
    long_cache(folder)
    first = worker()
    clock.now = NOW + timedelta(seconds=30)
    worker().post(p.classic_click(TEAM))  # Refresh: read at 15:00:30
    clock.now += timedelta(seconds=5)
    first.score()
    card = kept(first)
    for seconds in (50, 59.5, 60, 61, 79):
        clock.now = NOW + timedelta(seconds=seconds)
        answer = first.score()
        assert kept(first) is card, "the card's time and the reading's seconds are filled in"
        assert answer == cold(worker)
        assert f"{NOW.astimezone(NEW_YORK) + timedelta(seconds=seconds):%Y-%m-%d %H:%M} EST" in json.dumps(answer)
    clock.now = NOW + timedelta(seconds=90)
    answer = first.score()
    assert answer == cold(worker) and kept(first) is not card
    assert "read 1 min ago" in json.dumps(answer)


def test_time_passing_makes_the_card_again_when_a_text_would_change(setup):
    """Over 70 minutes, one request every 100 s (every 17 s at first): each answer reads as a cold worker's
    ("read 1 h 8 min ago" moves on every minute of the reading's age)."""
    worker, clock, folder = setup
    long_cache(folder)
    first = worker()
    worker().score()
    moments = [timedelta(seconds=s) for s in [*range(1, 200, 17), *range(200, 4200, 100)]]
    cards = []
    for moment in moments:
        clock.now = NOW + moment
        answer = first.score()
        assert answer == cold(worker), f"{moment} after the reading"
        card = kept(first)
        assert card is not None and card.since <= clock.now < card.until
        cards.append(card)
    taken = first.services.store.latest_readings(TEAM)["open-issues"].taken_at
    hours, minutes = divmod(int((clock.now - taken).total_seconds()) // 60, 60)
    assert hours >= 1 and f"read {hours} h {minutes} min ago" in json.dumps(answer), "the age in hours and minutes"
    assert len({id(card) for card in cards[:12]}) < 12, "kept between some of the requests"


def test_a_reading_from_another_process_shows_on_the_next_request(setup, store_url):
    worker, clock, folder = setup
    first = worker()
    worker().score()
    clock.now += timedelta(seconds=5)
    before = first.score()
    assert kept(first) is not None
    add_critical_issue(folder)
    script = (
        "import sys; from datetime import datetime; from bot.config import load_config;"
        " from bot.services import build_services; from bot.store import REFRESH;"
        " s = build_services(load_config(sys.argv[1]), clock=lambda: datetime.fromisoformat(sys.argv[2]));"
        " s.report(s.config.team('customer'), REFRESH); s.store.engine.dispose()"
    )
    at = clock.now + timedelta(seconds=1)
    env = {**os.environ, "PYTHONPATH": str(REPO), "SCOREBOT_STORE": store_url}
    command = [sys.executable, "-c", script, str(folder / "demo.yaml"), at.isoformat()]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    clock.now += timedelta(seconds=2)
    after = first.score()
    assert after == cold(worker) != before
    assert "<b>95</b>" in json.dumps(after) and "<b>85</b>" in json.dumps(before)


def test_a_post_shows_on_the_next_request(setup):
    worker, clock, _ = setup
    first, second = worker(), worker()
    second.score()
    clock.now += timedelta(seconds=5)
    before = first.score()
    card = kept(first)
    assert card is not None
    clock.now += timedelta(seconds=1)
    posted_at, store = clock.now, second.services.store
    reading = store.latest_readings(TEAM)["open-issues"]
    store.add_readings([replace(reading, taken_at=posted_at, origin=POST, slot=posted_at)])
    store.record_delivery(TEAM, posted_at, "log", "delivered", posted_at)
    clock.now += timedelta(seconds=1)
    after = first.score()
    assert kept(first) is not card
    assert after == cold(worker) != before
    posted = f"vs last post today {posted_at.astimezone(NEW_YORK):%H:%M}"
    assert posted in json.dumps(after) and posted not in json.dumps(before)


def test_a_changed_team_configuration_makes_the_card_again(setup):
    worker, clock, _ = setup
    first = worker()
    worker().score()
    clock.now += timedelta(seconds=5)
    services = first.services
    team = services.config.team(TEAM)
    zone = services.config.zone(team).key

    def card_of(which) -> dict:
        answer = services.kept_cards.card(which, zone, None, False, lambda: services.report(which, SCORE, cached=True))
        return json.loads(answer.json) if isinstance(answer, Encoded) else answer

    original = card_of(team)
    renamed = team.model_copy(update={"name": "Renamed Customers"})
    assert "Renamed Customers" in json.dumps(card_of(renamed))
    assert card_of(team) == original and "Renamed Customers" not in json.dumps(original)


def test_a_bad_token_is_refused_while_the_card_is_kept(setup, token_factory):
    worker, clock, _ = setup
    first = worker()
    worker().score()
    clock.now += timedelta(seconds=5)
    good = first.score()
    assert kept(first) is not None
    now = int(NOW.timestamp())
    bad = [
        token_factory.sign_with_unknown_key(iss=CHAT_ISSUER, aud="42", iat=now, exp=now + 3600),
        token_factory.sign(iss=CHAT_ISSUER, aud="43", iat=now, exp=now + 3600),
        token_factory.sign(iss=CHAT_ISSUER, aud="42", iat=now - 7200, exp=now - 3600),
    ]
    body = json.dumps(p.classic_slash())
    for token in [*bad, "not a token"]:
        headers = {"Authorization": f"Bearer {token}"}
        refused = first.client.post("/", data=body, headers=headers, content_type="application/json")
        assert refused.status_code == 401 and "cardsV2" not in refused.get_data(as_text=True)
    missing = first.client.post("/", data=body, content_type="application/json")
    assert missing.status_code == 401
    assert first.score() == good


def test_an_item_title_holding_the_slot_characters_is_shown_as_written(setup):
    worker, clock, folder = setup
    csv = folder / "demo-issues.csv"
    lines = csv.read_text().splitlines()
    critical = next(line for line in lines if ",customer," in line and ",Critical," in line and ",Open," in line)
    fields = critical.split(",")
    fields[0], fields[1] = "ISS-9998", "Odd \ue000open-issues\ue001 title"
    csv.write_text("\n".join([*lines, ",".join(fields)]) + "\n")
    first = worker()
    worker().score()
    for seconds in (5, 9):
        clock.now = NOW + timedelta(seconds=seconds)
        answer = first.score()
        assert answer == cold(worker)
        assert "Odd \ue000open-issues\ue001 title" in json.dumps(answer, ensure_ascii=False)
    assert kept(first) is None, "a card whose text holds the slot characters is made on every request"


MESSAGE = {"text": 'Ünïcode ✓ and "quotes"', "cardsV2": [{"cardId": "c", "card": {"sections": []}}]}


@pytest.mark.parametrize("event_format", list(Format))
@pytest.mark.parametrize("update", [False, True])
@pytest.mark.parametrize("viewer", [None, "users/123", "users/" + "v" * 31_990])
def test_an_encoded_message_is_sent_as_wrap_sends_the_message(event_format, update, viewer):
    encoded = Reply(Encoded(json.dumps(MESSAGE, separators=(",", ":"))), update=update)
    expected = wrap(Reply(MESSAGE, update=update), event_format, viewer)
    assert json.loads(body_json(encoded, event_format, viewer)) == expected
    assert json.loads(body_json(Reply(MESSAGE, update=update), event_format, viewer)) == expected
