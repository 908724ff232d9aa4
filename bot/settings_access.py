"""Who may change a team's settings: the YAML's ``settings.editors``, checked against the event's user.

An editor entry is one of:

- an email address (``lead@example.com``), compared without regard to case;
- ``*@domain`` (``*@example.com``): everyone whose email is at that domain;
- ``space-managers``: whoever manages the Space the event comes from, as the
  Chat API says (``spaces.members.get`` under app authentication, scope
  ``chat.bot``: the membership's ``role`` is ``ROLE_MANAGER``).

The Chat API is asked only when no email entry decides, and its answer is
remembered for `ROLE_SECONDS` (at most `MAX_ROLES` Space and user pairs, the
least recently used dropped first), so a dialog's open, check and save steps cost one
call, and a manager who loses the role loses the right within that time. A
failed call is not remembered: the user is refused this time (with a note
that the role could not be checked) and the next step asks again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google_auth_httplib2
import httplib2
from google.auth import exceptions as google_exceptions
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from bot.config import SPACE_MANAGERS, ChatSettings
from bot.delivery import chat_credentials
from bot.secrets import register

log = logging.getLogger(__name__)

MANAGER_ROLES = frozenset({"ROLE_MANAGER"})
"""Membership roles that count as managing a Space (``ROLE_ASSISTANT_MANAGER`` does not)."""
ROLE_SECONDS = 60.0
"""How long a Space member's role, once asked, is taken as known."""
MAX_ROLES = 1000
"""How many Space and user pairs are remembered at most."""
LOOKUP_TIMEOUT_SECONDS = 5.0
"""How long one ``spaces.members.get`` may take (Chat waits about 30 s for the whole answer)."""


class RoleUnknown(Exception):
    """The Chat API could not say what role a user has in a Space (no credentials, refused, unreachable)."""


RoleLookup = Callable[[str, str], str | None]
"""``(space, user)`` → the user's membership role in the Space (``ROLE_MANAGER``, ``ROLE_MEMBER``), None if the
user is not a member; raises `RoleUnknown` when it cannot tell."""


@dataclass(frozen=True)
class Access:
    """Whether the asker may edit, and the line a read-only dialog shows when not."""

    allowed: bool
    who_can: str
    """Who may change the settings, in words ("space managers, or anyone at @example.com")."""
    unchecked: bool = False
    """The Space's managers could not be asked: the refusal may be wrong, and the next step asks again."""


class SpaceRoles:
    """Space roles asked of the Chat API, remembered briefly (`ROLE_SECONDS`, at most `MAX_ROLES`); thread-safe."""

    def __init__(
        self,
        lookup: RoleLookup,
        *,
        seconds: float = ROLE_SECONDS,
        max_entries: int = MAX_ROLES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lookup = lookup
        self.seconds = seconds
        self.max_entries = max_entries
        self.clock = clock
        self._known: OrderedDict[tuple[str, str], tuple[float, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def role(self, space: str, user: str) -> str | None:
        """``user``'s role in ``space`` (None: not a member); raises `RoleUnknown`."""
        key = (space, user)
        now = self.clock()
        with self._lock:
            known = self._known.get(key)
            if known is not None and now - known[0] < self.seconds:
                self._known.move_to_end(key)
                return known[1]
        role = self.lookup(space, user)
        with self._lock:
            self._known[key] = (now, role)
            self._known.move_to_end(key)
            while len(self._known) > self.max_entries:
                self._known.popitem(last=False)
        return role


def describe_editors(editors: Sequence[str]) -> str:
    """The editors in words, for the read-only dialog: "space managers, lead@example.com or anyone at @example.com"."""
    words = []
    for entry in editors:
        if entry == SPACE_MANAGERS:
            words.append("the Space's managers")
        elif entry.startswith("*@"):
            words.append(f"anyone at {entry[1:]}")
        else:
            words.append(entry)
    if not words:
        return "no one here (the configuration names no editors)"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def check_access(
    editors: Sequence[str], email: str | None, user: str | None, space: str | None, roles: SpaceRoles
) -> Access:
    """Whether the user (``email``, ``users/…`` name) may edit in ``space``; the Chat API is asked last."""
    who_can = describe_editors(editors)
    address = (email or "").strip().lower()
    for entry in editors:
        wanted = entry.strip().lower()
        if address and (wanted == address or (wanted.startswith("*@") and address.endswith(wanted[1:]))):
            return Access(True, who_can)
    if SPACE_MANAGERS not in editors or not (user and space):
        return Access(False, who_can)
    try:
        role = roles.role(space, user)
    except RoleUnknown as exc:
        log.warning("cannot tell whether %s manages %s: %s", user, space, exc)
        return Access(False, who_can, unchecked=True)
    return Access(role in MANAGER_ROLES, who_can)


class ChatMemberships:
    """`RoleLookup` through the Chat API as the app (``spaces.members.get``), with the key Scorebot posts with."""

    def __init__(self, chat: ChatSettings, base_dir: Path, timeout: float = LOOKUP_TIMEOUT_SECONDS) -> None:
        self.chat = chat
        self.base_dir = base_dir
        self.timeout = timeout
        self._lock = threading.Lock()
        self._client: tuple[Any, Any] | None = None

    def __call__(self, space: str, user: str) -> str | None:
        member = user.removeprefix("users/")
        try:
            service, credentials = self._service()
            request = service.spaces().members().get(name=f"{space}/members/{member}")
            answer = request.execute(http=google_auth_httplib2.AuthorizedHttp(credentials, http=self._http()))
        except HttpError as exc:
            if exc.resp.status == 404:
                return None
            raise RoleUnknown(f"spaces.members.get answered HTTP {exc.resp.status}") from None
        except (google_exceptions.GoogleAuthError, httplib2.HttpLib2Error, OSError, ValueError) as exc:
            raise RoleUnknown(f"spaces.members.get failed ({type(exc).__name__})") from None
        finally:
            if self._client is not None:
                register(getattr(self._client[1], "token", None), issued=True)
        role = answer.get("role") if isinstance(answer, dict) else None
        state = answer.get("state") if isinstance(answer, dict) else None
        return role if isinstance(role, str) and state in (None, "JOINED") else None

    def _http(self) -> httplib2.Http:
        return httplib2.Http(timeout=self.timeout)

    def _service(self) -> tuple[Any, Any]:
        """The Chat API client, built once (static discovery document, no network)."""
        with self._lock:
            if self._client is None:
                credentials = chat_credentials(self.chat, self.base_dir)
                options = {"api_endpoint": self.chat.api_endpoint} if self.chat.api_endpoint else None
                service = build(
                    "chat",
                    "v1",
                    credentials=credentials,
                    static_discovery=True,
                    cache_discovery=False,
                    client_options=options,
                )
                self._client = (service, credentials)
            return self._client
