"""App Engine's entry point: `waitress-serve ... main:app` (see app.yaml).

The configuration comes from $SCOREBOT_CONFIG; request verification cannot
be switched off here. A bad configuration stops the worker with one clear
line instead of a traceback.
"""

import logging
import sys

from bot.chat.web import create_app
from bot.errors import ConfigError
from bot.logs import setup_logging

setup_logging()
try:
    app = create_app()
except ConfigError as exc:
    logging.getLogger("bot").critical("cannot start: %s", exc)
    sys.exit(3)  # the server process exits with this status instead of serving a broken app
