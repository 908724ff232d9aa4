"""App Engine's entry point: `python main.py --host=0.0.0.0 --port=$PORT` (see app.yaml), or `main:app` for any server.

The configuration comes from $SCOREBOT_CONFIG; request verification cannot
be switched off here. A bad configuration stops the server with one clear
line (secrets hidden) instead of a traceback. Run as a script, it serves the
app with waitress and the settings of `bot.server`, which `python -m bot serve`
uses too.
"""

import sys

from bot.app import create_app_or_exit
from bot.server import run

app = create_app_or_exit()

if __name__ == "__main__":
    sys.exit(run(app, sys.argv[1:]))
