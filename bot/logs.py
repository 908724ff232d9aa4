"""Logging set-up shared by the CLI and the App Engine entry point."""

from __future__ import annotations

import logging
import os


def setup_logging(level: str | None = None) -> None:
    """Log to stderr at ``level`` (else $SCOREBOT_LOG_LEVEL, else INFO)."""
    logging.basicConfig(
        level=(level or os.environ.get("SCOREBOT_LOG_LEVEL") or "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
