"""Slow clients against the production server: do normal requests still get answered?

Starts the production app (`main:app`) on 127.0.0.1 under three servers in
turn: the one `app.yaml` used before (gunicorn, 2 workers x 8 threads), the
one its `entrypoint` names now (waitress; its address swapped for 127.0.0.1),
and granian (a Rust WSGI server, 1 worker x 16 blocking threads, for
comparison). Request verification is on: Chat tokens are checked against
certificates of a key made here, served on 127.0.0.1. For each run it times
normal requests (`GET /healthz`, one every 0.1 s, 5 s timeout) first with no
attack (the baseline), then during an attack of slow-header connections (a
header line a second, never finishing) and slow bodies (`POST /` announcing
100 kB, sending a byte a second), with a bad token or with a valid one (it
passes the token check, so the app then reads the body). Everything is
bounded: a fixed number of connections, a fixed attack time, every socket
closed at the end.

Four attacks (slow headers alone, slow bodies with a bad token alone, both,
slow bodies with a valid token alone). Prints per server and attack the median
over runs of: normal requests answered within the timeout, their median and
worst latency, and the median latency as a ratio of the baseline measured in
the same runs.
Usage: .venv/bin/python bench/slow_clients.py [--runs 3] [--seconds 8] [--slow-headers 18] [--slow-bodies 64]
       [--verified-bodies 24]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import CHAT_ISSUER
from tests.tokens import TokenFactory

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TIMEOUT = 5.0
PERIOD = 0.1
BEFORE = "gunicorn --bind :$PORT --workers 2 --threads 8 --timeout 120 main:app"
GRANIAN = (
    "granian --interface wsgi --host 127.0.0.1 --port $PORT --workers 1 --blocking-threads 16"
    " --backpressure 200 --no-ws --http 1 main:app"
)
SLOW_HEADER = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-Slow: 1\r\n")


def slow_body(token: str) -> tuple[bytes, bytes]:
    """A `POST /` with ``token`` announcing 100 kB, and the byte it sends each second."""
    return (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: 100000\r\n\r\n{",
        b" ",
    )


@dataclass
class Sample:
    """Normal requests over one window: latencies of those answered, and how many were sent."""

    latencies: list[float]
    sent: int

    @property
    def answered(self) -> float:
        return len(self.latencies) / self.sent if self.sent else 0.0

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else float("inf")

    @property
    def worst_ms(self) -> float:
        return max(self.latencies) * 1000 if self.latencies else float("inf")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def command(entrypoint: str, port: int) -> list[str]:
    """An app.yaml entrypoint made to listen on 127.0.0.1:``port``, its program taken from this virtualenv."""
    line = entrypoint.replace(" :$PORT", " 127.0.0.1:$PORT").replace("$PORT", str(port))
    line = line.replace("0.0.0.0", "127.0.0.1")  # noqa: S104 (the all-interfaces address is replaced, not bound)
    argv = shlex.split(line)
    if "127.0.0.1" not in line:
        raise SystemExit(f"cannot make {entrypoint!r} listen on 127.0.0.1 only")
    return [str(BIN / argv[0]), *argv[1:]]


@contextlib.contextmanager
def server(argv: list[str], port: int, env: dict[str, str]):
    """The server process, started and answering /healthz; stopped at the end."""
    process = subprocess.Popen(  # noqa: S603 (the command is this repository's own entrypoint)
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit(f"{argv[0]} did not start") from None
                time.sleep(0.2)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def normal_requests(port: int, seconds: float) -> Sample:
    """One `GET /healthz` every PERIOD for ``seconds``, each in its own thread; wait for all to finish."""
    latencies: list[float] = []
    lock = threading.Lock()

    def one() -> None:
        started = time.monotonic()
        try:
            response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=TIMEOUT)
        except requests.RequestException:
            return
        if response.status_code == 200:
            with lock:
                latencies.append(time.monotonic() - started)

    threads = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        thread = threading.Thread(target=one)
        thread.start()
        threads.append(thread)
        time.sleep(PERIOD)
    for thread in threads:
        thread.join()
    return Sample(latencies, len(threads))


def attack(port: int, starts: list[tuple[bytes, bytes]], stop: threading.Event) -> None:
    """Open the slow connections (each sends its first bytes, then its drip every second) until ``stop``, then close
    them all."""
    sockets: list[tuple[socket.socket, bytes]] = []
    for first, drip in starts:
        with contextlib.suppress(OSError):
            conn = socket.create_connection(("127.0.0.1", port), timeout=1)
            conn.sendall(first)
            sockets.append((conn, drip))
    while not stop.wait(1.0):
        for conn, drip in list(sockets):
            try:
                conn.sendall(drip)
            except OSError:
                sockets.remove((conn, drip))
                conn.close()
    for conn, _ in sockets:
        conn.close()


def one_run(
    argv: list[str], port: int, env: dict[str, str], starts: list[tuple[bytes, bytes]], seconds: float
) -> tuple[Sample, Sample]:
    """Baseline, then the same normal requests during the attack, against a fresh server."""
    with server(argv, port, env):
        baseline = normal_requests(port, 3.0)
        stop = threading.Event()
        attacker = threading.Thread(target=attack, args=(port, starts, stop))
        attacker.start()
        time.sleep(1.0)  # let the slow connections open before timing
        try:
            attacked = normal_requests(port, seconds - 1.0)
        finally:
            stop.set()
            attacker.join()
    return baseline, attacked


def main() -> None:
    """Measure the three servers and print."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="attack length per run")
    parser.add_argument("--slow-headers", type=int, default=18)
    parser.add_argument("--slow-bodies", type=int, default=64, help="slow bodies with a bad token")
    parser.add_argument("--verified-bodies", type=int, default=24, help="slow bodies with a valid token")
    args = parser.parse_args()
    after = yaml.safe_load((ROOT / "app.yaml").read_text())["entrypoint"]
    print(
        f"attacks of {args.seconds:g} s: slow headers, slow bodies (bad token), both, slow bodies (valid token); "
        f"normal requests: GET /healthz "
        f"every {PERIOD:g} s, {TIMEOUT:g} s timeout, timed from 1 s into the attack; medians of {args.runs} runs"
    )
    tokens = TokenFactory()
    with tempfile.TemporaryDirectory() as tmp, contextlib.closing(tokens):
        folder = Path(tmp)
        for name in ("demo.yaml", "demo-issues.csv"):
            shutil.copy(ROOT / "config" / name, folder / name)
        data = yaml.safe_load((folder / "demo.yaml").read_text())
        data["chat"] = {"verify": True, "audience": "123", "certs_url": tokens.certs_url}
        (folder / "demo.yaml").write_text(yaml.safe_dump(data))
        env = {
            **os.environ,
            "SCOREBOT_CONFIG": str(folder / "demo.yaml"),
            "SCOREBOT_STORE": f"sqlite:///{folder / 'bench.db'}",
        }
        bad = slow_body("x.y.z")
        now = int(time.time())  # the token outlives the whole run (an hour)
        valid = slow_body(tokens.sign(iss=CHAT_ISSUER, aud="123", iat=now, exp=now + 3600))
        scenarios = (
            (f"slow headers ({args.slow_headers})", [SLOW_HEADER] * args.slow_headers),
            (f"slow bodies ({args.slow_bodies})", [bad] * args.slow_bodies),
            (
                f"both ({args.slow_headers} + {args.slow_bodies})",
                [SLOW_HEADER] * args.slow_headers + [bad] * args.slow_bodies,
            ),
            (f"valid-token bodies ({args.verified_bodies})", [valid] * args.verified_bodies),
        )
        for label, entrypoint in (("before", BEFORE), ("after", after), ("granian", GRANIAN)):
            print(f"{label}: {entrypoint}")
            for name, starts in scenarios:
                runs = []
                for _ in range(args.runs):
                    port = free_port()
                    runs.append(one_run(command(entrypoint, port), port, env, starts, args.seconds))
                report(name, runs)


def report(name: str, runs: list[tuple[Sample, Sample]]) -> None:
    """One line: medians over runs of the attacked window, against the baseline of the same runs."""
    base = statistics.median(b.median_ms for b, _ in runs)
    answered = statistics.median(a.answered for _, a in runs)
    sent = statistics.median(a.sent for _, a in runs)
    median = statistics.median(a.median_ms for _, a in runs)
    worst = statistics.median(a.worst_ms for _, a in runs)
    timing = (
        f"median {median:.1f} ms ({median / base:.1f}x the {base:.1f} ms with no attack), worst {worst:.0f} ms"
        if median != float("inf")
        else f"none answered (no attack: median {base:.1f} ms)"
    )
    each = "/".join(f"{a.answered:.0%}" for _, a in runs)
    print(f"  {name:<26} answered {answered:4.0%} (runs: {each}) of {sent:.0f} within {TIMEOUT:g} s; {timing}")


if __name__ == "__main__":
    main()
