"""One tick in its own process, for the multi-process tests.

    python -m tests.tick_worker CONFIG STORE_URL NOW [--wait]

Builds the services (as `python -m bot tick` does), prints "ready", and with
``--wait`` waits for a line on stdin so that several workers tick at the same
moment; then runs one tick as of NOW (ISO time) and prints its outcomes as
JSON lines (a slot's: team, slot, state; an alert's: team, alert, and state
"alert STATE").
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

from bot.config import load_config
from bot.schedule.tick import Scheduler
from bot.services import build_services


def main(argv: list[str]) -> int:
    config_path, store_url, now = argv[0], argv[1], datetime.fromisoformat(argv[2])
    scheduler = Scheduler(build_services(load_config(config_path), store_url=store_url))
    print("ready", flush=True)
    if "--wait" in argv:
        sys.stdin.readline()
    result = scheduler.tick(now)
    for outcome in result.outcomes:
        print(json.dumps({"team": outcome.team_id, "slot": outcome.slot.isoformat(), "state": outcome.state}))
    for alert in result.alerts:
        print(json.dumps({"team": alert.team_id, "alert": alert.state, "state": f"alert {alert.state}"}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
