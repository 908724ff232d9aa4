"""A small client for Vtiger's two web APIs, with typed errors.

- ``Webservice``: ``{url}/webservice.php`` (open source and Cloud): challenge,
  md5 login, one session shared by all threads, renewed once when Vtiger
  refuses it; GET for reads, POST for login; never logout.
- ``Rest``: ``{url}/restapi/v1/vtiger/default/...`` (Cloud): HTTP Basic auth.

Both go through ``Transport``: timeouts capped by the fetch's deadline,
pacing (``requests_per_minute``, ``X-FloodControl-*`` headers), back-off on
HTTP 429 within the deadline, and the ``{success, result | error}`` envelope
turned into results or ``SourceError`` subclasses. Error messages name the
failure kind (Vtiger's error code), never Vtiger's own text, which is logged
for the operator only. Access keys and session names are registered as
secrets (`bot.secrets`) and never appear in messages or logs.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from bot.errors import SourceAuthError, SourceDataError, SourceError, SourceQueryError, SourceUnavailable
from bot.http_headers import retry_after_seconds
from bot.secrets import register
from bot.sources.http import Calls, json_body, seconds, send
from bot.sources.vtiger_settings import VtigerSettings

log = logging.getLogger(__name__)

SESSION_CODES = frozenset({"INVALID_SESSIONID", "SESSION_EXPIRED", "SESSION_LEFT_IDLE", "AUTHENTICATION_REQUIRED"})
SERVICE = "Vtiger"


class UnknownModule(SourceQueryError):
    """Vtiger does not know the module, or the user may not read it."""


class KeyRefused(SourceAuthError):
    """Vtiger refused the login's access key (INVALID_USER_CREDENTIALS)."""


LOGIN_TRIES = 3
"""Logins tried with a fresh challenge each: Vtiger 8.2 keeps one challenge token a user, so another process's
getchallenge between ours and our login makes our key wrong; a really wrong key is refused every time."""


class SessionRefused(Exception):
    """Vtiger refused the session (one of ``SESSION_CODES``); internal, never leaves a fetch."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class _Throttled(Exception):
    def __init__(self, retry_after: float | None) -> None:
        super().__init__("HTTP 429")
        self.retry_after = retry_after


class Pace:
    """Spaces calls to one Vtiger: ``requests_per_minute``, and none while its flood quota is used up."""

    def __init__(self, per_minute: float | None) -> None:
        self._interval = 60.0 / per_minute if per_minute else 0.0
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self, calls: Calls) -> None:
        """Sleep until this call may go, or fail if that is beyond the deadline."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            if slot > now and slot - now >= calls.deadline.remaining():
                raise SourceUnavailable(
                    f"Vtiger's request quota allows the next call in {seconds(slot - now)} s, "
                    f"beyond the {seconds(calls.budget)} s budget"
                )
            self._next = slot + self._interval
        if slot > now:
            time.sleep(slot - now)

    def observe(self, headers: Any) -> None:
        """Hold further calls until ``X-FloodControl-Reset`` when ``X-FloodControl-Remaining`` is 0."""
        try:
            remaining = int(headers.get("X-FloodControl-Remaining", ""))
            reset = float(headers.get("X-FloodControl-Reset", ""))
        except ValueError:
            return
        if remaining > 0:
            return
        wait = reset - time.time() if reset > 1e9 else reset
        if not math.isfinite(wait):
            return
        wait = min(wait, 3600.0)
        with self._lock:
            self._next = max(self._next, time.monotonic() + max(0.0, wait))


class Transport:
    """HTTP to one Vtiger: pacing, back-off on 429, the JSON envelope, typed errors."""

    def __init__(self, settings: VtigerSettings) -> None:
        self.settings = settings
        self.username = settings.username
        self.http = requests.Session()
        adapter = HTTPAdapter(pool_maxsize=32)  # connections kept open for the next calls, per host
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)
        self.pace = Pace(settings.requests_per_minute)
        self.timeouts = (settings.connect_timeout, settings.read_timeout)

    def call(self, method: str, url: str, calls: Calls, *, op: str, subject: str = "", **kwargs: Any) -> Any:
        """The ``result`` of one API call; ``SessionRefused`` for a refused session on a read."""
        before = calls.count
        response = self._send(method, url, calls, **kwargs)
        if op == "query":
            calls.queries += calls.count - before
        status = response.status_code
        if status >= 500:
            raise SourceUnavailable(f"Vtiger answered HTTP {status} to {op}; try again later")
        if status == 401:
            raise SourceAuthError(f"Vtiger refused the access key for user {self.username!r} (HTTP 401)")
        if 300 <= status < 400:
            raise SourceQueryError(
                f"Vtiger answered {op} with a redirect (HTTP {status}); set url to its final address"
            )
        try:
            body = json_body(response, SERVICE)
        except SourceDataError:
            if status != 200:
                raise self._status_error(status, op) from None
            raise
        if not isinstance(body, dict) or not isinstance(body.get("success"), bool):
            if status != 200:
                raise self._status_error(status, op)
            raise SourceDataError(f"Vtiger answered {op} (HTTP {status}) without its success/result envelope")
        if body["success"] and status == 200 and "result" in body:
            return body["result"]
        error = body.get("error")
        code = str(error.get("code", "")) if isinstance(error, dict) else ""
        message = str(error.get("message", "")) if isinstance(error, dict) else ""
        if not code:
            raise SourceDataError(f"Vtiger answered {op} with HTTP {status} and no error code")
        raise self._error(code, message, op, subject)

    def close(self) -> None:
        """Release pooled connections."""
        self.http.close()

    def _status_error(self, status: int, op: str) -> SourceError:
        if status == 403:
            return SourceAuthError(f"Vtiger refused {op} for user {self.username!r} (HTTP 403)")
        if status == 404:
            return SourceQueryError(f"Vtiger answered {op} with HTTP 404; check the url and api settings")
        return SourceDataError(f"Vtiger answered {op} with HTTP {status} and no error envelope")

    def _error(self, code: str, message: str, op: str, subject: str) -> Exception:
        user = f"user {self.username!r}"
        if message:
            log.info("Vtiger answered %s with %s: %s", op, code, message)
        if code in SESSION_CODES:
            if op in {"query", "describe", "listtypes"}:
                return SessionRefused(code)
            return SourceAuthError(f"Vtiger refused the session for {user} ({code})")
        if code == "INVALID_USER_CREDENTIALS":
            return KeyRefused(f"Vtiger refused the access key for {user} ({code})")
        if code in {"ACCESSKEY_UNDEFINED", "INVALID_AUTH_TOKEN"}:
            return SourceAuthError(f"Vtiger refused the login of {user} ({code}); check username and access_key")
        if code == "ACCESS_DENIED" and op == "getchallenge":
            return SourceAuthError(f"Vtiger does not know {user}, or denies it web service access ({code})")
        if code == "ACCESS_DENIED" and op == "describe":
            return UnknownModule(
                f"Vtiger has no module {subject!r} that {user} may read ({code}); "
                "Vtiger 8.2 calls tasks 'Calendar' and tickets 'HelpDesk'"
            )
        if code == "INTERNAL_SERVER_ERROR":
            return SourceUnavailable(f"Vtiger failed internally on {op} ({code})")
        where = f" on {subject}" if subject else ""
        return SourceQueryError(f"Vtiger refused the {op}{where} ({code})")

    def _send(self, method: str, url: str, calls: Calls, **kwargs: Any) -> requests.Response:
        def once() -> requests.Response:
            self.pace.wait(calls)
            response = send(self.http, method, url, calls, self.timeouts, **kwargs)
            self.pace.observe(response.headers)
            if response.status_code == 429:
                raise _Throttled(retry_after_seconds(response.headers.get("Retry-After"), datetime.now(UTC)))
            return response

        def stop(state: RetryCallState) -> bool:
            return state.attempt_number > self.settings.throttle_retries or (
                state.upcoming_sleep >= calls.deadline.remaining()
            )

        retrying = Retrying(
            retry=retry_if_exception_type(_Throttled), wait=_backoff, stop=stop, reraise=True, before_sleep=_log_wait
        )
        try:
            return retrying(once)
        except _Throttled as exc:
            asked = f", asked to wait {seconds(exc.retry_after)} s" if exc.retry_after is not None else ""
            raise SourceUnavailable(
                f"Vtiger is throttling requests (HTTP 429{asked}); gave up after "
                f"{retrying.statistics['attempt_number']} tries within the {seconds(calls.budget)} s budget"
            ) from None


_exponential = wait_exponential(multiplier=0.5, max=8)


def _backoff(state: RetryCallState) -> float:
    """Wait what ``Retry-After`` asks, else 0.5 s, 1 s, 2 s, ... up to 8 s."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, _Throttled) and exc.retry_after is not None:
        return exc.retry_after
    return _exponential(state)


def _log_wait(state: RetryCallState) -> None:
    log.info("Vtiger throttled a request (HTTP 429); retrying in %.1f s", state.upcoming_sleep)


class VtigerApi(Protocol):
    """What the source needs from either API."""

    transport: Transport

    def describe(self, module: str, calls: Calls) -> Any:
        """The ``describe`` result for ``module``."""
        ...

    def listtypes(self, calls: Calls) -> Any:
        """The ``listtypes`` result."""
        ...

    def query(self, vtql: str, module: str, calls: Calls) -> Any:
        """The rows a VTQL query returns."""
        ...


class Webservice:
    """``webservice.php``: one session per source, shared across threads, renewed once on refusal."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.url = transport.settings.url + "/webservice.php"
        self._session: str | None = None
        self._lock = threading.Lock()

    def describe(self, module: str, calls: Calls) -> Any:
        """The ``describe`` result for ``module``."""
        return self._read("describe", {"elementType": module}, module, calls)

    def listtypes(self, calls: Calls) -> Any:
        """The ``listtypes`` result."""
        return self._read("listtypes", {}, "", calls)

    def query(self, vtql: str, module: str, calls: Calls) -> Any:
        """The rows a VTQL query returns."""
        return self._read("query", {"query": vtql}, module, calls)

    def _read(self, op: str, params: dict[str, str], subject: str, calls: Calls) -> Any:
        session = self._current(calls, stale=None)
        try:
            return self._get(op, params, subject, session, calls)
        except SessionRefused as exc:
            log.info("Vtiger refused the session (%s); logging in again", exc.code)
        session = self._current(calls, stale=session)
        try:
            return self._get(op, params, subject, session, calls)
        except SessionRefused as exc:
            raise SourceAuthError(
                f"Vtiger refused a fresh session for user {self.transport.username!r} ({exc.code})"
            ) from None

    def _get(self, op: str, params: dict[str, str], subject: str, session: str, calls: Calls) -> Any:
        query = {"operation": op, "sessionName": session, **params}
        return self.transport.call("GET", self.url, calls, op=op, subject=subject, params=query)

    def _current(self, calls: Calls, stale: str | None) -> str:
        """The shared session; a new one if there is none or it is still ``stale``."""
        with self._locked(calls):
            if self._session is None or self._session == stale:
                self._session = self._login(calls)
            return self._session

    @contextmanager
    def _locked(self, calls: Calls) -> Iterator[None]:
        if not self._lock.acquire(timeout=calls.deadline.remaining()):
            raise calls.timed_out()
        try:
            yield
        finally:
            self._lock.release()

    def _login(self, calls: Calls) -> str:
        for attempt in range(1, LOGIN_TRIES):
            try:
                return self._login_once(calls)
            except KeyRefused:
                log.info("Vtiger refused the login (another client may have asked for a challenge); trying again")
                time.sleep(min(random.uniform(0, 0.2 * attempt), calls.deadline.remaining()))  # noqa: S311 (jitter)
        return self._login_once(calls)

    def _login_once(self, calls: Calls) -> str:
        username = self.transport.username
        challenge = self.transport.call(
            "GET", self.url, calls, op="getchallenge", params={"operation": "getchallenge", "username": username}
        )
        token = challenge.get("token") if isinstance(challenge, dict) else None
        if not isinstance(token, str) or not token:
            raise SourceDataError("Vtiger's getchallenge answer has no token")
        secret = self.transport.settings.access_key.get_secret_value()
        key = hashlib.md5((token + secret).encode(), usedforsecurity=False).hexdigest()
        result = self.transport.call(
            "POST", self.url, calls, op="login", data={"operation": "login", "username": username, "accessKey": key}
        )
        session = result.get("sessionName") if isinstance(result, dict) else None
        if not isinstance(session, str) or not session:
            raise SourceDataError("Vtiger's login answer has no session")
        register(session, issued=True)
        log.info("logged in to Vtiger as %s", username)
        return session


class Rest:
    """The Cloud REST API: Basic auth on every call, no session."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.url = transport.settings.url + "/restapi/v1/vtiger/default/"
        self._auth = (transport.username, transport.settings.access_key.get_secret_value())

    def describe(self, module: str, calls: Calls) -> Any:
        """The ``describe`` result for ``module``."""
        return self._get("describe", {"elementType": module}, module, calls)

    def listtypes(self, calls: Calls) -> Any:
        """The ``listtypes`` result."""
        return self._get("listtypes", {"fieldTypeList": "null"}, "", calls)

    def query(self, vtql: str, module: str, calls: Calls) -> Any:
        """The rows a VTQL query returns."""
        return self._get("query", {"query": vtql}, module, calls)

    def _get(self, endpoint: str, params: dict[str, str], subject: str, calls: Calls) -> Any:
        try:
            return self.transport.call(
                "GET", self.url + endpoint, calls, op=endpoint, subject=subject, params=params, auth=self._auth
            )
        except SessionRefused as exc:
            raise SourceAuthError(f"Vtiger refused user {self.transport.username!r} ({exc.code})") from None


def make_api(settings: VtigerSettings) -> VtigerApi:
    """The client for ``settings.api``."""
    transport = Transport(settings)
    return Webservice(transport) if settings.api == "webservice" else Rest(transport)
