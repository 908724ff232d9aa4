"""Every secret value Scorebot knows, and the one function that hides them in any text.

Values are registered as they become known: the configuration's secrets when it
is loaded (webhook URLs and their key and token, access keys, bearer tokens,
passwords, the store's password), a service account's key material when it is
read, Vtiger session names and OAuth access tokens when they are issued.
`scrub` replaces each of them, and its URL-encoded and JSON-escaped forms, with
``***``: shorter than any registered value, so scrubbing never makes a text
longer (a card measured against Chat's size limit stays within it). It is
applied where text leaves the process or enters the store: log records
(`bot.logs`), CLI output, strings written to the database, HTTP replies and
posted cards.

Values shorter than `MIN_LENGTH` characters are not registered: hiding ``ab``
everywhere would mangle ordinary text. `register` says so by returning False,
and the configuration's secrets that short are named in a warning at start.
"""

from __future__ import annotations

import io
import json
import sys
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit

PLACEHOLDER = "***"
MIN_LENGTH = 6
"""Shorter values are not registered (they would match ordinary words); longer than `PLACEHOLDER`."""
MAX_ISSUED = 256
"""Issued values (sessions, access tokens) remembered at most; the oldest are forgotten first."""


class SecretRegistry:
    """A thread-safe set of secret values, kept longest first.

    `scrub` looks for each value with ``str``'s own search: with hundreds of
    values that is faster than one regular expression of them all, which is
    also slow to build each time a session is issued (see bench/bench_secrets.py).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lasting: set[str] = set()
        self._issued: deque[str] = deque(maxlen=MAX_ISSUED)
        self._values: tuple[str, ...] = ()

    def register(self, value: str | None, *, issued: bool = False) -> bool:
        """Remember ``value`` (and its encoded forms); False if it is too short to hide safely.

        ``issued`` marks a value handed out at run time (a session, an access
        token): only the latest `MAX_ISSUED` of those are kept.
        """
        if not value or len(value) < MIN_LENGTH:
            return False
        forms = _forms(value)
        with self._lock:
            known = self._lasting | set(self._issued)
            if forms <= known:
                return True
            if issued:
                self._issued.extend(forms - known)
            else:
                self._lasting |= forms
            self._values = tuple(sorted(self._lasting | set(self._issued), key=len, reverse=True))
        return True

    def register_url(self, url: str | None) -> bool:
        """Register a URL that is secret as a whole, its password and every query value."""
        if not url:
            return False
        parts = urlsplit(url)
        for pair in parts.query.split("&"):
            raw = pair.partition("=")[2]
            for value in {raw, unquote(raw), unquote_plus(raw)}:
                self.register(value)
        self.register(parts.password)
        return self.register(url)

    def scrub(self, text: str) -> str:
        """``text`` with every registered value replaced by ``***`` (longest first: a whole URL before its token)."""
        if len(text) < MIN_LENGTH:
            return text
        for value in self._values:
            if value in text:
                text = text.replace(value, PLACEHOLDER)
        return text

    def scrub_data(self, data: Any) -> Any:
        """A copy of JSON-like ``data`` (dicts, lists, strings) with every string scrubbed."""
        if isinstance(data, str):
            return self.scrub(data)
        if isinstance(data, dict):
            return {self.scrub_data(key): self.scrub_data(value) for key, value in data.items()}
        if isinstance(data, list | tuple):
            return [self.scrub_data(item) for item in data]
        return data

    def forget_all(self) -> None:
        """Forget every value (for tests that need a clean registry)."""
        with self._lock:
            self._lasting.clear()
            self._issued.clear()
            self._values = ()


def _forms(value: str) -> set[str]:
    """The value as it may appear in text: as is, URL-encoded, JSON-escaped."""
    forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    return {form for form in forms if len(form) >= MIN_LENGTH}


SECRETS = SecretRegistry()
"""The process's registry: configuration loading, sign-ins and every output boundary use this one."""
register = SECRETS.register
register_url = SECRETS.register_url
scrub = SECRETS.scrub
scrub_data = SECRETS.scrub_data


def register_private_key(key_id: str | None, private_key: str | None) -> None:
    """Register a service account's key id and private key (the PEM whole and each of its lines)."""
    SECRETS.register(key_id)
    SECRETS.register(private_key)
    for line in (private_key or "").splitlines():
        if not line.startswith("-----"):
            SECRETS.register(line.strip())


class ScrubbedWriter(io.TextIOBase):
    """A text stream that scrubs every write before passing it to ``target`` (for CLI output)."""

    def __init__(self, target: TextIO) -> None:
        super().__init__()
        self.target = target

    def write(self, text: str) -> int:
        """Write ``text`` scrubbed; return the length of ``text`` as given."""
        self.target.write(scrub(text))
        return len(text)

    def flush(self) -> None:
        """Flush the target."""
        self.target.flush()

    def isatty(self) -> bool:
        """Whether the target is a terminal."""
        return self.target.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """The target's encoding."""
        return self.target.encoding


@contextmanager
def scrubbed_output() -> Iterator[None]:
    """Within the block, everything written to stdout and stderr has every known secret hidden."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = ScrubbedWriter(saved[0]), ScrubbedWriter(saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
