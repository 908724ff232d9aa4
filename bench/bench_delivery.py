"""Delivery figures on the loopback fake of Chat: posts per slot with slow webhooks, pacing on the wire.

1. Slow webhook near the deadline: a team posts one slot to two webhooks whose
   answers take 1.5 s (the message lands at once), with a tick deadline of
   1.55 to 2.45 s (one value per run), so the second post starts close to the
   deadline. Three ticks within the slot's minute; the fake does not honour
   ``messageId`` on webhooks (the unverified case). Prints the messages the
   second Space got for the slot, per run.
2. Pacing: one team posts to one Space through the Chat API and then a webhook,
   ``pace_seconds: 1``, a token endpoint answering in 0.3 s. Prints the
   spacing of the two arrivals as the fake saw them (median of the runs).

Usage: .venv/bin/python bench/bench_delivery.py [--runs 10]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import load_config
from bot.schedule.tick import Scheduler
from bot.services import build_services
from tests.fakes.chat import FakeChat, write_config

T0 = datetime(2026, 11, 9, 9, 0, 30, tzinfo=UTC)


def scheduler_for(folder: Path, fake: FakeChat, deliver: list[dict[str, str]], **settings: float) -> Scheduler:
    config = load_config(write_config(folder, fake, {"alpha": deliver}, **settings))
    services = build_services(config, clock=lambda: T0, store_url=f"sqlite:///{folder / 'store.db'}")
    return Scheduler(services)


def slow_webhook_posts(deadline: float) -> int:
    """Messages the second, slow webhook Space got for one slot over three ticks."""
    fake = FakeChat()
    try:
        for space in ("A", "B"):
            fake.slow(f"spaces/{space}", 1.5)
        deliver = [{"type": "webhook", "url": fake.webhook_url(s)} for s in ("A", "B")]
        with tempfile.TemporaryDirectory() as folder:
            scheduler = scheduler_for(Path(folder), fake, deliver, deadline_seconds=deadline, lease_seconds=30)
            scheduler.tick(T0)
            for seconds in (35, 50, 59):
                scheduler.tick(T0 + timedelta(seconds=seconds))
            scheduler.services.store.engine.dispose()
        return len(fake.messages("spaces/B"))
    finally:
        fake.close()


def arrival_spacing() -> float:
    """Seconds between the two posts to one Space as they reached the fake."""
    fake = FakeChat(token_delay=0.3)
    try:
        deliver = [{"type": "chat_api", "space": "spaces/S"}, {"type": "webhook", "url": fake.webhook_url("S")}]
        with tempfile.TemporaryDirectory() as folder:
            scheduler = scheduler_for(Path(folder), fake, deliver, pace_seconds=1.0)
            scheduler.tick(T0)
            scheduler.tick(T0 + timedelta(seconds=35))
            scheduler.services.store.engine.dispose()
        first, second = sorted(p.at for p in fake.posts("spaces/S"))
        return second - first
    finally:
        fake.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    logging.getLogger("bot").setLevel(logging.ERROR)  # the figures, not each retry's warning
    posts = [slow_webhook_posts(1.55 + 0.1 * run) for run in range(args.runs)]
    print(f"slow webhook (1.5 s answers), posts per slot over {args.runs} runs: {posts}")
    print(f"  runs posted more than once: {sum(1 for n in posts if n > 1)} of {args.runs}")
    spacing = [arrival_spacing() for _ in range(max(3, args.runs // 2))]
    print(
        "two posts to one Space, pace 1.0 s, token endpoint 0.3 s:"
        f" arrival spacing median {statistics.median(spacing):.2f} s"
        f" (min {min(spacing):.2f}, max {max(spacing):.2f}, {len(spacing)} runs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
