"""The http source against a small JSON server on 127.0.0.1 (real HTTP, no mocks; only a host name that does not
resolve is played by a transport that fails as one, so that no DNS server is asked)."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import requests
import requests.adapters
from pydantic import ValidationError

from bot.errors import SourceAuthError, SourceDataError, SourceQueryError, SourceUnavailable
from bot.sources.base import NO_CATEGORY, Deadline
from bot.sources.http import Calls, HttpQuery, HttpSettings, HttpSource, seconds, send
from tests.fakes.loopback import LoopbackServer


class JsonServer:
    """Answers every GET with ``status``/``body`` after ``delay`` seconds; keeps the request headers."""

    def __init__(self, handler: type[BaseHTTPRequestHandler] | None = None) -> None:
        self.status = 200
        self.body: Any = {}
        self.content_type = "application/json"
        self.delay = 0.0
        self.extra_headers: dict[str, str] = {}
        self.headers_seen: list[dict[str, str]] = []
        self.connections_closed = threading.Semaphore(0)
        self._server = LoopbackServer(handler or _Handler, self)
        self.url = f"{self._server.base_url}/kpi"

    def close(self) -> None:
        self._server.close()


class _Handler(BaseHTTPRequestHandler):
    server: LoopbackServer[JsonServer]

    def do_GET(self) -> None:
        server = self.server.owner
        server.headers_seen.append(dict(self.headers))
        if server.delay:
            self.server.stopping.wait(server.delay)
        raw = server.body if isinstance(server.body, bytes) else json.dumps(server.body).encode()
        try:
            self.send_response(server.status)
            self.send_header("Content-Type", server.content_type)
            self.send_header("Content-Length", str(len(raw)))
            for name, value in server.extra_headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class _KeepAliveHandler(_Handler):
    """HTTP/1.1: a connection stays open after an answer until the client closes it."""

    protocol_version = "HTTP/1.1"

    def finish(self) -> None:
        super().finish()
        self.server.owner.connections_closed.release()


@pytest.fixture
def server() -> Iterator[JsonServer]:
    running = JsonServer()
    yield running
    running.close()


@pytest.fixture
def make_source(server: JsonServer) -> Iterator[Callable[..., HttpSource]]:
    made: list[HttpSource] = []

    def make(**overrides: object) -> HttpSource:
        settings = HttpSettings.model_validate({"type": "http", "url": server.url, **overrides})
        source = HttpSource("metrics", settings, Path())
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


def fetch(source: HttpSource, path: str, category: str = "priority", seconds: float = 5):
    return source.fetch(HttpQuery(path=path), category, Deadline.after(seconds))


def test_object_of_counts(server: JsonServer, make_source: Callable[..., HttpSource]) -> None:
    server.body = {"data": {"counts": {"High": 3, "Low": 0, "": 2}}}
    result = fetch(make_source(), "data.counts")
    assert result.counts == {"High": 3, "Low": 0, NO_CATEGORY: 2}
    assert (result.plan, result.calls, result.rows) == ("read counts", 1, None)  # no records read: no row count


def test_list_of_records_grouped_by_category(server: JsonServer, make_source: Callable[..., HttpSource]) -> None:
    server.body = {
        "items": [
            {"priority": "High", "state": "open"},
            {"priority": "High", "state": "open"},
            {"priority": None, "state": "open"},
            {"priority": " ", "state": "open"},
            {"state": "open"},
            {"priority": "Low", "state": "closed"},
        ]
    }
    result = fetch(make_source(), "items[?state=='open']")
    assert result.counts == {"High": 2, NO_CATEGORY: 3}
    assert (result.details, result.rows) == ({"rows": 5}, 5)  # the row count stored with the reading


def test_an_empty_list_or_object_is_a_real_zero(server: JsonServer, make_source: Callable[..., HttpSource]) -> None:
    server.body = {"items": [], "counts": {}}
    assert fetch(make_source(), "items").counts == {}
    assert fetch(make_source(), "counts").counts == {}


def test_top_level_list(server: JsonServer, make_source: Callable[..., HttpSource]) -> None:
    server.body = [{"priority": 1}, {"priority": 1}, {"priority": 2}]
    assert fetch(make_source(), "@").counts == {"1": 2, "2": 1}


@pytest.mark.parametrize(
    ("bad", "kind"),
    [(-1, "-1"), ("3", "text"), (2.5, "2.5"), (True, "true"), (None, "null"), ([1], "a list"), ({"n": 1}, "an object")],
)
def test_counts_must_be_non_negative_integers(
    server: JsonServer, make_source: Callable[..., HttpSource], bad: object, kind: str
) -> None:
    server.body = {"counts": {"High": 1, "Low": bad}}
    problem = f"metrics: counts['Low'] is not a non-negative integer count ({kind})"
    with pytest.raises(SourceDataError, match=f"^{re.escape(problem)}$"):
        fetch(make_source(), "counts")


def test_a_created_value_that_is_not_a_date_is_named_cut_to_40_characters(
    server: JsonServer, make_source: Callable[..., HttpSource]
) -> None:
    server.body = {"items": [{"priority": "High", "opened": "sometime " * 10}]}
    cut = ("sometime " * 10)[:40]
    problem = f"metrics: item 1's 'opened' is {cut!r}, not an ISO 8601 date or time"
    with pytest.raises(SourceDataError, match=f"^{re.escape(problem)}$"):
        make_source().fetch(HttpQuery(path="items", created="opened"), "priority", Deadline.after(5))


@pytest.mark.parametrize(
    ("body", "path", "text"),
    [
        ({"data": {}}, "data.counts", "selected nothing"),
        ({"data": "7"}, "data", "selected str"),
        ({"items": [1, 2]}, "items", "item 1 of 'items' is not a JSON object"),
        ({"items": [{"priority": {"a": 1}}]}, "items", "not a single value"),
    ],
)
def test_unexpected_shapes(
    server: JsonServer, make_source: Callable[..., HttpSource], body: object, path: str, text: str
) -> None:
    server.body = body
    with pytest.raises(SourceDataError, match=text):
        fetch(make_source(), path)


def test_path_that_fails_on_the_answer(server: JsonServer, make_source: Callable[..., HttpSource]) -> None:
    server.body = {"data": "text"}
    with pytest.raises(SourceDataError, match="does not apply to the answer"):
        fetch(make_source(), "abs(data)")


def test_category_missing_from_every_record(server: JsonServer, make_source: Callable[..., HttpSource]) -> None:
    server.body = {"items": [{"prio": "High"}]}
    with pytest.raises(SourceQueryError, match="no record under 'items' has a field 'priority'"):
        fetch(make_source(), "items")


def test_invalid_jmespath_fails_at_config_time() -> None:
    with pytest.raises(ValidationError, match="not a valid JMESPath expression"):
        HttpQuery(path="data.[counts")


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        ({"url": "ftp://example.com/x"}, "must be an http:// or https:// address"),
        ({"url": "https://example.com", "username": "u"}, "username and password go together"),
        (
            {"url": "https://example.com", "token": "t", "username": "u", "password": "p"},
            "use either token or username/password, not both",
        ),
    ],
)
def test_invalid_settings(block: dict[str, str], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        HttpSettings.model_validate({"type": "http", **block})


def test_bearer_token_and_basic_auth_are_sent(server: JsonServer, make_source: Callable[..., HttpSource]) -> None:
    server.body = {"c": {"x": 1}}
    fetch(make_source(token="t0ken-abc"), "c")
    fetch(make_source(username="bot", password="pw"), "c")
    assert server.headers_seen[0]["Authorization"] == "Bearer t0ken-abc"
    assert server.headers_seen[1]["Authorization"] == "Basic Ym90OnB3"


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [
        (401, SourceAuthError, "metrics answered HTTP 401"),
        (403, SourceAuthError, "refused"),
        (404, SourceQueryError, "check the url setting"),
        (429, SourceUnavailable, "too many requests"),
        (500, SourceUnavailable, "HTTP 500"),
        (503, SourceUnavailable, "try again later"),
        (302, SourceQueryError, "redirect"),
        (300, SourceQueryError, "a redirect"),
        (399, SourceQueryError, "a redirect"),
        (400, SourceQueryError, "HTTP 400: check the url setting"),
        (499, SourceQueryError, "HTTP 499: check the url setting"),
        (599, SourceUnavailable, "HTTP 599: the service failed"),
    ],
)
def test_http_errors(
    server: JsonServer, make_source: Callable[..., HttpSource], status: int, error: type[Exception], text: str
) -> None:
    server.status = status
    with pytest.raises(error, match=text):
        fetch(make_source(token="t0ken-abc"), "c")


def test_any_2xx_answer_is_read(server: JsonServer, make_source: Callable[..., HttpSource]) -> None:
    server.status, server.body = 299, {"c": {"High": 2}}
    assert fetch(make_source(), "c").counts == {"High": 2}


def test_non_json_body(server: JsonServer, make_source: Callable[..., HttpSource]) -> None:
    server.body, server.content_type = b"<html>login</html>", "text/html; charset=utf-8"
    with pytest.raises(SourceDataError, match=r"not JSON \(text/html\); check the url setting$"):
        fetch(make_source(), "c")


def test_a_redirect_is_not_followed(server: JsonServer, make_source: Callable[..., HttpSource]) -> None:
    server.status, server.extra_headers = 302, {"Location": "/kpi"}
    with pytest.raises(SourceQueryError, match=r"^metrics answered HTTP 302: a redirect; set url to the final"):
        fetch(make_source(), "c")
    assert len(server.headers_seen) == 1


def test_slow_answer_is_cut_at_the_deadline(server: JsonServer, make_source: Callable[..., HttpSource]) -> None:
    server.delay = 3
    with pytest.raises(SourceUnavailable, match=r"^metrics did not answer within 0\.3 s$"):
        fetch(make_source(), "c", seconds=0.3)
    assert len(server.headers_seen) == 1, "the call was made, and cut short"


def test_a_fetch_whose_time_is_spent_makes_no_call(server: JsonServer, make_source: Callable[..., HttpSource]) -> None:
    with pytest.raises(SourceUnavailable, match=r"^metrics did not answer within 0\.1 s$"):
        fetch(make_source(), "c", seconds=0)
    assert server.headers_seen == []


def test_the_read_timeout_cuts_a_slow_answer_within_a_longer_deadline(
    server: JsonServer, make_source: Callable[..., HttpSource]
) -> None:
    server.delay = 3
    with pytest.raises(SourceUnavailable, match=r"^metrics did not answer within 0\.4 s$"):
        fetch(make_source(read_timeout=0.4), "c", seconds=5)


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose listen queue is full: a connection to it is never accepted (it hangs until its timeout)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):  # fills the queue
            yield port


def test_the_connect_timeout_cuts_a_connection_that_is_never_accepted(
    make_source: Callable[..., HttpSource], unanswered_port: int
) -> None:
    source = make_source(url=f"http://127.0.0.1:{unanswered_port}/kpi", connect_timeout=0.3, read_timeout=5)
    with pytest.raises(SourceUnavailable, match=r"^metrics did not answer within 0\.3 s$"):
        fetch(source, "c", seconds=4)


def test_a_connection_cut_by_the_deadline_names_the_deadline(
    make_source: Callable[..., HttpSource], unanswered_port: int
) -> None:
    source = make_source(url=f"http://127.0.0.1:{unanswered_port}/kpi", connect_timeout=5, read_timeout=0.2)
    with pytest.raises(SourceUnavailable, match=r"^metrics did not answer within 0\.5 s$"):
        fetch(source, "c", seconds=0.5)


def test_https_to_a_plain_http_server_is_a_tls_failure(
    server: JsonServer, make_source: Callable[..., HttpSource]
) -> None:
    with pytest.raises(SourceUnavailable, match=r"^cannot reach metrics at 127\.0\.0\.1:\d+ \(TLS handshake failed\)$"):
        fetch(make_source(url=server.url.replace("http://", "https://")), "c")


class _UnresolvableHost(requests.adapters.BaseAdapter):
    """A transport that fails as a host name that does not resolve does (no DNS is asked)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        raise requests.ConnectionError(self.text)

    def close(self) -> None:
        """Nothing to release."""


@pytest.mark.parametrize(
    "text",
    [
        "Failed to resolve 'crm.invalid' ([Errno -2] Name or service not known)",
        "[Errno -2] Name or service not known",
        "[Errno 11001] getaddrinfo failed",
    ],
)
def test_a_host_name_that_does_not_resolve_is_named_so(text: str) -> None:
    session = requests.Session()
    session.mount("http://", _UnresolvableHost(text))
    with pytest.raises(SourceUnavailable, match=r"^cannot reach metrics at crm\.invalid \(host name not found\)$"):
        send(session, "GET", "http://crm.invalid/kpi", Calls(Deadline.after(5), "metrics"), (1, 1))


def test_other_connection_failures_are_named_generally() -> None:
    session = requests.Session()
    session.mount("http://", _UnresolvableHost("Connection reset by peer"))
    with pytest.raises(SourceUnavailable, match=r"^cannot reach metrics at crm\.invalid \(connection failed\)$"):
        send(session, "GET", "http://crm.invalid/kpi", Calls(Deadline.after(5), "metrics"), (1, 1))


@pytest.mark.parametrize(("value", "text"), [(8, "8"), (2.46, "2.5"), (0.25, "0.2"), (0.04, "0.1"), (0, "0.1")])
def test_durations_in_messages_are_rounded_to_a_tenth_and_never_zero(value: float, text: str) -> None:
    assert seconds(value) == text


def test_timeouts_default_to_the_documented_values_and_are_bounded() -> None:
    base = {"type": "http", "url": "https://metrics.example.com"}
    settings = HttpSettings.model_validate(base)
    assert (settings.connect_timeout, settings.read_timeout) == (3.05, 10)
    assert HttpSettings.model_validate(base | {"connect_timeout": 60, "read_timeout": 120}).read_timeout == 120
    assert HttpSettings.model_validate(base | {"connect_timeout": 0.01, "read_timeout": 0.01}).connect_timeout == 0.01
    for key, value, problem in [
        ("connect_timeout", 0, "greater than 0"),
        ("connect_timeout", 60.5, "less than or equal to 60"),
        ("read_timeout", 0, "greater than 0"),
        ("read_timeout", 120.5, "less than or equal to 120"),
    ]:
        with pytest.raises(ValidationError, match=f"{key}\n  Input should be {problem}"):
            HttpSettings.model_validate(base | {key: value})


def test_connection_refused(make_source: Callable[..., HttpSource]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SourceUnavailable, match=f"cannot reach metrics at 127.0.0.1:{port} \\(connection refused\\)"):
        fetch(make_source(url=f"http://127.0.0.1:{port}/kpi?key=s3cret"), "c")


def test_no_credential_in_logs_or_messages(
    server: JsonServer, make_source: Callable[..., HttpSource], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.status = 401
    with pytest.raises(SourceAuthError, match=r"^metrics answered HTTP 401: the token or username/password") as caught:
        fetch(make_source(token="t0ken-abc"), "c")
    assert "t0ken-abc" not in str(caught.value)
    assert "t0ken-abc" not in caplog.text


def test_close_releases_the_kept_alive_connection() -> None:
    server = JsonServer(_KeepAliveHandler)
    server.body = {"c": {"High": 1}}
    source = HttpSource("metrics", HttpSettings.model_validate({"type": "http", "url": server.url}), Path())
    try:
        assert fetch(source, "c").counts == {"High": 1}
        assert fetch(source, "c").counts == {"High": 1}
        assert not server.connections_closed.acquire(timeout=0.2), "the connection is kept between fetches"
        source.close()
        assert server.connections_closed.acquire(timeout=5), "close() closed it"
    finally:
        server.close()


def test_service_names_the_endpoint() -> None:
    assert HttpSource.service == "The JSON endpoint"


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"data": {"counts": {}}, "n": 1}, "answered with a JSON object of 2 keys"),
        ([{"a": 1}, {"a": 2}, {"a": 3}], "answered with a JSON list of 3 items"),
        ("ok", 'answered with the JSON value "ok"'),
        ("x" * 60, 'answered with the JSON value "' + "x" * 39),
    ],
)
def test_check_is_one_get_of_json(
    server: JsonServer, make_source: Callable[..., HttpSource], body: object, text: str
) -> None:
    server.body = body
    assert make_source(token="t0ken-abc").check(Deadline.after(5)) == text
    assert len(server.headers_seen) == 1
    assert server.headers_seen[0]["Authorization"] == "Bearer t0ken-abc"


def test_check_failures(server: JsonServer, make_source: Callable[..., HttpSource]) -> None:
    server.status = 401
    with pytest.raises(SourceAuthError, match="metrics answered HTTP 401"):
        make_source(token="wrong").check(Deadline.after(5))
    server.status, server.body, server.content_type = 200, b"<html>login</html>", "text/html"
    with pytest.raises(SourceDataError, match=r"not JSON \(text/html\)"):
        make_source().check(Deadline.after(5))
    server.delay = 3
    with pytest.raises(SourceUnavailable, match=r"^metrics did not answer within 0\.3 s$"):
        make_source().check(Deadline.after(0.3))
