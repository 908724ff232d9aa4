"""Pacing where Chat counts the posts: arrival times at a loopback Space, when a request is held up on its
way. The next post to a Space starts a pace after the previous one was answered, so it cannot arrive
sooner than a pace after it, however late that one arrived; and no later than a bounded margin more."""

import itertools

import pytest

from tests.fakes.chat import FakeChat
from tests.test_delivery import first_slot, make_scheduler, states

PACE = 0.5
MARGIN = 0.45
"""What may come on top of the pace between two arrivals: the answer's way back and the next request's way
out, on a busy machine."""


@pytest.fixture
def fake():
    chat = FakeChat()
    yield chat
    chat.close()


def arrival_gaps(fake: FakeChat, space: str) -> list[float]:
    """Seconds between consecutive requests to ``space``, as the fake took them in."""
    times = sorted(received.at for received in fake.posts(space))
    return [later - earlier for earlier, later in itertools.pairwise(times)]


@pytest.mark.parametrize("kind", ["webhook", "chat_api"])
@pytest.mark.parametrize("held", [0.0, 0.3])
def test_three_teams_posts_to_one_space_arrive_a_pace_apart(tmp_path, fake, kind, held):
    fake.late("spaces/SHARED", held)  # the first request reaches the Space this long after it left
    target = {"type": "webhook", "url": fake.webhook_url("SHARED")} if kind == "webhook" else {"type": kind}
    if kind == "chat_api":
        target["space"] = "spaces/SHARED"
    teams = {name: [target] for name in ("alpha", "beta", "gamma")}
    scheduler = make_scheduler(tmp_path, fake, teams, pace_seconds=PACE)

    assert states(first_slot(scheduler)) == dict.fromkeys(teams, "delivered")

    gaps = arrival_gaps(fake, "spaces/SHARED")
    assert len(gaps) == 2
    assert all(PACE <= gap <= PACE + MARGIN for gap in gaps), gaps
