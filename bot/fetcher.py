"""Running KPI reads: bounded per source, one read per KPI at a time (single flight).

Each source has its own pool of ``max_concurrent`` threads, so a slow or hung
source only ever holds its own reads, never those of teams on other sources.
A read's budget (``fetch_budget_seconds``) starts when the read starts, not
while it waits for a free thread; a caller waits at most one more budget for
its read to start, after which the read is called off (the source is busy).

Everyone who asks for a KPI while a read of it runs or waits shares that read:
a burst of Refresh clicks on one card makes one request to the source.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Generic, TypeVar

from bot.errors import SourceUnavailable
from bot.sources import Deadline

_T = TypeVar("_T")

GRACE_SECONDS = 0.5
"""How much longer than the budget a caller waits for a started read (the source stops at the budget)."""


class Flight(Generic[_T]):
    """One read (of one KPI, or a scan shared by several), shared by every caller that asked for it before it
    finished."""

    def __init__(self, budget_seconds: float) -> None:
        self.budget_seconds = budget_seconds
        self.future: Future[_T] | None = None
        self.started = threading.Event()
        self.deadline: Deadline | None = None
        self.readers = 1
        """How many callers share this read."""

    def begin(self) -> Deadline:
        """Start the read's budget now."""
        self.deadline = Deadline.after(self.budget_seconds)
        self.started.set()
        return self.deadline


class Fetcher:
    """Reads KPIs through their sources, each source at most ``max_concurrent`` at a time."""

    def __init__(self, limits: Mapping[str, int], budget_seconds: float) -> None:
        """``limits``: each source's name and how many of its reads run at once."""
        self.budget_seconds = budget_seconds
        self._pools = {
            name: ThreadPoolExecutor(max_workers=limit, thread_name_prefix=f"fetch-{name}")
            for name, limit in limits.items()
        }
        self._lock = threading.Lock()
        self._flights: dict[Hashable, Flight[Any]] = {}

    def start(self, key: Hashable, source: str, read: Callable[[Deadline], _T]) -> tuple[Flight[_T], bool]:
        """The read in flight for ``key``, joined, or ``read`` started on ``source``'s pool; and whether it is new."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                flight.readers += 1
                return flight, False
            flight = self._flights[key] = self.submit(source, read)
        assert flight.future is not None  # noqa: S101 (set by submit)
        flight.future.add_done_callback(lambda _: self._forget(key, flight))
        return flight, True

    def submit(self, source: str, read: Callable[[Deadline], _T]) -> Flight[_T]:
        """``read`` started on ``source``'s pool, shared with no one (a scan for several KPIs)."""
        flight: Flight[_T] = Flight(self.budget_seconds)
        flight.future = self._pools[source].submit(lambda: read(flight.begin()))
        return flight

    def readers(self, key: Hashable) -> int:
        """How many callers share the read of ``key`` in flight (0: none in flight)."""
        with self._lock:
            flight = self._flights.get(key)
            return flight.readers if flight else 0

    def wait(self, flight: Flight[_T], service: str) -> _T:
        """The read's result; `SourceUnavailable` if it did not start, or finish, in time.

        A source's own errors are raised as they are.
        """
        assert flight.future is not None  # noqa: S101 (set by start)
        if not flight.started.wait(self.budget_seconds):
            if flight.future.cancel():
                raise SourceUnavailable(f"{service} is busy: the read did not start within {self.budget_seconds:g} s")
            flight.started.wait()
        assert flight.deadline is not None  # noqa: S101 (set before started)
        try:
            return flight.future.result(timeout=flight.deadline.remaining() + GRACE_SECONDS)
        except FutureTimeout:
            raise SourceUnavailable(f"{service} did not answer within {self.budget_seconds:g} s") from None

    def _forget(self, key: Hashable, flight: Flight[Any]) -> None:
        """The read is over (or called off): the next caller starts a new one."""
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
