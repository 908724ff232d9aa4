"""Alerts across processes on SQLite and PostgreSQL: three tick processes at once and two overlapping them,
against a Chat that refuses a fifth of the requests (429, 503), post every notice exactly once; a process
killed in the middle of a post is followed by one that finds the message there, never a second copy."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from bot.schedule.tick import Scheduler
from tests.fakes.chat import FakeChat
from tests.test_alert_tick import BAD, GOOD, alert_config, scheduler_for, set_rows

T0 = datetime(2026, 11, 9, 9, 0, tzinfo=UTC)
CHECK = timedelta(minutes=15)
TEAMS = [f"team-{n}" for n in range(6)]
WORKER_SECONDS = 60


@pytest.fixture
def fake():
    chat = FakeChat()
    yield chat
    chat.close()


def start_worker(config, store_url: str, now: datetime, wait: bool = True) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tests.tick_worker", str(config), store_url, now.isoformat()]
    return subprocess.Popen(
        [*command, *(["--wait"] if wait else [])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(worker: subprocess.Popen[str]) -> None:
    assert worker.stdout is not None
    line = worker.stdout.readline()
    assert line.strip() == "ready", worker.stderr.read() if worker.stderr else line


def round_of_five(config, store_url: str, now: datetime) -> None:
    """Three workers tick as of ``now`` at the same moment; two more start while they run."""
    together = [start_worker(config, store_url, now) for _ in range(3)]
    for worker in together:
        wait_ready(worker)
    for worker in together:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    overlapping = [start_worker(config, store_url, now + timedelta(seconds=20), wait=False) for _ in range(2)]
    for worker in together + overlapping:
        _out, err = worker.communicate(timeout=WORKER_SECONDS)
        assert worker.returncode == 0, err


def settle(scheduler: Scheduler, now: datetime) -> None:
    """Ticks in this process until no notice waits (those given back after failures), at most ten."""
    for n in range(10):
        if all(notice.state == "sent" for notice in scheduler.services.store.notices()):
            return
        scheduler.tick(now + timedelta(seconds=30 * (n + 1)))
    raise AssertionError([(n.id, n.state, n.detail) for n in scheduler.services.store.notices() if n.state != "sent"])


def test_five_tick_processes_against_a_flaky_chat_post_every_notice_exactly_once(tmp_path, fake, store_url):
    config = alert_config(tmp_path, fake, store_url, TEAMS, lease_seconds=20, deadline_seconds=15)
    for n, team in enumerate(TEAMS):
        fake.flaky(f"spaces/{team.upper()}", 0.2, seed=n)
        set_rows(tmp_path, team, GOOD)
    scheduler = scheduler_for(config, store_url)
    scheduler.tick(T0)  # every team's first reading

    for n, rows in enumerate([BAD, GOOD], start=1):
        for team in TEAMS:
            set_rows(tmp_path, team, rows)
        now = T0 + n * CHECK
        round_of_five(config, store_url, now)
        settle(scheduler, now + timedelta(minutes=1))

    store = scheduler.services.store
    notices = store.notices()
    assert Counter((n.team_id, n.kind) for n in notices) == Counter(
        {(t, k): 1 for t in TEAMS for k in ("fire", "resolve")}
    )
    created = Counter((space, message_id) for space, message_id, status in fake.answered if status == 200)
    assert len(created) == 12 and set(created.values()) == {1}
    assert [a for a in fake.answered if a[2] == 409] == []  # no message was even tried twice once posted
    refused = [a for a in fake.answered if a[2] in (429, 503)]
    assert refused, "the flaky Chat refused nothing: the test would prove nothing about retries"
    for team in TEAMS:
        messages = [m for m in fake.messages(f"spaces/{team.upper()}")]
        assert len(messages) == 2
        assert messages[0]["thread"] == messages[1]["thread"]  # the resolve in the alert's thread
        assert [t.after for t in store.transitions(team, "open")] == ["normal", "firing", "normal"]
    store.engine.dispose()


@pytest.mark.parametrize("landed", [True, False])
def test_a_process_killed_during_a_post_is_followed_by_the_same_message_never_a_second(
    tmp_path, fake, store_url, landed
):
    config = alert_config(tmp_path, fake, store_url, ["alpha"], lease_seconds=5, deadline_seconds=4)
    set_rows(tmp_path, "alpha", GOOD)
    scheduler = scheduler_for(config, store_url)
    scheduler.tick(T0)
    set_rows(tmp_path, "alpha", BAD)
    hang = fake.hang("spaces/ALPHA", landed=landed)
    worker = start_worker(config, store_url, T0 + CHECK, wait=False)
    wait_ready(worker)
    assert hang.arrived.wait(30), "the worker never posted"
    worker.send_signal(signal.SIGKILL)
    assert worker.wait(10) == -signal.SIGKILL
    worker.communicate()
    hang.release.set()
    time.sleep(0.2)

    [notice] = scheduler.services.store.notices("alpha")
    assert notice.state == "pending" and notice.message_id
    scheduler.tick(T0 + CHECK + timedelta(seconds=1))  # the dead process's lease still holds
    assert len(fake.posts("spaces/ALPHA")) == 1
    result = scheduler.tick(T0 + CHECK + timedelta(seconds=10))

    assert [o.state for o in result.alerts] == ["sent"]
    assert [p.query["messageId"] for p in fake.posts("spaces/ALPHA")] == [notice.message_id] * 2
    assert len(fake.messages("spaces/ALPHA")) == 1
    assert [a[2] for a in fake.answered] == [503, 409 if landed else 200]
    assert scheduler.services.store.alert_deliveries("alpha") == [
        (notice.message_id, "chat_api:spaces/ALPHA", "already" if landed else "delivered")
    ]
    scheduler.services.store.engine.dispose()
