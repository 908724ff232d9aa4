"""A cold instance while Google's certificate URL hangs: how long 8 concurrent requests wait for their 503.

Each run builds a fresh app (no certificates cached) whose certificate URL is a
server on 127.0.0.1 that accepts the request and never answers, then sends 8
signed `/score` requests at once through Flask's test client. Prints, per run,
the time to the first and the last 503 and how many fetches reached the
server, then the median last-503 time as a ratio of the certificate fetch
timeout (the baseline: what one request should cost at most).
Usage: .venv/bin/python bench/certs_hang.py [--runs 3] [--concurrent 8]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import create_app
from bot.config import DEMO_CONFIG, load_config
from bot.google_tokens import FETCH_TIMEOUT_SECONDS
from bot.services import build_services
from tests import payloads
from tests.tokens import TokenFactory


def one_run(folder: Path, concurrent: int) -> tuple[list[float], list[int], int]:
    """Times to each answer (seconds, sorted), their statuses, and the fetches the certificate server saw."""
    tokens = TokenFactory()
    tokens.hang = True
    try:
        data = yaml.safe_load((DEMO_CONFIG.parent / "demo.yaml").read_text())
        data["chat"] = {"verify": True, "audience": "123", "certs_url": tokens.certs_url}
        (folder / "demo.yaml").write_text(yaml.safe_dump(data))
        services = build_services(load_config(folder / "demo.yaml"), store_url="sqlite:///bench.db")
        app = create_app(services=services)
        header = {"Authorization": "Bearer " + tokens.project_number_token("123")}
        body = json.dumps(payloads.classic_slash())
        started = time.monotonic()

        def request(_: int) -> tuple[float, int]:
            response = app.test_client().post("/", data=body, headers=header, content_type="application/json")
            return time.monotonic() - started, response.status_code

        with ThreadPoolExecutor(max_workers=concurrent) as pool:
            answers = sorted(pool.map(request, range(concurrent)))
        return [t for t, _ in answers], [s for _, s in answers], tokens.fetches
    finally:
        tokens.close()


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrent", type=int, default=8)
    args = parser.parse_args()
    lasts = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copy(DEMO_CONFIG.parent / "demo-issues.csv", folder / "demo-issues.csv")
        for run in range(1, args.runs + 1):
            times, statuses, fetches = one_run(folder, args.concurrent)
            lasts.append(times[-1])
            print(
                f"run {run}: {args.concurrent} requests, statuses {sorted(set(statuses))}, "
                f"first answer {times[0]:.2f} s, last {times[-1]:.2f} s, certificate fetches {fetches}"
            )
    last = statistics.median(lasts)
    print(
        f"median time to the last answer: {last:.2f} s = {last / FETCH_TIMEOUT_SECONDS:.2f} × "
        f"the {FETCH_TIMEOUT_SECONDS:g} s fetch timeout"
    )


if __name__ == "__main__":
    main()
