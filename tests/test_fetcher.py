"""Reads bounded per source: a hung source holds only its own reads, and a read's budget starts when it starts.

Through the `Reporter` with the Vtiger stand-in on 127.0.0.1 (held to hang) next to a
file source, and through the `Fetcher` with reads that wait on events.
"""

import threading
import time
from datetime import UTC, datetime

import pytest
import yaml

from bot.config import load_config
from bot.errors import SourceUnavailable
from bot.fetcher import Fetcher
from bot.services import build_services
from bot.sources import FetchResult
from bot.store import REFRESH
from tests.fakes.vtiger import FakeVtiger


def wait_for(condition, seconds=10.0):
    """Wait until ``condition()`` holds, at most ``seconds``."""
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "condition not reached"
        threading.Event().wait(0.005)


def crm_team(number: int) -> dict:
    return {
        "id": f"crm-{number}",
        "name": f"CRM team {number}",
        "kpis": [
            {
                "id": "tickets",
                "name": "Tickets",
                "source": "crm",
                "count": {"module": "HelpDesk", "filter": f"ticket_title = 'team {number}'"},
                "category": "ticketpriorities",
                "weights": {"Urgent": 10, "Normal": 5},
                "target": 20,
                "warning": 40,
            }
        ],
    }


@pytest.fixture
def fake():
    server = FakeVtiger()
    server.add("HelpDesk", 2, ticketpriorities="Urgent", ticketstatus="Open", ticket_title="team 0")
    yield server
    server.close()


def test_a_hung_source_does_not_hold_the_reads_of_teams_on_other_sources(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("TEST_VTIGER_KEY", fake.access_key)
    (tmp_path / "issues.csv").write_text("id,priority,status\n1,High,Open\n")
    file_team = {
        "id": "files",
        "name": "Files",
        "kpis": [
            {
                "id": "open",
                "name": "Open",
                "source": "issues",
                "count": {"where": {"status": "Open"}},
                "category": "priority",
                "weights": {"High": 5},
                "target": 10,
                "warning": 20,
            }
        ],
    }
    config = {
        "chat": {"verify": False},
        "fetch_budget_seconds": 5,
        "sources": {
            "crm": {
                "type": "vtiger",
                "api": "webservice",
                "url": fake.url,
                "username": fake.username,
                "access_key": "${TEST_VTIGER_KEY}",
                "read_timeout": 8,
            },
            "issues": {"type": "file", "path": "issues.csv"},
        },
        "teams": [*(crm_team(n) for n in range(10)), file_team],
    }
    (tmp_path / "scorebot.yaml").write_text(yaml.safe_dump(config))
    services = build_services(load_config(tmp_path / "scorebot.yaml"), clock=lambda: datetime.now(UTC))
    fake.hold_queries()
    hung = [
        threading.Thread(target=services.report, args=(services.config.team(f"crm-{n}"), REFRESH)) for n in range(10)
    ]
    for thread in hung:
        thread.start()
    wait_for(lambda: fake.holding == 8)  # the CRM's 8 reads at a time, all hanging; 2 more wait their turn
    started = time.monotonic()
    report = services.report(services.config.team("files"), REFRESH)
    elapsed = time.monotonic() - started
    assert fake.holding == 8, "the CRM still hangs"
    assert report.fresh and report.kpis[0].score.index == 5
    assert elapsed < 2, f"the file team waited {elapsed:.1f} s behind the CRM's reads"
    fake.release()
    for thread in hung:
        thread.join(15)
    services.store.engine.dispose()


def result() -> FetchResult:
    return FetchResult(counts={"High": 1}, plan="read", calls=1)


def test_a_reads_budget_starts_when_it_starts_not_while_it_waits():
    budget = 2.0
    fetcher = Fetcher({"slow": 1}, budget)
    first_may_end = threading.Event()
    deadlines = []

    def first(_deadline):
        first_may_end.wait(10)
        return result()

    def second(deadline):
        deadlines.append((time.monotonic(), deadline.at))
        return result()

    running, _ = fetcher.start("a", "slow", first)
    queued, _ = fetcher.start("b", "slow", second)
    queued_at = time.monotonic()
    threading.Event().wait(0.5)  # the second read waits its turn for half a second
    first_may_end.set()
    assert fetcher.wait(running, "Slow") == result()
    assert fetcher.wait(queued, "Slow") == result()
    began, deadline = deadlines[0]
    assert began - queued_at >= 0.5
    assert deadline - began == pytest.approx(budget, abs=0.1), "the full budget from the read's start"


def test_a_read_that_cannot_start_within_a_budget_is_called_off():
    fetcher = Fetcher({"slow": 1}, 0.3)
    hang = threading.Event()
    ran = []
    running, _ = fetcher.start("a", "slow", lambda _deadline: hang.wait(10) and result())
    queued, new = fetcher.start("b", "slow", lambda _deadline: ran.append(1) or result())
    assert new
    with pytest.raises(SourceUnavailable, match=r"Slow is busy: the read did not start within 0.3 s"):
        fetcher.wait(queued, "Slow")
    hang.set()
    assert fetcher.wait(running, "Slow") == result()
    assert fetcher.readers("b") == 0, "a called-off read is forgotten: the next caller starts a new one"
    assert ran == [], "the called-off read never ran"


def test_callers_of_one_kpi_share_one_read_and_the_next_caller_starts_a_new_one():
    fetcher = Fetcher({"src": 4}, 2.0)
    gate = threading.Event()
    reads = []

    def read(_deadline):
        reads.append(1)
        gate.wait(10)
        return result()

    first, new_first = fetcher.start("k", "src", read)
    second, new_second = fetcher.start("k", "src", read)
    assert (new_first, new_second) == (True, False) and first is second
    assert fetcher.readers("k") == 2
    gate.set()
    assert fetcher.wait(first, "Src") == result() == fetcher.wait(second, "Src")
    wait_for(lambda: fetcher.readers("k") == 0)
    third, new_third = fetcher.start("k", "src", read)
    assert new_third and fetcher.wait(third, "Src") == result()
    assert len(reads) == 2
