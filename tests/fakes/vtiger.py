"""A stand-in Vtiger CRM 8.2 on 127.0.0.1: ``webservice.php`` and the Cloud REST API.

Written from the project's Vtiger reference, it enforces what the real server
does: challenge tokens that expire (``clock``, ``token_ttl``), the md5 login,
the HTTP method per operation, sessions (``expire_sessions``), the error
envelope and its codes, the VTQL subset (parentheses, NOT, IS NULL, ``<>`` and
a missing ``;`` are QUERY_SYNTAX_ERROR; ``= ''`` is INTERNAL_SERVER_ERROR),
the 100-row clamp, ``count(*)`` as a string, ``SELECT`` of named columns
(``id`` always comes back), ``ORDER BY`` a column (``createdtime`` as the
text ``YYYY-MM-DD HH:MM:SS`` it is, which sorts and compares by time),
``labelFields`` in ``describe``, HTTP 500 with an empty body for an
unknown operation, slow answers (``delay``), and on the REST side Basic auth,
HTTP 429 (``throttle``, ``retry_after``) and ``X-FloodControl-*`` headers
(``flood``); one challenge token a user, replaced by each getchallenge (``rival_challenges``
plays another client asking in between); ``hold_queries`` keeps every query waiting until ``release``
(``held`` is set when the first one arrives, ``holding`` counts those
waiting). Every request is recorded in ``seen``; ``inject`` queues canned
answers for an operation. With ``echo_secrets`` set, every query is refused
with QUERY_SYNTAX_ERROR and a message repeating the session name, as a
careless server's error text might. A subclass may narrow the records a query
is tested on (`_candidates`) or keep the matches of each query (`_matching`).

Conditions go to SQL as written, so a field set to ``None`` is NULL: no
condition matches it (``!=`` neither), as in MySQL. Comparisons are the
database's (utf8mb3_general_ci, checked on a live 8.2): letter case and
accents do not count, and neither do trailing spaces except in ``LIKE``
(``'HIGH ' = 'Hígh'``, so ``'HIGH ' != 'High'`` is false); leading spaces
do. ``AND`` binds tighter than ``OR``. ``picklists`` is what ``describe``
lists: change it to rename or remove values that records keep.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import secrets
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.loopback import LoopbackServer

PICKLISTS: dict[str, dict[str, list[str]]] = {
    "Calendar": {
        "taskpriority": ["High", "Medium", "Low"],
        "taskstatus": ["Not Started", "In Progress", "Completed", "Pending Input", "Deferred", "Planned"],
        "activitytype": ["Task", "Call", "Meeting"],
    },
    "HelpDesk": {
        "ticketpriorities": ["Low", "Normal", "High", "Urgent"],
        "ticketstatus": ["Open", "In Progress", "Wait For Response", "Closed"],
        "ticketseverities": ["Minor", "Major", "Feature", "Critical"],
        "ticketcategories": ["Big Problem", "Small Problem", "Other Problem"],
    },
}
TEXT_FIELDS = {
    "Calendar": ["subject", "assigned_user_id", "createdtime", "modifiedtime", "date_start", "due_date"],
    "HelpDesk": ["ticket_title", "ticket_no", "assigned_user_id", "createdtime", "modifiedtime"],
}
ID_PREFIX = {"Calendar": "9", "HelpDesk": "17"}
LABEL_FIELDS = {"Calendar": "subject", "HelpDesk": "title"}
"""``describe``'s ``labelFields`` as a live 8.2 answers: the label's database column names, comma-separated;
HelpDesk's ``title`` is not the webservice field name (``ticket_title``)."""
GET_OPS = {"getchallenge", "query", "describe", "listtypes", "retrieve"}
POST_OPS = {"login", "logout", "create", "update", "revise", "delete"}
REST_PREFIX = "/restapi/v1/vtiger/default/"
SESSION_ERRORS = ("INVALID_SESSIONID", "SESSION_EXPIRED", "SESSION_LEFT_IDLE", "AUTHENTICATION_REQUIRED")

_LEX = re.compile(r"\s*(?:(?P<word>\w+)|(?P<string>'(?:[^']|'')+')|(?P<op><=|>=|!=|=|<|>)|(?P<punct>[(),*;]))")
_COMPARE = {"=", "!=", "<", ">", "<=", ">=", "LIKE", "IN"}


@dataclass(frozen=True)
class Seen:
    """One request the fake received."""

    api: str
    method: str
    operation: str
    query: str | None = None
    session: str | None = None


class VtigerError(Exception):
    """An answer ``{"success": false, "error": {code, message}}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


def error_body(code: str, message: str = "injected") -> dict[str, Any]:
    """The envelope of a failed call."""
    return {"success": False, "error": {"code": code, "message": message}}


class FakeVtiger:
    """A threaded HTTP server holding records per module in memory."""

    def __init__(
        self,
        username: str = "scorebot",
        access_key: str = "Kx7d2QpZ9vTr41Lm",
        clock: Callable[[], float] | None = None,
        *,
        keep_alive: bool = False,
    ) -> None:
        self.username = username
        self.access_key = access_key
        self.clock = clock or time.monotonic
        self.token_ttl = 300.0
        self.delay = 0.0
        self.records: dict[str, list[dict[str, str | None]]] = {module: [] for module in PICKLISTS}
        self.picklists = {module: {f: list(v) for f, v in fields.items()} for module, fields in PICKLISTS.items()}
        self.seen: list[Seen] = []
        self.sessions: set[str] = set()
        self.throttle = 0
        self.retry_after: str | None = None
        self.flood: tuple[int, float] | None = None
        self.echo_secrets = False
        self.rival_challenges = 0
        """How many of the next getchallenge answers another client's getchallenge follows at once, replacing
        the token (8.2 keeps one a user), so a login with the answered token is refused."""
        self.echoed: list[str] = []
        self._tokens: dict[str, tuple[str, float]] = {}
        self._canned: dict[str, deque[tuple[int, dict[str, str], bytes]]] = {}
        self._next_id = 1
        self._lock = threading.Lock()
        self.connections_closed = threading.Semaphore(0)
        """Released each time a client closes a kept-alive connection (with ``keep_alive``: HTTP/1.1)."""
        self.held = threading.Event()
        self.holding = 0
        self._gate: threading.Event | None = None
        self._server = LoopbackServer(_KeepAliveHandler if keep_alive else _Handler, self)

    @property
    def url(self) -> str:
        """The base URL (what a user writes as ``url``)."""
        return self._server.base_url

    def close(self) -> None:
        """Stop serving and release the port."""
        self.release()
        self._server.close()

    def add(self, module: str, count: int, **values: str | None) -> None:
        """Add ``count`` records to ``module`` with these field values (other fields empty; None is NULL)."""
        with self._lock:
            for _ in range(count):
                record: dict[str, str | None] = {name: "" for name in (*PICKLISTS[module], *TEXT_FIELDS[module])}
                record.update({"id": f"{ID_PREFIX[module]}x{self._next_id}", "activitytype": "Task"})
                if module != "Calendar":
                    del record["activitytype"]
                record.update(values)
                self.records[module].append(record)
                self._next_id += 1

    def hold_queries(self) -> None:
        """Keep every query waiting (at most 10 s) until `release`: a source that hangs."""
        self.held.clear()
        self._gate = threading.Event()

    def release(self) -> None:
        """Let held queries, and every later one, be answered."""
        if self._gate is not None:
            self._gate.set()

    def expire_sessions(self) -> None:
        """Make every session invalid, as Vtiger does after 30 idle minutes."""
        with self._lock:
            self.sessions.clear()

    def inject(
        self, operation: str, body: dict[str, Any] | bytes, status: int = 200, times: int = 1, **headers: str
    ) -> None:
        """Answer the next ``times`` requests for ``operation`` (either API) with this instead."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        with self._lock:
            queue = self._canned.setdefault(operation, deque())
            queue.extend([(status, headers, raw)] * times)

    def count(self, operation: str | None = None, api: str | None = None) -> int:
        """How many requests (for ``operation``, through ``api``) arrived."""
        with self._lock:
            return sum(1 for s in self.seen if (operation is None or s.operation == operation) and api in (None, s.api))

    def queries(self) -> list[str]:
        """The VTQL of every query received, in order."""
        with self._lock:
            return [s.query or "" for s in self.seen if s.operation == "query"]

    # --- request handling --------------------------------------------------------

    def respond(
        self, method: str, path: str, params: dict[str, str], headers: Any
    ) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body for one request."""
        if self.delay:
            self._server.stopping.wait(self.delay)
        gate = self._gate
        if gate is not None and (params.get("operation") == "query" or path == REST_PREFIX + "query"):
            with self._lock:
                self.holding += 1
            self.held.set()
            gate.wait(10)
            with self._lock:
                self.holding -= 1
        if path == "/webservice.php":
            return self._webservice(method, params)
        if path.startswith(REST_PREFIX):
            return self._rest(method, path.removeprefix(REST_PREFIX), params, headers)
        return 404, {"Content-Type": "text/html"}, b"<html>Not Found</html>"

    def _webservice(self, method: str, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        op = params.get("operation", "")
        session = params.get("sessionName")
        with self._lock:
            self.seen.append(Seen("webservice", method, op, params.get("query"), session))
            canned = self._pop(op)
        if canned:
            return canned
        if op not in GET_OPS | POST_OPS or op == "logout":
            return 500, {}, b""
        try:
            if op == "login" and method != "POST":
                raise VtigerError("INVALID_AUTH_TOKEN", "Specified token is invalid or expired")
            if (op in GET_OPS and method != "GET") or (op in POST_OPS and method != "POST"):
                raise VtigerError("ACCESS_DENIED", "Permission to perform the operation is denied")
            if op == "getchallenge":
                return _ok(self._challenge(params.get("username", "")))
            if op == "login":
                return _ok(self._login(params.get("username", ""), params.get("accessKey", "")))
            with self._lock:
                if not session:
                    raise VtigerError("AUTHENTICATION_REQUIRED", "Authentication required")
                if session not in self.sessions:
                    raise VtigerError("INVALID_SESSIONID", "Session Identifier provided is Invalid")
                if op == "query" and self.echo_secrets:
                    message = f"Parsing failed for session {session}"
                    self.echoed.append(message)
                    raise VtigerError("QUERY_SYNTAX_ERROR", message)
            return _ok(self._read(op, params))
        except VtigerError as exc:
            return 200, {"Content-Type": "application/json"}, json.dumps(error_body(exc.code, exc.message)).encode()

    def _rest(
        self, method: str, endpoint: str, params: dict[str, str], headers: Any
    ) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.seen.append(Seen("rest", method, endpoint, params.get("query")))
            canned = self._pop(endpoint)
            extra = {}
            if self.flood is not None:
                extra = {
                    "X-FloodControl-Remaining": str(self.flood[0]),
                    "X-FloodControl-Reset": str(int(self.flood[1])),
                }
            throttled = self.throttle > 0
            self.throttle -= 1 if throttled else 0
        if throttled:
            if self.retry_after is not None:
                extra["Retry-After"] = self.retry_after
            return (
                429,
                {**extra, "Content-Type": "application/json"},
                json.dumps(error_body("TOO_MANY_REQUESTS")).encode(),
            )
        if canned:
            return canned[0], {**extra, **canned[1]}, canned[2]
        expected = base64.b64encode(f"{self.username}:{self.access_key}".encode()).decode()
        if headers.get("Authorization") != f"Basic {expected}":
            body = error_body("INVALID_USER_CREDENTIALS", "Invalid username or password")
            return 401, {**extra, "Content-Type": "application/json"}, json.dumps(body).encode()
        if method != "GET" or endpoint not in {"me", "listtypes", "describe", "query", "retrieve"}:
            return 404, {**extra, "Content-Type": "application/json"}, json.dumps(error_body("NOT_FOUND")).encode()
        try:
            result = {"id": "19x1", "user_name": self.username} if endpoint == "me" else self._read(endpoint, params)
            status, body = 200, {"success": True, "result": result}
        except VtigerError as exc:
            status = {"ACCESS_DENIED": 403, "INTERNAL_SERVER_ERROR": 500}.get(exc.code, 400)
            body = error_body(exc.code, exc.message)
        return status, {**extra, "Content-Type": "application/json"}, json.dumps(body).encode()

    def _pop(self, operation: str) -> tuple[int, dict[str, str], bytes] | None:
        queue = self._canned.get(operation)
        return queue.popleft() if queue else None

    def _challenge(self, username: str) -> dict[str, Any]:
        if username != self.username:
            raise VtigerError("ACCESS_DENIED", "No username given or user does not exist")
        token = secrets.token_hex(8)
        with self._lock:
            self._tokens[username] = (token, self.clock() + self.token_ttl)
            if self.rival_challenges > 0:
                self.rival_challenges -= 1
                self._tokens[username] = (secrets.token_hex(8), self.clock() + self.token_ttl)
        now = int(time.time())
        return {"token": token, "serverTime": now, "expireTime": now + int(self.token_ttl)}

    def _login(self, username: str, access_key: str) -> dict[str, Any]:
        with self._lock:
            token, expires = self._tokens.get(username, ("", 0.0))
            if not token or self.clock() >= expires:
                raise VtigerError("INVALID_AUTH_TOKEN", "Specified token is invalid or expired")
            expected = hashlib.md5((token + self.access_key).encode(), usedforsecurity=False).hexdigest()
            if access_key != expected:
                raise VtigerError("INVALID_USER_CREDENTIALS", "Invalid username or password")
            del self._tokens[username]
            session = secrets.token_hex(12)
            self.sessions.add(session)
        return {"sessionName": session, "userId": "19x1", "version": "0.22", "vtigerVersion": "8.2.0"}

    def _read(self, op: str, params: dict[str, str]) -> Any:
        if op == "listtypes":
            names = list(self.records)
            return {"types": names, "information": {n: {"isEntity": True, "label": n, "singular": n} for n in names}}
        if op == "describe":
            return self._describe(params.get("elementType", ""))
        if op == "retrieve":
            wanted = params.get("id", "")
            with self._lock:
                found = [r for rs in self.records.values() for r in rs if r["id"] == wanted]
            if not found:
                raise VtigerError("ACCESS_DENIED", "Permission to read given object is denied")
            return dict(found[0])
        return self._query(params.get("query", ""))

    def _describe(self, module: str) -> dict[str, Any]:
        if module not in PICKLISTS:
            raise VtigerError("ACCESS_DENIED", f"Permission to perform the operation is denied for name {module}")
        fields: list[dict[str, Any]] = [{"name": "id", "label": "id", "type": {"name": "autogenerated"}}]
        fields += [{"name": f, "label": f, "type": {"name": "string"}} for f in TEXT_FIELDS[module]]
        for name, values in self.picklists[module].items():
            options = [{"label": v, "value": v} for v in values]
            fields.append({"name": name, "label": name, "type": {"name": "picklist", "picklistValues": options}})
        return {
            "label": module,
            "name": module,
            "idPrefix": ID_PREFIX[module],
            "fields": fields,
            "labelFields": LABEL_FIELDS[module],
        }

    # --- VTQL -----------------------------------------------------------------------

    def _query(self, vtql: str) -> list[dict[str, str | None]]:
        tokens = _lex(vtql)
        at = 0

        def peek() -> str:
            return tokens[at][1] if at < len(tokens) else ""

        def take() -> tuple[str, str]:
            nonlocal at
            if at >= len(tokens):
                raise VtigerError("QUERY_SYNTAX_ERROR", "Parsing failed")
            at += 1
            return tokens[at - 1]

        def expect(word: str) -> None:
            if take()[1].upper() != word:
                raise VtigerError("QUERY_SYNTAX_ERROR", f"Syntax Error: expected {word}")

        expect("SELECT")
        columns: list[str] = []
        counting = star = False
        if peek().lower() == "count":
            take()
            for part in "(*)":
                if take()[1] != part:
                    raise VtigerError("QUERY_SYNTAX_ERROR", "Syntax Error in count(*)")
            counting = True
        elif peek() == "*":
            take()
            star = True
        else:
            columns.append(_column(take()))
            while peek() == ",":
                take()
                columns.append(_column(take()))
        expect("FROM")
        module = _column(take())
        if module not in PICKLISTS:
            raise VtigerError("ACCESS_DENIED", f"Permission to perform the operation is denied for name {module}")
        conditions: list[tuple[str, str, list[str]]] = []
        joins: list[str] = []
        if peek().upper() == "WHERE":
            take()
            while True:
                conditions.append(_condition(take, peek))
                if peek().upper() not in {"AND", "OR"}:
                    break
                joins.append(take()[1].upper())
        order: list[str] = []
        descending = False
        if peek().upper() == "ORDER":
            take()
            expect("BY")
            order.append(_column(take()))
            while peek() == ",":
                take()
                order.append(_column(take()))
            if peek().upper() in {"ASC", "DESC"}:
                descending = take()[1].upper() == "DESC"
        limit: list[int] = []
        if peek().upper() == "LIMIT":
            take()
            limit.append(_number(take()))
            if peek() == ",":
                take()
                limit.append(_number(take()))
        if take()[1] != ";" or at != len(tokens):
            raise VtigerError("QUERY_SYNTAX_ERROR", "Syntax Error: expected ;")

        known = {"id", *PICKLISTS[module], *TEXT_FIELDS[module]}
        for name in [*columns, *order, *(c[0] for c in conditions)]:
            if name not in known:
                raise VtigerError("ACCESS_DENIED", f"Permission to access '{name}' attribute denied.")
        matching = self._matching(module, conditions, joins, order if not counting else [], descending)
        if counting:
            return [{"count": str(len(matching))}]
        offset, size = (0, limit[0]) if len(limit) == 1 else (limit[0], limit[1]) if limit else (0, 100)
        page = matching[offset : offset + min(size, 100)]
        if star:
            return page
        return [{c: r.get(c, "") for c in [*columns, "id"]} for r in page]

    def _matching(
        self,
        module: str,
        conditions: list[tuple[str, str, list[str]]],
        joins: list[str],
        order: list[str],
        descending: bool,
    ) -> list[dict[str, str | None]]:
        """Copies of the records of ``module`` that pass the conditions, sorted by ``order``."""
        with self._lock:
            records = [dict(r) for r in self._candidates(module, conditions, joins)]
        if module == "Calendar":
            records = [r for r in records if r.get("activitytype") == "Task"]
        matching = [r for r in records if _matches(r, conditions, joins)]
        if order:
            matching.sort(key=lambda r: [_sort_key(r.get(c) or "") for c in order], reverse=descending)
        return matching

    def _candidates(
        self, module: str, conditions: list[tuple[str, str, list[str]]], joins: list[str]
    ) -> list[dict[str, str | None]]:
        """The records the conditions are tested on (called holding the lock): all of ``module``'s."""
        return self.records[module]


def _ok(result: Any) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps({"success": True, "result": result}).encode()


def _lex(vtql: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    at = 0
    while at < len(vtql.rstrip()):
        match = _LEX.match(vtql, at)
        if not match or match.lastgroup is None:
            raise VtigerError("INTERNAL_SERVER_ERROR", "Unexpected input in the query")
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        at = match.end()
    return tokens


def _column(token: tuple[str, str]) -> str:
    if token[0] != "word":
        raise VtigerError("QUERY_SYNTAX_ERROR", f"Syntax Error: unexpected {token[1]!r}")
    return token[1]


def _number(token: tuple[str, str]) -> int:
    if not token[1].isdigit():
        raise VtigerError("QUERY_SYNTAX_ERROR", "Syntax Error in LIMIT")
    return int(token[1])


def _value(token: tuple[str, str]) -> str:
    kind, text = token
    if kind == "string":
        return text[1:-1].replace("''", "'")
    if kind == "word":
        return text
    raise VtigerError("QUERY_SYNTAX_ERROR", f"Syntax Error: unexpected {text!r}")


def _condition(take: Callable[[], tuple[str, str]], peek: Callable[[], str]) -> tuple[str, str, list[str]]:
    column = _column(take())
    kind, op = take()
    op = op.upper()
    if op not in _COMPARE or (kind == "word" and op not in {"LIKE", "IN"}):
        raise VtigerError("QUERY_SYNTAX_ERROR", f"Syntax Error: unexpected {op!r} after {column}")
    if op != "IN":
        return column, op, [_value(take())]
    if take()[1] != "(":
        raise VtigerError("QUERY_SYNTAX_ERROR", "Syntax Error: IN needs a list")
    values = [_value(take())]
    while peek() == ",":
        take()
        values.append(_value(take()))
    if take()[1] != ")":
        raise VtigerError("QUERY_SYNTAX_ERROR", "Syntax Error: IN list not closed")
    return column, op, values


def _matches(record: dict[str, str | None], conditions: list[tuple[str, str, list[str]]], joins: list[str]) -> bool:
    """Whether ``record`` passes the conditions, AND binding tighter than OR (as checked on a live 8.2)."""
    if not conditions:
        return True
    alternatives = [[conditions[0]]]
    for join, condition in zip(joins, conditions[1:], strict=True):
        if join == "OR":
            alternatives.append([])
        alternatives[-1].append(condition)
    return any(all(_test(record, c) for c in alternative) for alternative in alternatives)


def _test(record: dict[str, str | None], condition: tuple[str, str, list[str]]) -> bool:
    column, op, values = condition
    if record.get(column) is None:
        return False  # SQL NULL: unknown, never true
    have = _fold(str(record.get(column)))
    wanted = [_fold(v) for v in values]
    if op != "LIKE":  # the collation pads with spaces: trailing spaces do not count
        have, wanted = have.rstrip(" "), [v.rstrip(" ") for v in wanted]
    if op == "IN":
        return have in wanted
    if op == "LIKE":
        pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in wanted[0])
        return re.fullmatch(pattern, have, re.DOTALL) is not None
    left, right = _sort_key(have), _sort_key(wanted[0])
    if type(left[0]) is not type(right[0]):
        left, right = (1, have), (1, wanted[0])
    return {
        "=": left == right,
        "!=": left != right,
        "<": left < right,
        ">": left > right,
        "<=": left <= right,
        ">=": left >= right,
    }[op]


@functools.lru_cache(maxsize=65536)
def _fold(text: str) -> str:
    """``text`` without letter case or accents, as the database's collation compares it."""
    letters = unicodedata.normalize("NFD", text)
    return "".join(c for c in letters if not unicodedata.combining(c)).casefold()


def _sort_key(value: str) -> tuple[Any, ...]:
    """Numbers (and ids like 9x12) by value, other text as text."""
    number = value.split("x", 1)[-1] if re.fullmatch(r"\d+x\d+", value) else value
    try:
        return (float(number),)
    except ValueError:
        return (1, value)


class _Handler(BaseHTTPRequestHandler):
    server: LoopbackServer[FakeVtiger]

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def _answer(self, method: str) -> None:
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
            params.update({k: v[-1] for k, v in form.items()})
        status, headers, body = self.server.owner.respond(method, parts.path, params, self.headers)
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class _KeepAliveHandler(_Handler):
    """HTTP/1.1: a connection stays open after an answer until the client closes it."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    """The headers and the body go out as two writes: with Nagle's algorithm on, the second waits for the
    client's delayed ACK (40 ms on Linux) on a kept-alive connection, which no real server adds."""

    def finish(self) -> None:
        super().finish()
        self.server.owner.connections_closed.release()
