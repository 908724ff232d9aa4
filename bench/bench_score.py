"""How long `/score` and Refresh take inside the app, against a baseline in the same process.

Runs the demo configuration with request verification on (tokens signed by a
key made here, certificates served on 127.0.0.1), through Flask's test client.
Prints the median of several runs, per request, wall time and this process's
CPU time, and their ratios to `/healthz` (routing alone) measured alongside,
since absolute times on a shared machine drift. `/score` is asked again within
the reading cache's minute, so it is served from the stored reading (as
`/score` is most of the time); Refresh always reads the CSV. ``--history``
first writes the demo's 60 days of history, so the card compares with a last
post, 14 days and the reading of 7 days ago (without it: a new store).
Usage: .venv/bin/python bench/bench_score.py [--requests 200] [--runs 5] [--history]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import create_app
from bot.config import CHAT_ISSUER, DEMO_CONFIG, load_config
from bot.demo import seed_history
from bot.services import build_services
from tests import payloads
from tests.tokens import TokenFactory


def per_request_ms(action: Callable[[], object], requests: int, runs: int) -> tuple[float, float]:
    """Medians over ``runs`` of the mean wall time and CPU time of ``requests`` calls, in milliseconds."""
    walls, cpus = [], []
    for _ in range(runs):
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(requests):
            action()
        walls.append((time.perf_counter() - started) / requests * 1000)
        cpus.append((time.process_time() - cpu) / requests * 1000)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--history", action="store_true", help="write the demo's 60 days of history first")
    args = parser.parse_args()
    tokens = TokenFactory()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in ("demo.yaml", "demo-issues.csv"):
            shutil.copy(DEMO_CONFIG.parent / name, folder / name)
        data = yaml.safe_load((folder / "demo.yaml").read_text())
        data["chat"] = {"verify": True, "audience": "123", "certs_url": tokens.certs_url}
        (folder / "demo.yaml").write_text(yaml.safe_dump(data))
        services = build_services(load_config(folder / "demo.yaml"), store_url="sqlite:///bench.db")
        if args.history:
            seed_history(services.store, services.config, services.clock())
        client = create_app(services=services).test_client()
        now = int(time.time())
        token = tokens.sign(iss=CHAT_ISSUER, aud="123", iat=now, exp=now + 3600)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        score = json.dumps(payloads.classic_slash())
        click = json.dumps(payloads.addon_click("customer"))
        figures = {
            "GET /healthz (baseline)": lambda: client.get("/healthz"),
            "POST / unknown event (verify + parse)": lambda: client.post("/", data="{}", headers=headers),
            "POST / /score": lambda: client.post("/", data=score, headers=headers),
            "POST / Refresh (add-on)": lambda: client.post("/", data=click, headers=headers),
        }
        client.post("/", data=score, headers=headers)  # the reading /score is served from
        results = {name: per_request_ms(action, args.requests, args.runs) for name, action in figures.items()}
        wall_base, cpu_base = results["GET /healthz (baseline)"]
        store = "the demo's 60 days of history" if args.history else "a new store"
        print(f"{args.runs} runs x {args.requests} requests on {store}, median per request (wall, CPU):")
        for name, (wall, cpu) in results.items():
            ratios = f"{wall / wall_base:6.1f}x   CPU {cpu:8.3f} ms {cpu / cpu_base:6.1f}x baseline"
            print(f"  {name:42s} {wall:8.3f} ms {ratios}")
        print(f"  certificate fetches for all requests: {tokens.fetches}")
        services.store.engine.dispose()
    tokens.close()


if __name__ == "__main__":
    main()
