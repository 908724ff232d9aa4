"""App Engine's entry point: `waitress-serve ... main:app` (see app.yaml).

The configuration comes from $SCOREBOT_CONFIG; request verification cannot
be switched off here. A bad configuration stops the server with one clear
line (secrets hidden) instead of a traceback.
"""

from bot.app import create_app_or_exit

app = create_app_or_exit()
