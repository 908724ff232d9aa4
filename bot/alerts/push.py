"""Checks a CRM asks for between the scheduled ones (``POST /tasks/changed?team=…``).

A request queues the teams it names in this process and is answered at once; one worker thread works
the queue. A team named again while it waits is checked once (coalesced). Each such check is claimed in
the store for the minute it runs in (`PUSH_STEP`), so however many requests and processes ask, a team
gets at most one asked-for check a minute (rate limited); one that falls on a scheduled check's time is
that check. It reads the team's KPIs afresh (not the cache) and posts its notices at once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Sequence
from datetime import timedelta

from bot.alerts.runner import AlertOutcome, AlertRunner
from bot.config import TeamConfig
from bot.errors import VerificationError
from bot.sources import Deadline

log = logging.getLogger(__name__)
PUSH_STEP = timedelta(minutes=1)
"""At most one asked-for check per team in each step."""
MAX_TEAMS = 50
"""The most teams one request may name."""
SIGNATURE_WINDOW_SECONDS = 300
"""How far a signed request's timestamp may be from the server's clock."""


class PushedChecks:
    """The queue of asked-for checks of one process, and the thread that works it."""

    def __init__(self, runner: AlertRunner, deadline_seconds: float) -> None:
        self.runner = runner
        self.deadline_seconds = deadline_seconds
        self._lock = threading.Lock()
        self._queued: dict[str, TeamConfig] = {}
        self._worker: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        self.outcomes: list[AlertOutcome] = []
        """What the last batch did (for the log and for tests)."""

    def queue(self, teams: Sequence[TeamConfig]) -> None:
        """Queue ``teams`` for a check now; a team already queued stays queued once."""
        with self._lock:
            self._queued.update((team.id, team) for team in teams)
            self._idle.clear()
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="pushed-checks", daemon=True)
                self._worker.start()

    def wait(self, timeout: float) -> bool:
        """Block until the queue is worked; False if ``timeout`` seconds pass first."""
        return self._idle.wait(timeout)

    def _work(self) -> None:
        while True:
            with self._lock:
                batch, self._queued = list(self._queued.values()), {}
                if not batch:
                    self._worker = None
                    self._idle.set()
                    return
            deadline = Deadline.after(self.deadline_seconds)
            outcomes = [o for team in batch for o in self.runner.check_now(team, PUSH_STEP, deadline)]
            for outcome in outcomes:
                log.info("asked-for check of %s: %s %s", outcome.team_id, outcome.state, outcome.detail or "")
            self.outcomes = outcomes


def signature(secret: str, timestamp: str, query: str) -> str:
    """The hex HMAC-SHA256 of ``TIMESTAMP.QUERY`` under ``secret``: what a CRM sends in ``X-Scorebot-Signature``."""
    return hmac.new(secret.encode(), f"{timestamp}.{query}".encode(), hashlib.sha256).hexdigest()


def verify_signature(secret: str, timestamp: str | None, sent: str | None, query: str, now: float) -> None:
    """Raise `VerificationError` unless ``sent`` signs ``query`` at ``timestamp`` (Unix seconds, within
    `SIGNATURE_WINDOW_SECONDS` of ``now``)."""
    if not timestamp or not sent:
        raise VerificationError("X-Scorebot-Timestamp and X-Scorebot-Signature are both needed")
    try:
        moment = int(timestamp)
    except ValueError:
        raise VerificationError("X-Scorebot-Timestamp is not whole Unix seconds") from None
    if abs(now - moment) > SIGNATURE_WINDOW_SECONDS:
        raise VerificationError(f"X-Scorebot-Timestamp is more than {SIGNATURE_WINDOW_SECONDS} s from now")
    if not hmac.compare_digest(signature(secret, timestamp, query), sent.removeprefix("sha256=")):
        raise VerificationError("X-Scorebot-Signature does not match")
