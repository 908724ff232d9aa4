"""Where alerts go in a Space: on a Chat API target with a live card, in the live card's thread (found with
``messages.get``); while that card is not posted yet, and on webhooks, one thread per incident (its
``threadKey``). Against the loopback Chat fake, through the tick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.chat import SCHEDULE, FakeChat
from tests.test_alert_tick import BAD, GOOD, alert_config, alerts_posted, scheduler_for, set_rows

T0 = datetime(2026, 11, 9, 9, 0, 30, tzinfo=UTC)
CHECK = timedelta(minutes=15)
LIVE = "client-alpha-day-20261109"
"""The live card of 2026-11-09 (UTC)."""


@pytest.fixture
def fake():
    chat = FakeChat()
    yield chat
    chat.close()


def live_config(folder: Path, fake: FakeChat, store_url: str, schedule: str | None) -> Path:
    """Team alpha with alerts, posting a live card to ``spaces/ALPHA`` and through a webhook to ``spaces/HOOK``."""
    path = alert_config(folder, fake, store_url, ["alpha"])
    data = yaml.safe_load(path.read_text())
    [team] = data["teams"]
    team["schedule"] = schedule
    team["deliver"] = [
        {"type": "chat_api", "space": "spaces/ALPHA", "live": "day"},
        {"type": "webhook", "url": fake.webhook_url("HOOK")},
    ]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def alert_requests(fake: FakeChat, space: str) -> list[Any]:
    return [
        r for r in fake.posts(space) if r.method == "POST" and r.query.get("messageId", "").startswith("client-alert")
    ]


def test_alerts_reply_in_the_live_cards_thread_and_webhooks_keep_one_thread_per_incident(tmp_path, fake, store_url):
    scheduler = scheduler_for(live_config(tmp_path, fake, store_url, SCHEDULE), store_url)
    set_rows(tmp_path, "alpha", GOOD)
    scheduler.tick(T0)  # the first reading; no slot is due at 09:00
    assert fake.messages("spaces/ALPHA") == []
    set_rows(tmp_path, "alpha", BAD)
    scheduler.tick(T0 + CHECK)  # the 09:15 slot updates the live card, then the check fires
    set_rows(tmp_path, "alpha", GOOD)
    scheduler.tick(T0 + 2 * CHECK)  # resolved

    card = next(m for m in fake.messages("spaces/ALPHA") if m["name"].endswith(LIVE))
    fire, resolve = alerts_posted(fake, "spaces/ALPHA")
    assert fire["thread"] == resolve["thread"] == card["thread"]
    assert [r.body["thread"] for r in alert_requests(fake, "spaces/ALPHA")] == [card["thread"]] * 2
    assert {r.query["messageReplyOption"] for r in alert_requests(fake, "spaces/ALPHA")} == {
        "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
    }
    assert fake.reads == [("spaces/ALPHA", LIVE)]  # a message's thread is asked once a process

    hooked = alert_requests(fake, "spaces/HOOK")
    assert [r.body["thread"] for r in hooked] == [{"threadKey": "alert-alpha-open-20261109091500"}] * 2
    fire_hook, resolve_hook = (
        m for m in fake.messages("spaces/HOOK") if m.get("cardsV2", [{}])[0].get("cardId", "").startswith("alert-")
    )
    assert (
        fire_hook["thread"] == resolve_hook["thread"] == {"name": "spaces/HOOK/threads/alert-alpha-open-20261109091500"}
    )
    scheduler.services.store.engine.dispose()


def test_before_the_live_card_is_posted_an_alert_keeps_its_incidents_own_thread(tmp_path, fake, store_url):
    scheduler = scheduler_for(live_config(tmp_path, fake, store_url, None), store_url)
    set_rows(tmp_path, "alpha", GOOD)
    scheduler.tick(T0)
    set_rows(tmp_path, "alpha", BAD)
    scheduler.tick(T0 + CHECK)

    [fire] = alerts_posted(fake, "spaces/ALPHA")
    assert fire["thread"] == {"name": "spaces/ALPHA/threads/alert-alpha-open-20261109091500"}
    [request] = alert_requests(fake, "spaces/ALPHA")
    assert request.body["thread"] == {"threadKey": "alert-alpha-open-20261109091500"}
    assert fake.reads == [("spaces/ALPHA", LIVE)]  # asked, not there (404): not remembered
    scheduler.services.store.engine.dispose()
