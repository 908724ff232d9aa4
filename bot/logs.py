"""Logging set-up shared by the CLI and the App Engine entry point, with secrets redacted.

Libraries log request lines at DEBUG (urllib3: ``"POST /v1/spaces/A/messages?key=…&token=…"``):
`RedactSecrets` replaces the value of every query parameter whose name says
it is a secret (key, token, secret, password, session…) before a record is written.
"""

from __future__ import annotations

import logging
import os
import re

_SECRET_PARAM = re.compile(
    r"(?P<name>\b[\w.-]*(?:key|token|secret|password|passwd|session|signature)[\w.-]*=)[^&\s\"']+",
    re.IGNORECASE,
)
LIBRARY_LOGGERS = ("urllib3.connectionpool", "googleapiclient.discovery", "googleapiclient.http")


def redact(text: str) -> str:
    """``text`` with the values of secret-looking query parameters replaced by ``[redacted]``."""
    return _SECRET_PARAM.sub(r"\g<name>[redacted]", text)


class RedactSecrets(logging.Filter):
    """A filter that redacts secret query parameters in a record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message if it holds a secret; never drop the record."""
        text = record.getMessage()
        clean = redact(text)
        if clean != text:
            record.msg, record.args = clean, ()
        return True


_REDACT = RedactSecrets()


def protect_library_loggers() -> None:
    """Redact the request lines of the HTTP libraries Scorebot uses (idempotent)."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACT not in logger.filters:
            logger.addFilter(_REDACT)


protect_library_loggers()  # on whenever Scorebot is loaded, whoever sets up logging


def setup_logging(level: str | None = None) -> None:
    """Log to stderr at ``level`` (else $SCOREBOT_LOG_LEVEL, else INFO), secrets redacted."""
    logging.basicConfig(
        level=(level or os.environ.get("SCOREBOT_LOG_LEVEL") or "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        if _REDACT not in handler.filters:
            handler.addFilter(_REDACT)
    protect_library_loggers()
