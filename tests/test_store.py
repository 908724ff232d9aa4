"""The store's claims, on a SQLite file and on PostgreSQL, in one process and across several.

PostgreSQL tests use the ``store_url`` fixture of conftest.py (a throwaway schema).
"""

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.config import load_config
from bot.schedule.tick import Scheduler
from bot.services import build_services
from bot.store import SCHEMA_VERSION, Store, schema_info
from tests.fakes.chat import FakeChat, write_config

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 9, 9, 0, 30, tzinfo=UTC)
SLOT = datetime(2026, 11, 9, 9, 1, tzinfo=UTC)


@pytest.fixture
def store(store_url):
    opened = Store(store_url)
    yield opened
    opened.engine.dispose()


@pytest.fixture
def fake():
    chat = FakeChat()
    yield chat
    chat.close()


def test_tables_are_created_once_and_the_schema_version_recorded(store, store_url):
    again = Store(store_url)  # a second start changes nothing
    tables = set(sa.inspect(again.engine).get_table_names())
    assert {"schema_info", "readings", "kpi_latest", "slot_runs", "deliveries", "outbox", "team_marks"} <= tables
    assert "snapshots" not in tables
    with again.engine.connect() as conn:
        assert conn.execute(sa.select(schema_info.c.version)).scalars().all() == [SCHEMA_VERSION]
    again.engine.dispose()


def test_a_claim_is_exclusive_until_its_lease_runs_out(store):
    lease = T0 + timedelta(seconds=5)
    assert store.claim("alpha", SLOT, "one", T0, lease)
    assert not store.claim("alpha", SLOT, "two", T0 + timedelta(seconds=4), lease)
    assert not store.claim("alpha", SLOT, "two", lease, lease + timedelta(seconds=5))  # the lease's last moment
    # "one" died: after the lease, "two" takes the slot over; "one" can no longer act on it.
    assert store.claim("alpha", SLOT, "two", T0 + timedelta(seconds=6), T0 + timedelta(seconds=11))
    assert not store.renew("alpha", SLOT, "one", T0 + timedelta(seconds=20))
    assert not store.finish("alpha", SLOT, "one", "delivered", T0, None)
    assert store.finish("alpha", SLOT, "two", "delivered", T0 + timedelta(seconds=7), None)
    assert not store.claim("alpha", SLOT, "three", T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    [run] = store.slot_runs("alpha")
    assert (run.state, run.attempts, run.claimed_by) == ("delivered", 2, "two")


def test_a_released_slot_is_claimable_at_once(store):
    assert store.claim("alpha", SLOT, "one", T0, T0 + timedelta(minutes=3))
    assert store.release("alpha", SLOT, "one", T0, "could not refresh: source down")
    [run] = store.slot_runs("alpha")
    assert (run.state, run.detail) == ("pending", "could not refresh: source down")
    assert store.claim("alpha", SLOT, "two", T0, T0 + timedelta(minutes=3))


def test_a_slot_given_back_with_a_retry_after_is_claimable_from_that_moment_on(store):
    retry_at = T0 + timedelta(seconds=60)
    assert store.claim("alpha", SLOT, "one", T0, T0 + timedelta(minutes=3))
    assert store.release("alpha", SLOT, "one", T0, "429 from the Space", retry_at)

    assert store.claim("alpha", SLOT, "two", retry_at - timedelta(microseconds=1), T0 + timedelta(minutes=5)) == 0
    assert store.claim("alpha", SLOT, "two", retry_at, T0 + timedelta(minutes=5)) == 2
    [run] = store.slot_runs("alpha")
    assert (run.state, run.claimed_by, run.retry_at) == ("claimed", "two", None)


def test_a_slot_given_back_unstarted_is_as_it_was_before_the_claim(store):
    later = SLOT + timedelta(minutes=1)
    assert store.claim("alpha", SLOT, "one", T0, T0 + timedelta(minutes=3)) == 1
    assert store.release("alpha", SLOT, "one", T0, "could not refresh: source down")
    assert store.claim("alpha", SLOT, "two", T0, T0 + timedelta(minutes=3)) == 2
    assert store.claim("alpha", later, "two", T0, T0 + timedelta(minutes=3)) == 1

    assert store.unclaim("alpha", SLOT, "two") and store.unclaim("alpha", later, "two")

    [run] = store.slot_runs("alpha")  # the new slot is gone, as if never claimed
    assert (run.slot, run.state, run.attempts, run.claimed_by) == (SLOT, "pending", 1, None)
    assert store.claim("alpha", SLOT, "three", T0, T0 + timedelta(minutes=3)) == 2
    assert not store.unclaim("alpha", SLOT, "two")  # no longer two's


def test_unfinished_slots_are_closed_as_missed_from_the_cutoff_on_unless_still_held(store):
    held_until = T0 + timedelta(minutes=30)
    assert store.claim("alpha", SLOT, "one", T0, T0 + timedelta(minutes=3))
    assert store.release("alpha", SLOT, "one", T0, "could not refresh: source down")
    assert store.claim("beta", SLOT, "one", T0, held_until)  # a process still at work on it

    def open_team(team_id, now):
        return store.open_team(team_id, now, lambda mark: [], "", SLOT, "not completed within the grace period")

    assert open_team("alpha", held_until)[:2] == ([], 1)  # the slot is exactly at the cutoff
    assert open_team("beta", held_until)[:2] == ([], 0)  # its lease's last moment: still held
    assert open_team("beta", held_until + timedelta(microseconds=1))[:2] == ([], 1)
    assert [(run.state, run.detail) for team in ("alpha", "beta") for run in store.slot_runs(team)] == [
        ("missed", "not completed within the grace period")
    ] * 2


def test_only_one_of_many_simultaneous_claimers_wins(store):
    barrier = threading.Barrier(8)
    wins = []

    def claim(owner):
        barrier.wait()
        wins.append(store.claim("alpha", SLOT, owner, T0, T0 + timedelta(minutes=3)))

    threads = [threading.Thread(target=claim, args=(f"owner-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(wins) == [False] * 7 + [True]


def test_missed_slots_marks_and_settled_targets(store):
    first = store.team_mark("alpha", T0)
    assert store.team_mark("alpha", T0 + timedelta(hours=1)) == first
    store.advance_mark("alpha", T0 + timedelta(minutes=5))
    store.advance_mark("alpha", T0 + timedelta(minutes=2))  # never backwards
    assert store.team_mark("alpha", T0).scanned_until == T0 + timedelta(minutes=5)

    slots = [SLOT, SLOT + timedelta(minutes=1)]
    assert store.record_missed("alpha", slots, T0, "no tick") == slots
    assert store.record_missed("alpha", slots, T0, "no tick") == []
    assert not store.claim("alpha", SLOT, "one", T0 + timedelta(hours=1), T0 + timedelta(hours=2))

    later = SLOT + timedelta(minutes=5)
    store.record_delivery("alpha", later, "webhook:spaces/A", "delivered", T0)
    store.record_delivery("alpha", later, "chat_api:spaces/B", "error", T0, detail="HTTP 503")
    store.record_delivery("alpha", later, "webhook:spaces/C", "rejected", T0, detail="HTTP 404")
    assert store.settled_targets("alpha", later) == {"webhook:spaces/A", "webhook:spaces/C"}


def test_times_with_an_offset_are_stored_and_compared_in_utc(tmp_path, fake, store_url, request):
    config = write_config(tmp_path, fake, {"alpha": [{"type": "log"}]}, schedule="0 14 * * *")
    scheduler = Scheduler(build_services(load_config(config), store_url=store_url))
    store = scheduler.services.store
    request.addfinalizer(store.engine.dispose)
    eastern = timezone(timedelta(hours=-5))
    two_pm = datetime(2026, 11, 9, 14, 0, tzinfo=UTC)

    result = scheduler.tick(datetime(2026, 11, 9, 9, 0, 30, tzinfo=eastern))  # 14:00:30Z

    assert result.now == two_pm + timedelta(seconds=30)
    assert [(o.slot, o.state) for o in result.outcomes] == [(two_pm, "delivered")]
    assert store.team_mark("alpha", T0).first_seen == two_pm + timedelta(seconds=30)
    [run] = store.slot_runs("alpha", since=datetime(2026, 11, 9, 8, 59, tzinfo=eastern))
    assert (run.slot, run.updated_at.date(), run.state) == (two_pm, two_pm.date(), "delivered")
    assert scheduler.tick(two_pm + timedelta(seconds=50)).outcomes == []

    nine = datetime(2026, 11, 9, 9, 0, tzinfo=eastern)  # the same slot, written with an offset
    assert store.claim("beta", nine, "one", nine, nine + timedelta(minutes=3))
    assert not store.claim("beta", two_pm, "two", two_pm + timedelta(minutes=2), two_pm + timedelta(minutes=5))
    assert store.claim("beta", two_pm, "two", two_pm + timedelta(minutes=4), two_pm + timedelta(minutes=7))
    store.record_delivery("beta", nine, "webhook:spaces/A", "delivered", nine)
    assert store.settled_targets("beta", two_pm) == {"webhook:spaces/A"}
    assert [r.slot for r in store.slot_runs("beta")] == [two_pm]


def start_worker(config, store_url, now, *, wait=False):
    command = [sys.executable, "-m", "tests.tick_worker", str(config), store_url, now.isoformat()]
    return subprocess.Popen(
        [*command, "--wait"] if wait else command,
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def seeded_scheduler(tmp_path, fake, teams, store_url, **settings):
    """The config file and an in-process scheduler that has ticked once at T0 (the schedule's start)."""
    config = write_config(tmp_path, fake, teams, **settings)
    scheduler = Scheduler(build_services(load_config(config), store_url=store_url))
    assert scheduler.tick(T0).outcomes == []
    return config, scheduler


def test_concurrent_tick_processes_post_each_teams_latest_slot_exactly_once(tmp_path, fake, store_url):
    teams = {
        "alpha": [{"type": "chat_api", "space": "spaces/A"}],
        "beta": [{"type": "chat_api", "space": "spaces/B"}],
        "gamma": [{"type": "webhook", "url": fake.webhook_url("C")}],
        "delta": [{"type": "webhook", "url": fake.webhook_url("D")}],
    }
    config, scheduler = seeded_scheduler(tmp_path, fake, teams, store_url)
    now = T0 + timedelta(minutes=3)  # 09:01, 09:02 and 09:03 due for each of 4 teams

    workers = [start_worker(config, store_url, now, wait=True) for _ in range(3)]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    outputs = [worker.communicate(timeout=60) for worker in workers]

    assert [w.returncode for w in workers] == [0, 0, 0], [err for _, err in outputs]
    done = [json.loads(line) for out, _ in outputs for line in out.splitlines()]
    # No burst: each team's 09:03 posted once, its 09:01 and 09:02 superseded once, whichever process did it.
    assert sorted((d["team"], d["slot"][11:16], d["state"]) for d in done) == sorted(
        (team, hhmm, "delivered" if hhmm == "09:03" else "superseded")
        for team in teams
        for hhmm in ("09:01", "09:02", "09:03")
    )
    assert len(fake.posts()) == 4  # nothing sent twice, not even a 409
    for space in ("spaces/A", "spaces/B", "spaces/C", "spaces/D"):
        assert len(fake.messages(space)) == 1
    for team in teams:
        runs = scheduler.services.store.slot_runs(team)
        assert [(r.state, r.attempts) for r in runs] == [("delivered", 1), ("superseded", 0), ("superseded", 0)]
    scheduler.services.store.engine.dispose()


@pytest.mark.parametrize("landed", [True, False], ids=["post-landed", "post-lost"])
def test_a_tick_killed_mid_send_is_finished_once_by_a_later_tick(tmp_path, fake, store_url, landed):
    config, scheduler = seeded_scheduler(
        tmp_path, fake, {"alpha": [{"type": "chat_api", "space": "spaces/A"}]}, store_url, lease_seconds=5
    )
    store = scheduler.services.store
    now = T0 + timedelta(minutes=1)
    hang = fake.hang("spaces/A", landed=landed)

    worker = start_worker(config, store_url, now)
    assert hang.arrived.wait(60), worker.stderr.read() if worker.poll() is not None else "worker still starting"
    worker.send_signal(signal.SIGKILL)
    assert worker.wait(10) == -signal.SIGKILL
    worker.communicate()
    hang.release.set()

    [run] = store.slot_runs("alpha")
    assert run.state == "claimed"
    assert store.deliveries("alpha") == []
    # While the dead process's lease lasts, nobody takes the slot over.
    assert scheduler.tick(now + timedelta(seconds=1)).outcomes == []
    assert len(fake.posts("spaces/A")) == 1

    result = scheduler.tick(now + timedelta(seconds=10))

    assert [o.state for o in result.outcomes] == ["delivered"]
    posts = fake.posts("spaces/A")
    assert [p.query["messageId"] for p in posts] == ["client-alpha-20261109090100"] * 2
    assert len(fake.messages("spaces/A")) == 1
    assert [d.outcome for d in store.deliveries("alpha")] == ["already" if landed else "delivered"]
    [run] = store.slot_runs("alpha")
    assert (run.state, run.attempts) == ("delivered", 2)
    store.engine.dispose()
