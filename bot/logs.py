"""Logging set-up shared by the CLI and the App Engine entry point; every record made clean.

`install_log_cleaning` (run when ``bot`` is imported) wraps the log record
factory, so every record from any logger (Scorebot's, the HTTP libraries',
the server's) is cleaned once, when it is made, whichever handler writes it:

- each field (an argument of the message) is cut to `MAX_FIELD` characters and
  its control characters are escaped (``\\n`` → ``\\\\n``), so no field can forge
  a log line or make one huge; the message template, Scorebot's own text, is
  kept as written. Werkzeug's request lines escape themselves and carry
  terminal colours, so its records are not escaped twice;
- every secret value Scorebot knows is replaced (`bot.secrets.scrub`), in the
  message and in a logged exception's traceback;
- values of secret-looking query parameters (``key``, ``token``, ``session``…)
  are replaced too (`redact`), for secrets not registered (yet).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from bot.secrets import scrub

MAX_FIELD = 2000
"""Characters of one logged field kept; the rest is counted, not written."""
SELF_ESCAPING = ("werkzeug",)
"""Loggers whose records escape their own fields (and add terminal colours)."""

_PARAM = re.compile(r"([\w.-]+=)([^&\s\"']+)")
_SECRET_NAME = re.compile(r"key|token|secret|password|passwd|session|signature", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]")


def redact(text: str) -> str:
    """``text`` with the values of secret-looking query parameters replaced by ``[redacted]``."""
    if "=" not in text:
        return text
    return _PARAM.sub(lambda m: m[1] + "[redacted]" if _SECRET_NAME.search(m[1]) else m[0], text)


def clean_field(text: str, limit: int = MAX_FIELD) -> str:
    """``text`` cut to ``limit`` characters, its control characters and backslashes escaped."""
    if len(text) > limit:
        text = f"{text[:limit]}…(+{len(text) - limit} chars)"
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


class _Field:
    """An argument of a log message, shown escaped and bounded by ``%s`` and ``%r`` alike."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        return clean_field(scrub(str(self.value)))

    def __repr__(self) -> str:
        return clean_field(scrub(repr(self.value)))


def _wrap(value: object) -> object:
    return value if isinstance(value, int | float) else _Field(value)


def clean_record(record: logging.LogRecord) -> None:
    """Hide every secret in the record's fields, bound and escape them; hide secrets in its traceback too."""
    message = record.getMessage() if record.name.startswith(SELF_ESCAPING) else _escaped_message(record)
    record.msg, record.args = redact(scrub(message)), ()
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(scrub(logging.Formatter().formatException(record.exc_info)))


def _escaped_message(record: logging.LogRecord) -> str:
    args = record.args
    if not args:
        return clean_field(scrub(str(record.msg)), limit=4 * MAX_FIELD)
    try:
        if isinstance(args, Mapping):
            return str(record.msg) % {key: _wrap(value) for key, value in args.items()}
        return str(record.msg) % tuple(_wrap(value) for value in args)
    except (TypeError, ValueError, KeyError):
        # A message whose arguments do not fit its template: show both, cleaned.
        return f"{clean_field(scrub(str(record.msg)))} {clean_field(scrub(repr(args)))}"


def install_log_cleaning() -> None:
    """Clean every log record made from now on in this process (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "scorebot_cleaning", False):
        return

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        clean_record(record)
        return record

    make_record.scorebot_cleaning = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record)


def setup_logging(level: str | None = None) -> None:
    """Log to stderr at ``level`` (else $SCOREBOT_LOG_LEVEL, else INFO), every record cleaned."""
    install_log_cleaning()
    logging.basicConfig(
        level=(level or os.environ.get("SCOREBOT_LOG_LEVEL") or "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
