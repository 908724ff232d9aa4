"""Posting a message to a team's targets: a Space's webhook, the Chat API, or the log.

One attempt either returns `Sent` or raises `DeliveryError`; `Delivery.send`
retries the retryable ones (429, 5xx, connection errors, timeouts, a token
endpoint's transient failure) with exponential backoff and full jitter, never
sooner than a ``Retry-After``. The tick's deadline decides whether another
attempt is *started*; an attempt once started gets its full timeout
(``timeout_seconds``), bounded by what the caller's gate allows (the slot's
claim: see `Gate`). Other 4xx answers are not retried.

Posts to one Space are paced in-process (``schedule.pace_seconds`` apart;
Chat allows 60 message writes a minute per Space), whichever way they go. One
request to a Space is in flight at a time, and the next one's turn comes
``pace_seconds`` after it was answered (or failed): a request arrives before
its answer comes, so however late a request leaves or arrives, the next one
reaches the Space at least ``pace_seconds`` later. The turn is taken after
the client is built and its token fetched.

Every post carries ``messageId`` and ``requestId`` (the Chat API deduplicates
on them; whether webhooks do is unverified), and a 409 answer counts as
already delivered. Webhook URLs are secrets: only the Space id in their path
is ever logged, and an error's message names only its type and the Space,
never the exception's text (which may hold the URL), nor a refusal's free text
(Google's errors name the key they refuse): only its status word,
``PERMISSION_DENIED``. Messages are posted with every secret Scorebot knows
hidden (`bot.secrets`); access tokens and key material are registered there as
they are read. Credentials that cannot be loaded are a `DeliveryError` too, not
retried.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import google.auth
import google_auth_httplib2
import httplib2
import requests
import tenacity
from google.auth import exceptions as google_exceptions
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from bot.card_text import message_summary
from bot.config import ChatApiTarget, ChatSettings, DeliveryTarget, LogTarget, WebhookTarget
from bot.errors import DeliveryError
from bot.http_headers import retry_after_seconds
from bot.secrets import register, register_private_key, scrub_data
from bot.sources import Deadline
from bot.store import Store

log = logging.getLogger(__name__)

Message = dict[str, Any]
Gate = Callable[[], float]
"""Called before each HTTP request, just before the Space's pacing turn: raises to stop sending (e.g. the
slot's claim was lost), else returns the seconds the request may take at most (what is left of the lease)."""
CHAT_SCOPES = ["https://www.googleapis.com/auth/chat.bot"]
REPLY_OPTION = "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
LIVE_UPDATE_MASK = "text,cardsV2"
"""What a live card's update replaces (a FieldMask's JSON form takes lowerCamelCase field names)."""
_SPACE_IN_URL = re.compile(r"/v1/(spaces/[A-Za-z0-9_-]+)/messages")
_STATUS_WORD = re.compile(r"[A-Z][A-Z_]{2,39}")


@dataclass(frozen=True)
class Post:
    """One slot's message for one target, with its idempotency id and thread key."""

    team_id: str
    slot: datetime
    message: Message
    message_id: str
    thread_key: str | None = None
    live: bool = False
    """Update the message named ``message_id`` in place, creating it if it is missing (a live card)."""
    reply_to: str | None = None
    """Chat API only: the id of a message (a live card) whose thread to reply in; while it is missing, the
    ``thread_key``'s thread."""


@dataclass(frozen=True)
class Sent:
    """A delivered post; ``already`` when the Chat API had it from an earlier attempt (409)."""

    already: bool = False


def message_id(team_id: str, slot: datetime) -> str:
    """The Chat API ``messageId`` of a team's slot: ``client-TEAM-YYYYMMDDHHMMSS`` (UTC), at most 62 characters."""
    return f"client-{team_id}-{slot.astimezone(UTC):%Y%m%d%H%M%S}"


def live_message_id(team_id: str, live: str, local: datetime) -> str:
    """The ``messageId`` of a team's live card for the period holding ``local`` (a time in the team's zone):
    ``client-TEAM-day-YYYYMMDD`` or ``client-TEAM-week-YYYY-WW`` (ISO week), at most 60 characters."""
    if live == "day":
        return f"client-{team_id}-day-{local:%Y%m%d}"
    year, week, _ = local.isocalendar()
    return f"client-{team_id}-week-{year}-{week:02d}"


def manual_message_id(team_id: str, moment: datetime) -> str:
    """A ``messageId`` for a manual send, unique per run: ``client-TEAM-MMDDHHMMSS-xxxx`` (UTC), at most 63."""
    return f"client-{team_id}-{moment.astimezone(UTC):%m%d%H%M%S}-{secrets.token_hex(2)}"


def space_of(target: DeliveryTarget) -> str:
    """The Space a target posts to, safe to log (a webhook's key and token left out)."""
    if isinstance(target, ChatApiTarget):
        return target.space
    if isinstance(target, WebhookTarget):
        url = target.url.get_secret_value()
        match = _SPACE_IN_URL.search(url)
        return match.group(1) if match else "webhook-" + hashlib.sha256(url.encode()).hexdigest()[:12]
    return "log"


def target_key(target: DeliveryTarget) -> str:
    """A target's name in the delivery history, e.g. ``chat_api:spaces/AAA``."""
    return "log" if isinstance(target, LogTarget) else f"{target.type}:{space_of(target)}"


def chat_credentials(chat: ChatSettings, base_dir: Path) -> Any:
    """Credentials to post as the app: the configured key file, else application default credentials."""
    if chat.service_account_file:
        info = json.loads((base_dir / chat.service_account_file).read_text(encoding="utf-8"))
        if not isinstance(info, dict):
            raise ValueError("the key file is not a JSON object")
        register_private_key(info.get("private_key_id"), info.get("private_key"))
        return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=CHAT_SCOPES
        )
    credentials, _ = google.auth.default(scopes=CHAT_SCOPES)
    return credentials


class Pacer:
    """Spaces requests to the same key ``interval`` seconds apart where they are received (thread-safe).

    `turn` lets one request to a key run at a time, and only ``interval`` seconds after the previous one
    to that key ended (answered or failed). A request is received before its answer is sent, so two
    requests to a key arrive at least ``interval`` apart, whenever each one actually left.
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._changed = threading.Condition()
        self._next: dict[str, float] = {}
        self._sending: set[str] = set()

    @contextmanager
    def turn(self, key: str) -> Iterator[float]:
        """Wait for ``key``'s turn, hold it while the body runs (the request), and start the next interval when
        it ends; yields the seconds waited."""
        started = self._clock()
        with self._changed:
            while True:
                now = self._clock()
                wait = None if key in self._sending else self._next.get(key, now) - now
                if wait is not None and wait <= 0:
                    break
                self._changed.wait(wait)
            self._sending.add(key)
        try:
            yield now - started
        finally:
            with self._changed:
                self._sending.discard(key)
                self._next[key] = self._clock() + self.interval
                self._changed.notify_all()


class Delivery:
    """Sends posts to targets, with retries and per-Space pacing; one per process."""

    def __init__(
        self,
        chat: ChatSettings,
        store: Store,
        clock: Callable[[], datetime],
        *,
        pace_seconds: float,
        base_dir: Path | None = None,
        backoff_seconds: float = 1.0,
        max_attempts: int = 6,
        timeout_seconds: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.chat = chat
        self.store = store
        self.clock = clock
        self.base_dir = base_dir or Path.cwd()
        self.pacer = Pacer(pace_seconds)
        self.backoff = tenacity.wait_random_exponential(multiplier=backoff_seconds)  # up to 1, 2, 4, 8, 16 s
        self.max_attempts = max_attempts
        self.timeout_seconds = timeout_seconds
        self.sleep = sleep
        self._lock = threading.Lock()
        self._service: Any = None
        self._credentials: Any = None
        self._threads: dict[tuple[str, str], str] = {}
        """(Space, message id) → the message's thread name (a message never changes thread)."""

    def send(self, target: DeliveryTarget, post: Post, deadline: Deadline, gate: Gate | None = None) -> Sent:
        """Deliver ``post`` to ``target``; retries what may succeed later, starting none after ``deadline``.

        ``gate`` is asked before each request (see `Gate`). Raises the last
        `DeliveryError` when it gives up; whatever ``gate`` raises passes through.
        """
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda exc: isinstance(exc, DeliveryError) and exc.retryable),
            wait=self._wait,
            stop=tenacity.stop_after_attempt(self.max_attempts) | _StopBefore(deadline),
            sleep=self.sleep,
            before_sleep=lambda state: log.warning(
                "retrying %s for %s in %.1f s: %s",
                space_of(target),
                post.team_id,
                state.upcoming_sleep,
                state.outcome.exception() if state.outcome else "",
            ),
            reraise=True,
        )
        return retrying(self.attempt, target, post, gate or self._no_gate)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = error.retry_after if isinstance(error, DeliveryError) else None
        return max(self.backoff(state), retry_after or 0.0)

    def attempt(self, target: DeliveryTarget, post: Post, gate: Gate) -> Sent:
        """One try at delivering ``post`` to ``target`` (every secret Scorebot knows hidden); raises `DeliveryError`."""
        post = dataclasses.replace(post, message=scrub_data(post.message))
        if isinstance(target, LogTarget):
            gate()
            return self._log(post)
        if isinstance(target, WebhookTarget):
            return self._webhook(target, post, gate)
        return self._chat_api(target, post, gate)

    def _no_gate(self) -> float:
        return self.timeout_seconds

    @contextmanager
    def _turn(self, target: DeliveryTarget, gate: Gate) -> Iterator[float]:
        """Pass the gate, then hold the Space's turn while the request runs; yields its timeout in seconds
        (what the gate allowed, less the wait for the turn).

        Nothing but the request itself runs inside the turn (not even the gate's store write).
        """
        allowed = gate()
        with self.pacer.turn(space_of(target)) as waited:  # one pace per Space, webhook and Chat API alike
            yield max(0.1, min(self.timeout_seconds, allowed - waited))

    def _log(self, post: Post) -> Sent:
        self.store.add_outbox(post.team_id, post.slot, post.message, self.clock())
        log.info(
            "scheduled post for %s (slot %s): %s (the card: python -m bot history %s)",
            post.team_id,
            post.slot.isoformat(),
            message_summary(post.message),
            post.team_id,
        )
        return Sent()

    def _webhook(self, target: WebhookTarget, post: Post, gate: Gate) -> Sent:
        where = f"webhook to {space_of(target)}"
        body, params = _threaded(post)
        data = json.dumps(body).encode()
        try:
            with self._turn(target, gate) as timeout:
                response = requests.post(
                    target.url.get_secret_value(),
                    params=params | _ids(post),
                    data=data,
                    headers={"Content-Type": "application/json; charset=UTF-8"},
                    timeout=timeout,
                )
        except requests.RequestException as exc:
            # The exception's text may hold the URL, a secret: name only its kind.
            retryable = isinstance(exc, requests.ConnectionError | requests.Timeout)
            raise DeliveryError(f"{where}: {type(exc).__name__}", retryable=retryable) from None
        if response.status_code == 409:
            log.info("%s: %s was already there (409)", where, post.message_id)
            return Sent(already=True)
        if response.ok:
            return Sent()
        reason = _error_status(response.text)
        raise self._failure(where, response.status_code, response.headers.get("Retry-After"), reason)

    def _chat_api(self, target: ChatApiTarget, post: Post, gate: Gate) -> Sent:
        where = f"Chat API {'update' if post.live else 'post'} to {target.space}"
        body, options = _threaded(post)
        try:
            service, credentials = self._chat_service()
        except (google_exceptions.GoogleAuthError, OSError, ValueError) as exc:
            raise DeliveryError(f"{where}: credentials unusable ({type(exc).__name__})", retryable=False) from None
        messages = service.spaces().messages()
        try:
            self._fresh_token(credentials)
            if post.reply_to and (thread := self._thread_of(messages, credentials, target.space, post.reply_to)):
                body = {**post.message, "thread": {"name": thread}}
                options = {"messageReplyOption": REPLY_OPTION}
            if post.live:
                name = f"{target.space}/messages/{post.message_id}"
                request = messages.patch(name=name, body=body, updateMask=LIVE_UPDATE_MASK, allowMissing=True)
            else:
                request = messages.create(parent=target.space, body=body, **_ids(post), **options)
            with self._turn(target, gate) as timeout:
                http = httplib2.Http(timeout=timeout)
                request.execute(http=google_auth_httplib2.AuthorizedHttp(credentials, http=http))
        except HttpError as exc:
            if exc.resp.status == 409 and post.live:
                # Two creates of the same live card raced; the next attempt finds it and updates it.
                raise DeliveryError(f"{where}: {post.message_id} was created meanwhile (409)", retryable=True) from None
            if exc.resp.status == 409:
                log.info("%s: %s was already there (409)", where, post.message_id)
                return Sent(already=True)
            reason = _error_status(exc.content.decode("utf-8", "replace"))
            raise self._failure(where, exc.resp.status, exc.resp.get("retry-after"), reason) from None
        except google_exceptions.RefreshError as exc:
            # google-auth marks a token endpoint's transient failure (5xx, 429) retryable.
            kind = "token endpoint failed" if exc.retryable else "credentials refused"
            raise DeliveryError(f"{where}: {kind} ({type(exc).__name__})", retryable=exc.retryable) from None
        except (httplib2.HttpLib2Error, google_exceptions.TransportError, OSError) as exc:
            raise DeliveryError(f"{where}: {type(exc).__name__}", retryable=True) from None
        finally:
            register(getattr(credentials, "token", None), issued=True)  # the access token, once issued
        return Sent()

    def _thread_of(self, messages: Any, credentials: Any, space: str, message_id: str) -> str | None:
        """The thread of message ``message_id`` of ``space`` (``messages.get``, once a process); None while
        the message is not there (404)."""
        key = (space, message_id)
        if key not in self._threads:
            http = httplib2.Http(timeout=self.timeout_seconds)
            request = messages.get(name=f"{space}/messages/{message_id}")
            try:
                found = request.execute(http=google_auth_httplib2.AuthorizedHttp(credentials, http=http))
            except HttpError as exc:
                if exc.resp.status == 404:
                    return None
                raise
            name = (found.get("thread") or {}).get("name") if isinstance(found, dict) else None
            if not isinstance(name, str) or not name:
                return None
            with self._lock:
                self._threads[key] = name
        return self._threads[key]

    def _fresh_token(self, credentials: Any) -> None:
        """Fetch an access token now if the credentials have none valid, so the request itself is not delayed."""
        with self._lock:
            if not credentials.valid:
                credentials.refresh(google_auth_httplib2.Request(httplib2.Http(timeout=self.timeout_seconds)))

    def _chat_service(self) -> tuple[Any, Any]:
        """The Chat API client, built once (static discovery document, no network)."""
        with self._lock:
            if self._service is None:
                self._credentials = chat_credentials(self.chat, self.base_dir)
                options = {"api_endpoint": self.chat.api_endpoint} if self.chat.api_endpoint else None
                self._service = build(
                    "chat",
                    "v1",
                    credentials=self._credentials,
                    static_discovery=True,
                    cache_discovery=False,
                    client_options=options,
                )
            return self._service, self._credentials

    def _failure(self, where: str, status: int, retry_after: str | None, reason: str | None) -> DeliveryError:
        retryable = status == 429 or status >= 500
        wait = retry_after_seconds(retry_after, self.clock()) if retryable else None
        text = f"{where}: HTTP {status}" + (f" ({reason})" if reason else "")
        return DeliveryError(text, retryable=retryable, retry_after=wait)


def _ids(post: Post) -> dict[str, str]:
    """The idempotency ids every post carries (query parameters, as the Chat API takes them)."""
    return {"messageId": post.message_id, "requestId": post.message_id}


def _threaded(post: Post) -> tuple[dict[str, Any], dict[str, str]]:
    """The body and query options of ``post``: a thread key needs both, or Chat ignores it."""
    if not post.thread_key:
        return post.message, {}
    return {**post.message, "thread": {"threadKey": post.thread_key}}, {"messageReplyOption": REPLY_OPTION}


class _StopBefore(tenacity.stop.stop_base):
    """Stop when the next wait would end past the deadline."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline

    def __call__(self, state: tenacity.RetryCallState) -> bool:
        return state.upcoming_sleep >= self.deadline.remaining()


def _error_status(body: str) -> str | None:
    """The failure kind of a Google error body (``error.status``: ``PERMISSION_DENIED``), never its free text."""
    status = _json_field(body, "error", "status")
    return status if status and _STATUS_WORD.fullmatch(status) else None


def _json_field(text: str, *path: str) -> str | None:
    """A string at ``path`` in a JSON body, if the body is JSON and has it."""
    try:
        node: Any = json.loads(text)
    except ValueError:
        return None
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, str) else None
