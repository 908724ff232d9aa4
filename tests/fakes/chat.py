"""A loopback fake of Google Chat's message endpoint, for webhooks and the Chat API alike.

`FakeChat` is a ThreadingHTTPServer on 127.0.0.1 (port 0) serving:

- ``POST /v1/spaces/X/messages``: records every request (method, path, query,
  body, headers, monotonic time), then answers as Chat does: the created
  message (``name``, ``thread.name``), or 409 ``ALREADY_EXISTS`` for a
  ``messageId`` the Space already has, or 400 for a ``messageId`` that is not
  ``client-`` + at most 56 lowercase letters, digits and hyphens, or whatever
  the test scripted for that Space (`answer`: 429 with Retry-After, 500, 404,
  ... once each, in order; `always`: every time), or it hangs (`hang`) until
  released, after storing the message or before, or it stores the message and
  answers late (`slow`), or takes it in late (`late`: the request is recorded
  only some time after its bytes came, as if held up on its way), or (`echo_secrets`) it refuses with 403 and a message
  that repeats the request's key, token and bearer token, as Google's errors
  name the API key they refuse; whether a webhook post (one with ``key`` in
  its query) honours ``messageId`` is *unverified*, so it is a switch
  (``webhook_ids``, off by default); or (`flaky`) it refuses a random share
  of the requests with 429 or 503;
- ``PATCH /v1/spaces/X/messages/ID?updateMask=...&allowMissing=...``
  (``messages.patch``): replaces the fields the mask names (``text``,
  ``cardsV2`` or ``cards_v2``) of a stored message; an unknown ID answers 404
  ``NOT_FOUND``, unless ``allowMissing=true`` and the ID is client-assigned,
  which creates the message (the mask ignored); an unknown mask field or a
  missing mask answers 400. Scripted answers, hangs and slow answers apply as
  for ``POST``;
- ``GET /v1/spaces/X/members/M`` (``spaces.members.get``): the membership
  of user ``M`` (their id, or email) set by `member`, as Chat answers it
  (``name``, ``state: JOINED``, ``role`` ``ROLE_MANAGER`` or ``ROLE_MEMBER``,
  ``member``), or 404 ``NOT_FOUND`` for someone not in the Space; a request
  without the app's access token answers 401 ``UNAUTHENTICATED``, and
  `member_answers` scripts failures (each request is in ``member_requests``);
- ``GET /v1/spaces/X/messages/ID`` (``messages.get``): the stored message (with ``thread.name``), or 404
  ``NOT_FOUND``; recorded in ``reads``, not in ``received``;
- a created message joins the thread its body names: ``thread.threadKey`` (the thread of that key) or
  ``thread.name`` (a thread of the Space), with ``messageReplyOption``
  ``REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD``; without that option the body's thread is ignored and the
  message starts its own thread, and a ``thread.name`` no message of the Space is in falls back to a new one;
- ``POST /token``: an OAuth token endpoint, so a service-account key file
  whose ``token_uri`` points here drives google-auth's real refresh path
  (`token_answers` scripts failures, ``token_delay`` slows every answer).

`write_config` writes a Scorebot config whose targets point at the fake.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from tests.fakes.loopback import LoopbackServer
from tests.tokens import signing_key

ACCESS_TOKEN = "fake-access-token"
HANG_LIMIT_SECONDS = 20
CLIENT_ID = re.compile(r"client-[a-z0-9-]{1,56}")
"""A client-assigned message ID as Chat accepts it: ``client-``, lowercase letters, digits, hyphens, <= 63 in all."""
MASK_FIELDS = {"text": "text", "cardsV2": "cardsV2", "cards_v2": "cardsV2"}
"""``updateMask`` paths the fake applies (JSON and proto spellings) and the message field each replaces."""
SCHEDULE = "1-59 9 * * *"
"""Every minute from 09:01 UTC: a first tick at 09:00:30 finds nothing due (09:00 is not a slot)."""


@dataclass(frozen=True)
class Received:
    """One request to a message endpoint, as the fake saw it."""

    path: str
    query: dict[str, str]
    body: dict[str, Any]
    headers: dict[str, str]
    at: float
    status: int = 0
    method: str = "POST"

    @property
    def space(self) -> str:
        """``spaces/X`` from the path."""
        return "/".join(self.path.split("/")[2:4])


@dataclass
class _Slow:
    seconds: float
    arrived: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Hang:
    landed: bool
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


class FakeChat:
    """The fake Chat endpoint; ``received`` holds every message request, ``created`` the stored messages."""

    def __init__(self, *, webhook_ids: bool = False, token_delay: float = 0.0) -> None:
        self.received: list[Received] = []
        self.created: dict[tuple[str, str], dict[str, Any]] = {}
        self.token_requests = 0
        self.webhook_ids = webhook_ids
        self.token_delay = token_delay
        self._token_answers: list[int] = []
        self._slow: dict[str, _Slow] = {}
        self._answers: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self._always: dict[str, int] = {}
        self._hangs: dict[str, _Hang] = {}
        self._echo: set[str] = set()
        self._late: dict[str, float] = {}
        self._flaky: dict[str, tuple[float, random.Random]] = {}
        self.memberships: dict[tuple[str, str], str] = {}
        self.member_requests: list[tuple[str, str]] = []
        """(Space, member) of every ``spaces.members.get``, in order."""
        self._member_answers: list[int] = []
        self.answered: list[tuple[str, str, int]] = []
        """(Space, messageId, status) of every message request answered, in order."""
        self.echoed: list[str] = []
        self.reads: list[tuple[str, str]] = []
        """(Space, message id) of every ``messages.get``, in order."""
        self.scripted_status = "SCRIPTED"
        """The ``error.status`` of scripted error answers."""
        self._lock = threading.Lock()
        self._counter = 0
        self._server = LoopbackServer(_handler(self), self)
        self.url = f"{self._server.base_url}/"
        self.token_uri = f"{self.url}token"

    def close(self) -> None:
        """Release any hung request and stop the server."""
        for hang in self._hangs.values():
            hang.release.set()
        self._server.close()

    def webhook_url(self, space_id: str) -> str:
        """A webhook URL for ``spaces/space_id`` on the fake (with the secret-looking key and token)."""
        return f"{self.url}v1/spaces/{space_id}/messages?key=secret-key&token=secret-token"

    def answer(self, space: str, *answers: tuple[int, dict[str, str]]) -> None:
        """Answer the next requests to ``space`` with these (status, headers), one each."""
        with self._lock:
            self._answers.setdefault(space, []).extend(answers)

    def always(self, space: str, status: int) -> None:
        """Answer every request to ``space`` with ``status`` (e.g. 404: a deleted webhook)."""
        self._always[space] = status

    def flaky(self, space: str, rate: float, seed: int) -> None:
        """Answer a share ``rate`` of the requests to ``space`` with 429 or 503 (half each, drawn from ``seed``)
        before looking at them, as an overloaded Chat does."""
        self._flaky[space] = (rate, random.Random(seed))

    def echo_secrets(self, space: str) -> None:
        """Refuse every request to ``space`` with 403, repeating its credentials in the error message."""
        self._echo.add(space)

    def hang(self, space: str, *, landed: bool) -> _Hang:
        """Hold the next request to ``space`` until released; ``landed``: store the message first."""
        hang = _Hang(landed)
        self._hangs[space] = hang
        return hang

    def slow(self, space: str, seconds: float) -> _Slow:
        """Store every message to ``space`` at once but answer ``seconds`` later (``arrived``: the first came)."""
        slow = _Slow(seconds)
        self._slow[space] = slow
        return slow

    def late(self, space: str, seconds: float) -> None:
        """Take in the next request to ``space`` ``seconds`` after its bytes came (a request held up on its way:
        it is recorded, and counts, only then)."""
        with self._lock:
            self._late[space] = seconds

    def member(self, space: str, user: str, role: str = "ROLE_MEMBER") -> None:
        """Make ``user`` (``users/ID``, or an email) a member of ``space`` with ``role`` (ROLE_MANAGER, ROLE_MEMBER)."""
        with self._lock:
            self.memberships[(space, user.removeprefix("users/"))] = role

    def member_answers(self, *statuses: int) -> None:
        """Answer the next ``spaces.members.get`` requests with these HTTP statuses (an error body each), one each."""
        with self._lock:
            self._member_answers.extend(statuses)

    def _membership(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any]]:
        """``spaces.members.get``: the membership, 404 for a non-member, 401 without the app's token."""
        _, _, space_id, _, member = (unquote(part) for part in path.strip("/").split("/"))
        space = f"spaces/{space_id}"
        with self._lock:
            self.member_requests.append((space, member))
            scripted = self._member_answers.pop(0) if self._member_answers else None
            role = self.memberships.get((space, member))
        if headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
            return 401, {}, {"error": {"code": 401, "message": "no credentials", "status": "UNAUTHENTICATED"}}
        if scripted is not None:
            return scripted, {}, {"error": {"code": scripted, "message": "scripted", "status": self.scripted_status}}
        if role is None:
            return 404, {}, {"error": {"code": 404, "message": "Membership not found.", "status": "NOT_FOUND"}}
        membership = {
            "name": f"{space}/members/{member}",
            "state": "JOINED",
            "role": role,
            "member": {"name": f"users/{member}", "type": "HUMAN"},
        }
        return 200, {}, membership

    def token_answers(self, *statuses: int) -> None:
        """Answer the next token requests with these HTTP statuses (an error body each), one each."""
        with self._lock:
            self._token_answers.extend(statuses)

    def posts(self, space: str | None = None) -> list[Received]:
        """Requests received (for one Space, if given), in order."""
        with self._lock:
            return [r for r in self.received if space is None or r.space == space]

    def messages(self, space: str | None = None) -> list[dict[str, Any]]:
        """Messages stored (for one Space, if given)."""
        with self._lock:
            return [m for (s, _), m in self.created.items() if space is None or s == space]

    def delete(self, space: str, message_id: str) -> None:
        """Delete a stored message, as a member of the Space may (a later patch of it answers 404)."""
        with self._lock:
            del self.created[(space, message_id)]

    def _create(self, space: str, query: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Store a message unless its messageId exists: (200, message) or (409, error)."""
        with self._lock:
            self._counter += 1
            honoured = "key" not in query or self.webhook_ids
            message_id = (query.get("messageId") if honoured else None) or f"auto-{self._counter}"
            if message_id == query.get("messageId") and not CLIENT_ID.fullmatch(message_id):
                return _error(400, f"Invalid message ID {message_id!r}.", "INVALID_ARGUMENT")
            if (space, message_id) in self.created:
                error = {"code": 409, "message": f"Message {message_id} already exists.", "status": "ALREADY_EXISTS"}
                return 409, {"error": error}
            asked = body.get("thread", {}) if query.get("messageReplyOption") else {}
            threads = {m["thread"]["name"] for (s, _), m in self.created.items() if s == space}
            named = asked.get("name") if asked.get("name") in threads else None
            thread = named or f"{space}/threads/{asked.get('threadKey') or message_id}"
            message = {**body, "name": f"{space}/messages/{message_id}", "thread": {"name": thread}}
            self.created[(space, message_id)] = message
            return 200, message

    def _patch(
        self, space: str, message_id: str, query: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """``messages.patch``: update the masked fields, or create a missing client-assigned message."""
        with self._lock:
            message = self.created.get((space, message_id))
            if message is None:
                if query.get("allowMissing") != "true":
                    return _error(404, f"Message {space}/messages/{message_id} not found.", "NOT_FOUND")
                if not CLIENT_ID.fullmatch(message_id):
                    return _error(400, "allowMissing needs a client-assigned message ID.", "INVALID_ARGUMENT")
                created = {
                    **body,
                    "name": f"{space}/messages/{message_id}",
                    "thread": {"name": f"{space}/threads/{message_id}"},
                }
                self.created[(space, message_id)] = created
                return 200, created
            paths = [p for p in query.get("updateMask", "").split(",") if p]
            if not paths or any(p not in MASK_FIELDS for p in paths):
                return _error(400, f"Unsupported updateMask {query.get('updateMask')!r}.", "INVALID_ARGUMENT")
            for path in paths:
                field = MASK_FIELDS[path]
                if field in body:
                    message[field] = body[field]
                else:
                    message.pop(field, None)
            return 200, message

    def _respond(self, received: Received) -> tuple[int, dict[str, str], dict[str, Any]]:
        space = received.space
        hang = self._hangs.pop(space, None)
        if hang is not None:
            if hang.landed:
                self._create(space, received.query, received.body)
            hang.arrived.set()
            hang.release.wait(HANG_LIMIT_SECONDS)
            return 503, {}, {"error": {"code": 503, "message": "hung", "status": "UNAVAILABLE"}}
        if space in self._echo:
            bearer = received.headers.get("authorization", "").removeprefix("Bearer ")
            key, token = received.query.get("key", ""), received.query.get("token", "")
            message = f"API key {key} not valid for token {token} (credentials {bearer or 'none'})"
            with self._lock:
                self.echoed.append(message)
            return 403, {}, {"error": {"code": 403, "message": message, "status": "PERMISSION_DENIED"}}
        with self._lock:
            queued = self._answers.get(space)
            scripted = queued.pop(0) if queued else None
        if scripted is None and space in self._always:
            scripted = (self._always[space], {})
        if scripted is None and space in self._flaky:
            rate, draw = self._flaky[space]
            with self._lock:
                roll, which = draw.random(), draw.random()
            if roll < rate:
                scripted = (429 if which < 0.5 else 503, {})
        if scripted is not None:
            status, headers = scripted
            return status, headers, {"error": {"code": status, "message": "scripted", "status": self.scripted_status}}
        if received.method == "PATCH":
            status, body = self._patch(space, received.path.rsplit("/", 1)[1], received.query, received.body)
        else:
            status, body = self._create(space, received.query, received.body)
        if (slow := self._slow.get(space)) is not None:
            slow.arrived.set()
            self._server.stopping.wait(slow.seconds)
        return status, {}, body

    def _get(self, path: str) -> tuple[int, dict[str, str], dict[str, Any]]:
        """``messages.get``: the stored message, or 404."""
        _, _, space_id, _, message_id = (unquote(part) for part in path.strip("/").split("/"))
        space = f"spaces/{space_id}"
        with self._lock:
            self.reads.append((space, message_id))
            message = self.created.get((space, message_id))
        if message is None:
            return 404, {}, _error(404, f"Message {space}/messages/{message_id} not found.", "NOT_FOUND")[1]
        return 200, {}, message

    def _token(self) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            self.token_requests += 1
            status = self._token_answers.pop(0) if self._token_answers else 200
        if self.token_delay:
            self._server.stopping.wait(self.token_delay)
        if status != 200:
            error = "temporarily_unavailable" if status >= 500 else "invalid_grant"
            return status, {}, {"error": error, "error_description": "scripted"}
        return 200, {}, {"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}


def _error(status: int, message: str, kind: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"code": status, "message": message, "status": kind}}


_MESSAGES = re.compile(r"/v1/spaces/[^/]+/messages")
_MESSAGE = re.compile(r"/v1/spaces/[^/]+/messages/[^/]+")
_MEMBER = re.compile(r"/v1/spaces/[^/]+/members/[^/]+")


def _handler(fake: FakeChat) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self._message_request(_MESSAGES)

        def do_PATCH(self) -> None:
            self._message_request(_MESSAGE)

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if _MESSAGE.fullmatch(path):
                self._send(*fake._get(path))
                return
            if not _MEMBER.fullmatch(path):
                self._send(404, {}, {"error": {"code": 404, "message": "no such path", "status": "NOT_FOUND"}})
                return
            self._send(*fake._membership(path, {k.lower(): v for k, v in self.headers.items()}))

        def _message_request(self, path: re.Pattern[str]) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if parts.path == "/token" and self.command == "POST":
                self._send(*fake._token())
                return
            if not path.fullmatch(parts.path):
                self._send(404, {}, {"error": {"code": 404, "message": "no such path", "status": "NOT_FOUND"}})
                return
            with fake._lock:
                held = fake._late.pop("/".join(parts.path.split("/")[2:4]), 0.0)
            time.sleep(held)
            received = Received(
                path=parts.path,
                query=dict(parse_qsl(parts.query)),
                body=json.loads(raw or b"{}"),
                headers={k.lower(): v for k, v in self.headers.items()},
                at=time.monotonic(),
                method=self.command,
            )
            with fake._lock:
                fake.received.append(received)
            status, headers, body = fake._respond(received)
            with fake._lock:
                fake.answered.append((received.space, received.query.get("messageId", ""), status))
            self._send(status, headers, body)

        def _send(self, status: int, headers: dict[str, str], body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client is gone (a killed tick process)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def service_account_file(fake: FakeChat, folder: Path) -> Path:
    """A service-account key file whose token URI is the fake's (google-auth's real code path)."""
    key = {
        "type": "service_account",
        "project_id": "scorebot-test",
        "private_key_id": "test-key",
        "private_key": signing_key(0).private_pem,
        "client_email": "scorebot@scorebot-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": fake.token_uri,
    }
    path = folder / "service-account.json"
    path.write_text(json.dumps(key))
    return path


def write_config(
    folder: Path,
    fake: FakeChat,
    teams: dict[str, list[dict[str, Any]]],
    *,
    schedule: str = SCHEDULE,
    timezone: str = "UTC",
    store: str = "sqlite:///store.db",
    team_options: dict[str, dict[str, Any]] | None = None,
    **settings: Any,
) -> Path:
    """A config with one team per entry of ``teams`` (id → deliver targets), each on its own CSV source.

    Every team's KPI counts its rows of ``ID.csv``; delete that file to take
    the team's source down. ``team_options`` adds keys to a team (by id);
    ``settings`` override ``schedule:`` keys (the lease must outlast the deadline).
    """
    service_account_file(fake, folder)
    schedule_settings = {"grace_minutes": 10, "lease_seconds": 5, "pace_seconds": 0.05, "deadline_seconds": 4}
    data: dict[str, Any] = {
        "chat": {"verify": False, "api_endpoint": fake.url, "service_account_file": "service-account.json"},
        "store": store,
        "timezone": timezone,
        "schedule": schedule_settings | settings,
        "sources": {},
        "teams": [],
    }
    for team_id, deliver in teams.items():
        (folder / f"{team_id}.csv").write_text("status,priority\nOpen,High\nOpen,Low\nOpen,High\n")
        data["sources"][team_id] = {"type": "file", "path": f"{team_id}.csv"}
        kpi = {
            "id": "open",
            "name": "Open issues",
            "source": team_id,
            "count": {"where": {"status": "Open"}},
            "category": "priority",
            "weights": {"High": 5, "Low": 1},
            "target": 20,
            "warning": 40,
        }
        team = {"id": team_id, "name": team_id.title(), "schedule": schedule, "deliver": deliver, "kpis": [kpi]}
        data["teams"].append(team | (team_options or {}).get(team_id, {}))
    path = folder / "scorebot.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
