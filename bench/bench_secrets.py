"""What hiding secrets by value costs: `bot.secrets.scrub` and a cleaned log record.

For 10, 100 and 1,000 registered secrets (a process keeps its config's few, plus
at most 256 issued sessions and tokens, each in up to four forms), it prints the
median time to register one more value, to scrub a 200-character log line and a
30 KB card, and, as the baseline measured in the same run, the same scrubs done
with one regular expression of every value (the first design), with the ratio.
Then the median time to make and format one log record with and without the
record cleaning of `bot.logs` (with the last registry's 1,000 values unused:
the process-wide registry holds none here).

Usage: .venv/bin/python bench/bench_secrets.py [--runs 7]
"""

from __future__ import annotations

import argparse
import io
import logging
import re
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.logs import install_log_cleaning
from bot.secrets import PLACEHOLDER, SecretRegistry

LINE = "team alpha slot 2026-11-09T09:01:00+00:00: Chat API post to spaces/AAAA: HTTP 429 (RESOURCE_EXHAUSTED) " * 2
CARD = ('{"text": "' + "Open customer issues: index 42 (target 40) ▲ +3 vs last post " * 8 + '"}\n') * 60


def median_ms(action: Callable[[], object], runs: int, repeat: int) -> float:
    """The median over ``runs`` of the mean time of ``repeat`` calls, in milliseconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(repeat):
            action()
        times.append((time.perf_counter() - started) / repeat * 1000)
    return statistics.median(times)


def registry_of(count: int) -> tuple[SecretRegistry, re.Pattern[str]]:
    """A registry of ``count`` random values, and the one-regex baseline over the same forms."""
    registry = SecretRegistry()
    for _ in range(count):
        registry.register(secrets.token_urlsafe(18))
    forms = list(registry._values)
    pattern = re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)))
    return registry, pattern


def record_ms(runs: int) -> float:
    """Median time to log one INFO record with two fields through a formatting handler."""
    logger = logging.getLogger("bench")
    logger.propagate = False
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return median_ms(lambda: logger.info("team %s slot %s: delivered", "alpha", LINE[:40]), runs, 2000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    print(f"median of {runs} runs; times in ms")
    columns = ("secrets", "register", "line", "line re", "ratio", "card", "card re", "ratio")
    print(" ".join(f"{name:>8}" for name in columns))
    for count in (10, 100, 1000):
        registry, pattern = registry_of(count)
        register = median_ms(lambda r=registry: r.register(secrets.token_urlsafe(18)), runs, 5)
        line = median_ms(lambda r=registry: r.scrub(LINE), runs, 500)
        line_re = median_ms(lambda p=pattern: p.sub(PLACEHOLDER, LINE), runs, 50)
        card = median_ms(lambda r=registry: r.scrub(CARD), runs, 5)
        card_re = median_ms(lambda p=pattern: p.sub(PLACEHOLDER, CARD), runs, 2)
        print(
            f"{count:>8} {register:>8.3f} {line:>8.4f} {line_re:>8.4f} {line_re / line:>8.1f}"
            f" {card:>8.3f} {card_re:>8.2f} {card_re / card:>8.1f}"
        )
    install_log_cleaning()
    cleaning = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)
    plain = record_ms(runs)
    logging.setLogRecordFactory(cleaning)
    cleaned = record_ms(runs)
    print(f"one log record: {plain * 1000:.1f} µs plain, {cleaned * 1000:.1f} µs cleaned ({cleaned / plain:.1f}×)")


if __name__ == "__main__":
    main()
