"""The ``http`` source (counts from any JSON endpoint), and the HTTP call helper sources share.

``send`` makes one HTTP call within a fetch's deadline and turns every
transport failure into a ``SourceUnavailable`` whose message names the service
and what went wrong, never the URL's query string or a credential.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import jmespath
import jmespath.exceptions
import requests
from pydantic import Field, SecretStr, field_validator, model_validator

from bot.errors import SourceAuthError, SourceDataError, SourceQueryError, SourceUnavailable
from bot.sources.base import (
    NOTHING_MORE,
    CategoryCounts,
    Deadline,
    FetchResult,
    Item,
    ItemTally,
    SourceSettings,
    StrictModel,
    Wanted,
    parse_time,
    value_of,
    web_link,
)


def seconds(value: float) -> str:
    """A duration for a message: ``8``, ``2.5``, ``0.3``."""
    return f"{max(round(value, 1), 0.1):g}"


def http_url(value: str) -> str:
    """Validate an http(s) URL from the config; return it without a trailing slash."""
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an http:// or https:// address")
    return value


def host_of(url: str) -> str:
    """``host[:port]`` of ``url``, without any credentials written into it."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


@dataclass
class Calls:
    """The HTTP calls of one fetch: the deadline they share, and how many were made (``queries``: of them, how
    many asked for data, where the source tells them apart from signing in and describing)."""

    deadline: Deadline
    service: str
    count: int = 0
    queries: int = 0
    budget: float = field(init=False)

    def __post_init__(self) -> None:
        self.budget = self.deadline.remaining()

    def timed_out(self) -> SourceUnavailable:
        """The error for a fetch whose time is spent."""
        return SourceUnavailable(f"{self.service} did not answer within {seconds(self.budget)} s")


def send(
    session: requests.Session,
    method: str,
    url: str,
    calls: Calls,
    timeouts: tuple[float, float],
    **kwargs: Any,
) -> requests.Response:
    """One HTTP call, its (connect, read) timeouts capped by the time the fetch has left."""
    remaining = calls.deadline.remaining()
    if remaining <= 0:
        raise calls.timed_out()
    connect, read = min(timeouts[0], remaining), min(timeouts[1], remaining)
    calls.count += 1
    try:
        return session.request(method, url, timeout=(connect, read), allow_redirects=False, **kwargs)
    except requests.Timeout as exc:
        limit = connect if isinstance(exc, requests.ConnectTimeout) else read
        configured = timeouts[0] if isinstance(exc, requests.ConnectTimeout) else timeouts[1]
        if limit < configured:
            raise calls.timed_out() from None
        raise SourceUnavailable(f"{calls.service} did not answer within {seconds(limit)} s") from None
    except requests.ConnectionError as exc:
        raise SourceUnavailable(f"cannot reach {calls.service} at {host_of(url)} ({_reason(exc)})") from None
    except requests.RequestException as exc:
        raise SourceUnavailable(f"{calls.service} call failed ({type(exc).__name__})") from None


def _reason(exc: requests.ConnectionError) -> str:
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "resolve" in text or "name or service not known" in text or "getaddrinfo" in text:
        return "host name not found"
    if "ssl" in text or "certificate" in text:
        return "TLS handshake failed"
    return "connection failed"


def json_body(response: requests.Response, service: str) -> Any:
    """The decoded JSON body, or ``SourceDataError`` saying what came instead (an empty body included)."""
    if not response.content.strip():
        raise SourceDataError(
            f"{service} answered HTTP {response.status_code} with an empty body, not JSON; "
            "check the url setting and that the service is up"
        )
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "").split(";")[0] or "no content type"
        raise SourceDataError(
            f"{service} answered HTTP {response.status_code} with a body that is not JSON ({kind}); "
            "check the url setting"
        ) from None


class HttpSettings(SourceSettings):
    """``type: http``: a JSON endpoint, with a bearer ``token`` or ``username``/``password``."""

    type: Literal["http"]
    url: str
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    connect_timeout: float = Field(default=3.05, gt=0, le=60)
    read_timeout: float = Field(default=10, gt=0, le=120)

    _check_url = field_validator("url")(http_url)

    @model_validator(mode="after")
    def _one_auth(self) -> HttpSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.token is not None and self.username is not None:
            raise ValueError("use either token or username/password, not both")
        return self


class HttpQuery(StrictModel):
    """``path``: a JMESPath expression selecting a ``{category: count}`` object or a list of records.

    For a list of records, optional JMESPath expressions applied to each record
    give its ``title``, ``created`` time (ISO 8601, UTC unless it carries an
    offset) and ``link``.
    """

    path: str
    title: str | None = None
    created: str | None = None
    link: str | None = None
    closed_at: str | None = None
    """When a record was closed (ISO 8601; empty or null while open): a closed KPI needs it."""
    left: str | None = None
    """A count KPI with ``closed_at``: JMESPath selecting its records once closed (``items[?state=='closed']``),
    so the card also says how many were closed since the last post."""

    def unfit_for(self, kind: str) -> str | None:
        """Why this query cannot measure ``kind``: the expression it lacks (None when it can)."""
        if kind == "closed" and not self.closed_at:
            return "a closed KPI on an http source needs count.closed_at: when each record was closed"
        if kind == "aged" and not self.created:
            return "an aged KPI on an http source needs count.created: when each record was created"
        return None

    @field_validator("path", "title", "created", "link", "closed_at", "left")
    @classmethod
    def _valid_path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            jmespath.compile(value)
        except jmespath.exceptions.JMESPathError as exc:
            raise ValueError(f"not a valid JMESPath expression: {exc}") from None
        return value


class HttpSource:
    """Counts from a JSON document fetched with one GET per fetch."""

    Settings: ClassVar[type[SourceSettings]] = HttpSettings
    Query: ClassVar[type[StrictModel]] = HttpQuery
    service: ClassVar[str] = "The JSON endpoint"

    def __init__(self, name: str, settings: HttpSettings, base_dir: Path) -> None:
        self.name = name
        self.settings = settings
        self._http = requests.Session()
        if settings.token is not None:
            self._http.headers["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
        elif settings.username is not None and settings.password is not None:
            self._http.auth = (settings.username, settings.password.get_secret_value())

    def fetch(self, query: HttpQuery, category: str, deadline: Deadline, wanted: Wanted = NOTHING_MORE) -> FetchResult:
        """Fetch the document, select ``query.path``, and count by ``category`` if it is a list
        (then also list, date and count new records as ``wanted`` asks, from the query's expressions).

        A path that selects nothing is an error; an empty object or list is a real 0.
        """
        calls = Calls(deadline, self.name)
        document = self._get(calls)
        try:
            selected = jmespath.search(query.path, document)
        except jmespath.exceptions.JMESPathError as exc:
            raise SourceDataError(f"{self.name}: path {query.path!r} does not apply to the answer ({exc})") from None
        if wanted.kind == "value":
            value = value_of(selected, f"{self.name}: path {query.path!r} selected")
            return FetchResult(counts={}, plan="read value", calls=calls.count, value=value)
        if isinstance(selected, dict) and wanted.kind in ("closed", "aged"):
            raise SourceQueryError(
                f"{self.name}: path {query.path!r} selected counts; a {wanted.kind} KPI needs a list of records "
                "with their times"
            )
        if isinstance(selected, dict):
            counts = self._counts(selected, query.path)
            return FetchResult(counts=counts, plan="read counts", calls=calls.count)
        if isinstance(selected, list):
            tally = ItemTally(wanted, dated=query.created is not None)
            counts = self._group(selected, category, query, tally)
            result = tally.result(counts, "group records", calls.count, {"rows": len(selected)})
            return replace(result, closed_since=self._closed_since(document, query, wanted))
        found = "nothing" if selected is None else type(selected).__name__
        raise SourceDataError(
            f"{self.name}: path {query.path!r} selected {found}; it must select a {{category: count}} object "
            "or a list of records"
        )

    def check(self, deadline: Deadline) -> str:
        """One GET of the url: proves it answers the configured credentials with JSON."""
        document = self._get(Calls(deadline, self.name))
        if isinstance(document, dict):
            return f"answered with a JSON object of {len(document)} keys"
        if isinstance(document, list):
            return f"answered with a JSON list of {len(document)} items"
        return f"answered with the JSON value {json.dumps(document)[:40]}"

    def close(self) -> None:
        """Release pooled connections."""
        self._http.close()

    def _get(self, calls: Calls) -> Any:
        """The decoded JSON document at the url (one GET)."""
        timeouts = (self.settings.connect_timeout, self.settings.read_timeout)
        response = send(self._http, "GET", self.settings.url, calls, timeouts, headers={"Accept": "application/json"})
        self._check_status(response)
        return json_body(response, self.name)

    def _check_status(self, response: requests.Response) -> None:
        status = response.status_code
        if status < 300:
            return
        where = f"{self.name} answered HTTP {status}"
        if status in {401, 403}:
            raise SourceAuthError(f"{where}: the token or username/password was refused")
        if status == 429:
            after = response.headers.get("Retry-After")
            raise SourceUnavailable(f"{where}: too many requests" + (f" (retry after {after} s)" if after else ""))
        if status >= 500:
            raise SourceUnavailable(f"{where}: the service failed; try again later")
        if 300 <= status < 400:
            raise SourceQueryError(f"{where}: a redirect; set url to the final address")
        raise SourceQueryError(f"{where}: check the url setting")

    def _counts(self, selected: dict[str, Any], path: str) -> dict[str, int]:
        counts = CategoryCounts()
        for key, value in selected.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                kinds: dict[type, str] = {str: "text", list: "a list", dict: "an object"}
                kind = kinds.get(type(value)) or json.dumps(value)
                raise SourceDataError(f"{self.name}: {path}[{key!r}] is not a non-negative integer count ({kind})")
            counts.add(key, value)
        return counts.counts

    def _group(self, records: list[Any], category: str, query: HttpQuery, tally: ItemTally) -> dict[str, int]:
        path = query.path
        counts = CategoryCounts()
        seen_field = not records or not category
        for number, record in enumerate(records, start=1):
            if not isinstance(record, dict):
                raise SourceDataError(f"{self.name}: item {number} of {path!r} is not a JSON object")
            value = record.get(category) if category else None
            seen_field = seen_field or category in record
            if isinstance(value, dict | list):
                raise SourceDataError(f"{self.name}: {category!r} of item {number} is not a single value")
            item = self._item(query, record, counts.name(value), number)
            closed = self._time(query.closed_at, record, number) if query.closed_at else None
            if tally.wanted.keeps(item.created, closed):
                counts.add(value)
                tally.add(item)
        if not seen_field:
            raise SourceQueryError(f"{self.name}: no record under {path!r} has a field {category!r}")
        return counts.counts

    def _closed_since(self, document: Any, query: HttpQuery, wanted: Wanted) -> int | None:
        """How many of the records ``query.left`` selects were closed after ``wanted.since`` (None: not asked)."""
        if not (query.left and query.closed_at and wanted.kind == "count" and wanted.since is not None):
            return None
        try:
            records = jmespath.search(query.left, document)
        except jmespath.exceptions.JMESPathError as exc:
            raise SourceDataError(f"{self.name}: left {query.left!r} does not apply to the answer ({exc})") from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise SourceDataError(f"{self.name}: left {query.left!r} must select a list of records")
        since = wanted.since
        return sum(1 for n, r in enumerate(records, 1) if (at := self._time(query.closed_at, r, n)) and at > since)

    def _pick(self, expression: str | None, record: dict[str, Any], number: int) -> str:
        try:
            found = jmespath.search(expression, record) if expression else None
        except jmespath.exceptions.JMESPathError as exc:
            raise SourceDataError(f"{self.name}: {expression!r} does not apply to item {number} ({exc})") from None
        return "" if found is None or isinstance(found, dict | list) else str(found).strip()

    def _time(self, expression: str | None, record: dict[str, Any], number: int) -> datetime | None:
        text = self._pick(expression, record, number)
        try:
            return parse_time(text)
        except ValueError:
            raise SourceDataError(
                f"{self.name}: item {number}'s {expression!r} is {text[:40]!r}, not an ISO 8601 date or time"
            ) from None

    def _item(self, query: HttpQuery, record: dict[str, Any], category: str, number: int) -> Item:
        moment = self._time(query.created, record, number)
        title, link = self._pick(query.title, record, number), web_link(self._pick(query.link, record, number))
        return Item(title=title, category=category, created=moment, link=link)
