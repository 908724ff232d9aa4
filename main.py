"""App Engine's entry point: `gunicorn main:app`.

The configuration comes from $SCOREBOT_CONFIG; request verification cannot
be switched off here.
"""

from bot.logs import setup_logging
from bot.web import create_app

setup_logging()
app = create_app()
