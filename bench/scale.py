"""Scorebot at scale, in one run: the tick, its Vtiger calls, `/score` under load, and ticks sharing work.

Everything runs on 127.0.0.1 against fakes started here: a Vtiger stand-in
(`bench.scale_data.StandIn`, answering every call ``--delay`` seconds late)
holding generated HelpDesk data for ``--teams`` teams x 2 KPIs, and Chat
webhooks (`tests.fakes.chat.FakeChat`) answering ``--webhook-delay`` late.
Each figure is printed with what it is; the table at the end sets each one
against the issue's goal, ratios taken against a baseline measured in the
same run.

1. Sequential seed-style job (baseline): for each team in turn, log in, one
   ``count(*)`` per priority value, post to the webhook. It is linear in the
   teams, so it runs on ``--sequential-teams`` teams spread over the list and
   is scaled to all of them (the output says so).
2. Tick: `tests.tick_worker` (a tick in a fresh process, as ``python -m bot
   tick`` runs it) on a new SQLite store, every team due in the same minute;
   timed from the moment the process is told to go (imports and config
   loading done) until the last webhook post arrives, and until the process
   exits. Then a second tick, a minute later, in another new process on the
   same store.
3. Vtiger calls of each tick, counted at the stand-in (data calls are
   ``query``; login and ``describe`` apart), against `scale_data.minimum_calls`.
4. `/score` through the production server (app.yaml's waitress entrypoint, in
   a subprocess), request verification on: tokens signed by a key made here,
   certificates served on 127.0.0.1. Live (``cache_seconds: 0``: every request
   reads Vtiger) and cached (every team asked once first, then once more,
   which makes the card it keeps, then within the minute). Open loop:
   requests arrive independently (Poisson, ``--rate``) and each latency
   counts from its scheduled arrival, so waiting for a free
   client counts too; closed loop: ``--clients`` clients, each sending its
   next request when the last one is answered. An error is an HTTP status
   other than 200, a timeout, or a card saying "Could not refresh". CPU a
   cached request is the server process's CPU time (``/proc``) over the open
   loop divided by its requests, set against two floors under the same open
   loop: the bare floor, waitress with the same settings in a process of its
   own serving a bare WSGI callable that reads the request (the same bodies
   and headers) and answers the bytes of a cached card taken from the server
   in the same run (`bare_server`); and ``GET /healthz`` on the same server
   (waitress, Flask and the reply's secret check, no app work). RSS is read
   at the end.
5. ``--processes`` tick processes at once on PostgreSQL (a fresh schema per
   run, dropped after) over ``--pg-teams`` teams: time until every team's post
   arrived, and that every Space got exactly one post.

Usage: .venv/bin/python bench/scale.py [--teams 200] [--delay 0.1] [--parts tick,score,pg] [--help]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import hashlib
import itertools
import json
import logging
import math
import os
import pstats
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import requests
import waitress

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scale_data import KPIS, MODULE, Calls, StandIn, Team, generate, minimum_calls, write_config
from bot.app import create_app
from bot.config import CHAT_ISSUER, load_config
from bot.server import WAITRESS_SETTINGS, listen
from bot.services import build_services
from tests import payloads
from tests.fakes.chat import FakeChat
from tests.test_production_server import entrypoint_on_loopback
from tests.tokens import TokenFactory

ROOT = Path(__file__).resolve().parent.parent
PRIORITIES = ("Low", "Normal", "High", "Urgent")
APP = ("bot", "handlers", "scoring", "main.py")
DEFINITION = (
    "minimum = sum over KPIs, no sharing between KPIs, of min(page, count): page = rows // 100 + 1; "
    "count = 1 + picklist values + (rest // 100 + 1 if records with an empty or off-picklist category) "
    "+ 1 for the top items (or the oldest item) + 1 for the new-items count once the team "
    "has posted; login and describe not counted"
)


@dataclass
class Row:
    """One line of the final table."""

    what: str
    measured: str
    goal: str
    met: bool | None

    def cells(self) -> list[str]:
        return [self.what, self.measured, self.goal, {True: "yes", False: "NO", None: "-"}[self.met]]


@dataclass
class TickRun:
    """What one batch of tick processes did, as the fakes saw it."""

    processes: int
    to_last_post: float
    to_exit: float
    calls: Calls
    states: Counter[str]
    posts: Counter[str]
    returncodes: list[int]
    log_lines: int
    tick_cpu: float
    fakes_cpu: float

    def cpu_line(self) -> str:
        """CPU seconds of the tick processes and of this process (the fakes), against the wall time."""
        return (
            f"CPU {self.tick_cpu:.1f} s in the tick process(es), {self.fakes_cpu:.1f} s in the fakes' process,"
            f" over {self.to_exit:.1f} s on {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f})"
        )


@dataclass
class Load:
    """Latencies (s) and failures of one load run."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    stale: int = 0
    elapsed: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, latency: float, ok: bool, stale: bool) -> None:
        """One answered request (from any thread)."""
        with self._lock:
            self.latencies.append(latency)
            self.errors += not ok
            self.stale += stale

    def run(self, targets: list[Callable[[], None]], start: float) -> Load:
        """Run each of ``targets`` in a thread of its own until all end; this load, timed from ``start``."""
        threads = [threading.Thread(target=target) for target in targets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.elapsed = time.perf_counter() - start
        return self

    def pct(self, p: float) -> float:
        """The ``p``-th percentile (nearest rank), in ms."""
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000 if ordered else float("nan")

    def line(self) -> str:
        return (
            f"p50 {self.pct(50):.0f} ms, p95 {self.pct(95):.0f} ms, p99 {self.pct(99):.0f} ms;"
            f" {self.errors + self.stale} errors ({self.stale} stale cards) of {len(self.latencies)},"
            f" {len(self.latencies) / self.elapsed:.0f} req/s"
        )


def say(text: str) -> None:
    """A progress or figure line, at once."""
    print(text, flush=True)


# --- the sequential baseline -------------------------------------------------------------------------


def sequential_job(vtiger: StandIn, teams: list[Team], webhook_delay: float) -> float:
    """Seconds the seed-style job takes for ``teams``: log in, count(*) per priority, post; team after team."""
    chat = FakeChat()
    try:
        for team in teams:
            chat.slow(f"spaces/seed-{team.space}", webhook_delay)
        ws = f"{vtiger.url}/webservice.php"
        session = requests.Session()
        started = time.perf_counter()
        for team in teams:
            user = vtiger.username
            token = session.get(ws, params={"operation": "getchallenge", "username": user}, timeout=10)
            key = hashlib.md5((token.json()["result"]["token"] + vtiger.access_key).encode(), usedforsecurity=False)
            login = session.post(
                ws, data={"operation": "login", "username": user, "accessKey": key.hexdigest()}, timeout=10
            )
            name = login.json()["result"]["sessionName"]
            counts = {}
            for value in PRIORITIES:
                where = f"{team.filter()} AND ticketpriorities = '{value}'"
                vtql = f"SELECT count(*) FROM {MODULE} WHERE {where};"  # noqa: S608 (generated values)
                answer = session.get(ws, params={"operation": "query", "sessionName": name, "query": vtql}, timeout=10)
                counts[value] = int(answer.json()["result"][0]["count"])
            text = ", ".join(f"{v}: {n}" for v, n in counts.items())
            posted = session.post(chat.webhook_url(f"seed-{team.space}"), json={"text": text}, timeout=10)
            posted.raise_for_status()
        return time.perf_counter() - started
    finally:
        chat.close()


# --- ticks in their own processes ----------------------------------------------------------------------


def run_ticks(
    config: Path, store_url: str, now: datetime, processes: int, vtiger: StandIn, chat: FakeChat, log: Path
) -> TickRun:
    """Start ``processes`` tick workers, let them all go at once, and collect what the fakes saw."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "tests.tick_worker", str(config), store_url, now.isoformat(), "--wait"]
    with log.open("a") as errors:
        workers = [
            subprocess.Popen(  # noqa: S603 (this repository's tick worker, fixed arguments)
                command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True
            )
            for _ in range(processes)
        ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready", "a tick did not start"
        mark, before = vtiger.mark(), len(chat.posts())
        children, own = _cpu(resource.RUSAGE_CHILDREN), _cpu(resource.RUSAGE_SELF)
        go = time.monotonic()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=300)[0] for worker in workers]
        to_exit = time.monotonic() - go
        children, own = _cpu(resource.RUSAGE_CHILDREN) - children, _cpu(resource.RUSAGE_SELF) - own
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    posts = chat.posts()[before:]
    states = Counter(json.loads(line)["state"] for out in outputs for line in out.splitlines() if line.strip())
    return TickRun(
        processes=processes,
        to_last_post=max((p.at for p in posts), default=go) - go,
        to_exit=to_exit,
        calls=vtiger.calls(mark),
        states=states,
        posts=Counter(p.space for p in posts),
        returncodes=[w.returncode for w in workers],
        log_lines=sum(1 for _ in log.open()) if log.exists() else 0,
        tick_cpu=children,
        fakes_cpu=own,
    )


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def webhooks(teams: list[Team], delay: float) -> FakeChat:
    """A Chat fake whose team Spaces answer ``delay`` seconds after storing the message."""
    chat = FakeChat()
    for team in teams:
        chat.slow(f"spaces/{team.space}", delay)
    return chat


def due(slots: int) -> tuple[datetime, str]:
    """The current minute (the next hour's first if ``slots`` minutes from it would cross the hour) and a cron
    expression naming it and the ``slots - 1`` minutes after it: every team due at once, nothing older."""
    slot = datetime.now(UTC).replace(second=0, microsecond=0)
    if slot.minute + slots > 60:
        slot += timedelta(minutes=60 - slot.minute)
    minutes = ",".join(str(slot.minute + n) for n in range(slots))
    return slot, f"{minutes} {slot.hour} * * *"


def tick_part(args: argparse.Namespace, teams: list[Team], vtiger: StandIn, folder: Path) -> list[Row]:
    """The sequential baseline, two ticks in fresh processes, and their calls against the minimum."""
    step = max(1, len(teams) // args.sequential_teams)
    sample = teams[::step][: args.sequential_teams]
    say(f"[1] sequential seed-style job on {len(sample)} of {len(teams)} teams (every {step}th) ...")
    sample_seconds = sequential_job(vtiger, sample, args.webhook_delay)
    sequential = sample_seconds * len(teams) / len(sample)
    say(
        f"    {sample_seconds:.1f} s for {len(sample)} teams ({sample_seconds / len(sample) * 1000:.0f} ms a team:"
        f" 2 login + {len(PRIORITIES)} count calls + 1 post); scaled to {len(teams)} teams: {sequential:.1f} s"
    )
    chat = webhooks(teams, args.webhook_delay)
    rows: list[Row] = []
    try:
        schedule = {"concurrency": args.concurrency} if args.concurrency else {}
        store = f"sqlite:///{folder / 'tick.db'}"
        slot, cron = due(2)
        config = write_config(
            folder / "tick.yaml", teams, vtiger=vtiger, webhook=chat, store=store, schedule=schedule, cron=cron
        )
        settings = load_config(config).schedule
        say(
            f"[2] tick in a fresh process, new SQLite store, {len(teams)} teams x {len(KPIS)} KPIs due at once"
            f" (schedule.concurrency {settings.concurrency}, max_concurrent 8 a source) ..."
        )
        runs = []
        for index, at in enumerate((slot + timedelta(seconds=30), slot + timedelta(seconds=90))):
            run = run_ticks(config, store, at, 1, vtiger, chat, folder / f"tick{index + 1}.log")
            runs.append(run)
            say(
                f"    tick {index + 1}: last post {run.to_last_post:.2f} s after go, process done {run.to_exit:.2f} s;"
                f" outcomes {dict(run.states)}; Spaces posted {len(run.posts)}, most posts to one"
                f" {max(run.posts.values(), default=0)}; exit {run.returncodes}"
            )
            say(f"      Vtiger: {run.calls.line()}")
            say(f"      {run.cpu_line()}")
        first, second = runs
        delivered = first.states["delivered"] == len(teams) and len(first.posts) == len(teams)
        ratio = sequential / first.to_last_post
        rows.append(
            Row(
                f"tick, {len(teams)} teams x {len(KPIS)} KPIs, all delivered (fresh process, go to last post)",
                f"{first.to_last_post:.2f} s ({ratio:.0f}x the sequential job, {sequential:.0f} s"
                f" scaled from {len(sample)} teams); {first.states['delivered']} delivered; Vtiger calls in flight"
                f" {first.calls.busy / first.calls.wall:.1f} on average, {first.calls.peak} at most",
                "<= 8 s; >= 30x the sequential job",
                delivered and first.to_last_post <= 8 and ratio >= 30,
            )
        )
        least = [minimum_calls(teams, posted_before=posted) for posted in (False, True)]
        say(f"[3] {DEFINITION}")
        say(f"    minimum: first tick {least[0]}, second tick {least[1]} (the teams have posted once)")
        for index, (run, low) in enumerate(zip(runs, least, strict=True)):
            calls = run.calls
            rows.append(
                Row(
                    f"Vtiger data calls, tick {index + 1} ({['fresh store', 'new process, same store'][index]})",
                    f"{calls.data} against a minimum of {low} ({calls.data / low:.2f}x);"
                    f" + {calls.login} login, {calls.describe} describe",
                    "<= 1.1x the minimum",
                    calls.data <= 1.1 * low,
                )
            )
        rows.append(
            Row(
                "tick 2, all delivered",
                f"{second.to_last_post:.2f} s; {second.states['delivered']} delivered; Vtiger calls in flight"
                f" {second.calls.busy / second.calls.wall:.1f} on average, {second.calls.peak} at most",
                "every team",
                second.states["delivered"] == len(teams),
            )
        )
    finally:
        chat.close()
    return rows


# --- /score through the production server ----------------------------------------------------------------


class PgSchemas:
    """Fresh PostgreSQL schemas for one run, each dropped when done."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.admin = psycopg.connect(url, connect_timeout=3, autocommit=True)
        self.made: list[str] = []

    def fresh(self) -> str:
        """A store URL whose search_path is a new schema."""
        schema = f"scorebot_bench_{uuid.uuid4().hex[:12]}"
        self.admin.execute(f'CREATE SCHEMA "{schema}"')
        self.made.append(schema)
        return f"{self.url}{'&' if '?' in self.url else '?'}options=-csearch_path%3D{schema}"

    def close(self) -> None:
        """Drop every schema made."""
        for schema in self.made:
            self.admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        self.admin.close()


@contextlib.contextmanager
def served(command: Callable[[int], list[str]], log: Path, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """``command(port)`` on a free loopback port, once it answers ``GET /healthz``: (base URL, process id)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with log.open("ab") as output:
        process = subprocess.Popen(  # noqa: S603 (this repository's own programs)
            command(port), cwd=ROOT, env=env, stdout=output, stderr=output
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start; see {log}")
            time.sleep(0.1)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def production_server(config: Path, log: Path) -> contextlib.AbstractContextManager[tuple[str, int]]:
    """app.yaml's entrypoint on a free loopback port with ``config``: (base URL, process id)."""
    env = {**os.environ, "SCOREBOT_CONFIG": str(config)}
    env.pop("SCOREBOT_STORE", None)
    return served(entrypoint_on_loopback, log, env)


def bare_server(reply: bytes, folder: Path) -> contextlib.AbstractContextManager[tuple[str, int]]:
    """The floor: waitress with `WAITRESS_SETTINGS` on a free loopback port, in a process of its own, serving a
    bare WSGI callable that reads each request's body and answers ``reply``: (base URL, process id)."""
    path = folder / "bare-reply.json"
    path.write_bytes(reply)
    program = "import sys; from bench.scale import serve_bare; serve_bare(int(sys.argv[1]), sys.argv[2])"
    command = [sys.executable, "-c", program]
    return served(lambda port: [*command, str(port), str(path)], folder / "bare.log", dict(os.environ))


def serve_bare(port: int, reply_path: str) -> None:
    """`bare_server`'s process: every request's body read, the bytes of ``reply_path`` answered, until stopped."""
    reply = Path(reply_path).read_bytes()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(reply)))]

    def app(environ: dict[str, Any], start_response: Callable[..., object]) -> list[bytes]:
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", headers)
        return [reply]

    waitress.create_server(app, sockets=[listen("127.0.0.1", port)], **WAITRESS_SETTINGS).run()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> tuple[float, float]:
    """Resident set size now and at its peak, in MB."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


class Scorer:
    """Sends `/score` from a team's Space to the server, as Chat does (a signed bearer token)."""

    def __init__(self, base: str, token: str, teams: list[Team]) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.bodies = [
            json.dumps(payloads.classic_slash(space={"name": f"spaces/{t.space}", "type": "ROOM"})) for t in teams
        ]
        self._local = threading.local()

    def send(self, index: int) -> tuple[bool, bool]:
        """One `/score` for team ``index``: (answered 200, card says it could not refresh)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        try:
            answer = session.post(self.base + "/", data=self.bodies[index], headers=self.headers, timeout=30)
        except requests.RequestException:
            return False, False
        return answer.status_code == 200, "Could not refresh" in answer.text


class Pinger:
    """Sends ``GET /healthz`` (the app's cheapest route) in place of `/score`: the server's floor per request."""

    def __init__(self, base: str) -> None:
        self.url = base + "/healthz"
        self._local = threading.local()

    def send(self, _index: int) -> tuple[bool, bool]:
        """One request: (answered 200, False)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        try:
            return session.get(self.url, timeout=30).status_code == 200, False
        except requests.RequestException:
            return False, False


def open_loop(scorer: Scorer | Pinger, teams: int, rate: float, seconds: float, seed: int, workers: int = 64) -> Load:
    """Requests arriving independently at ``rate`` a second for ``seconds``; latency from each scheduled arrival."""
    rng = random.Random(seed)
    start = time.perf_counter() + 0.2
    arrivals, at = [], start
    while at < start + seconds:
        arrivals.append((at, rng.randrange(teams)))
        at += rng.expovariate(rate)
    load, taken = Load(), itertools.count()

    def worker() -> None:
        while (index := next(taken)) < len(arrivals):
            arrival, team = arrivals[index]
            if (wait := arrival - time.perf_counter()) > 0:
                time.sleep(wait)
            ok, stale = scorer.send(team)
            load.record(time.perf_counter() - arrival, ok, stale)

    return load.run([worker] * workers, start)


def closed_loop(scorer: Scorer, teams: int, clients: int, seconds: float, seed: int) -> Load:
    """``clients`` clients, each sending its next request when its last one is answered, for ``seconds``."""
    load = Load()
    start = time.perf_counter()
    stop = start + seconds

    def client(number: int) -> None:
        rng = random.Random(seed + number)
        while time.perf_counter() < stop:
            sent = time.perf_counter()
            ok, stale = scorer.send(rng.randrange(teams))
            load.record(time.perf_counter() - sent, ok, stale)

    return load.run([functools.partial(client, n) for n in range(clients)], start)


@dataclass
class Phase:
    """One load run against the server: its latencies, the server's CPU seconds, the stand-in's calls."""

    load: Load
    cpu: float
    calls: Calls

    @property
    def cpu_ms(self) -> float:
        """Server CPU a request, in ms."""
        return self.cpu / max(1, len(self.load.latencies)) * 1000

    def report(self, name: str) -> None:
        per = self.calls.data / max(1, len(self.load.latencies))
        say(f"    {name}: {self.load.line()}")
        say(f"      server CPU {self.cpu_ms:.2f} ms a request; Vtiger: {self.calls.line()} ({per:.2f} data calls each)")


def measured(pid: int, vtiger: StandIn, run: Callable[[], Load]) -> Phase:
    """``run`` with the server's CPU time and the stand-in's calls counted around it."""
    mark, cpu = vtiger.mark(), cpu_seconds(pid)
    load = run()
    return Phase(load, cpu_seconds(pid) - cpu, vtiger.calls(mark))


def median_run(phases: list[Phase]) -> tuple[Phase, str]:
    """The run with the median p99, and the p99 of every run."""
    ordered = sorted(phases, key=lambda phase: phase.load.pct(99))
    every = ", ".join(f"{phase.load.pct(99):.0f}" for phase in phases)
    return ordered[len(ordered) // 2], f"p99 of the {len(phases)} runs: {every} ms"


def score_part(
    args: argparse.Namespace, teams: list[Team], vtiger: StandIn, folder: Path, store: Callable[[str], str]
) -> list[Row]:
    """`/score` live and cached, open and closed loop, through waitress with verification on."""
    tokens = TokenFactory()
    chat = FakeChat()
    rows: list[Row] = []
    count = len(teams)
    memory: list[tuple[float, float]] = []
    try:
        now = int(time.time())
        token = tokens.sign(iss=CHAT_ISSUER, aud="123", iat=now, exp=now + 3600)
        verify = {"verify": True, "audience": "123", "certs_url": tokens.certs_url}
        for mode, cache, rate, seconds, runs in (
            ("live", 0, args.live_rate, args.live_seconds, 1),
            ("cached", 60, args.rate, args.seconds, args.runs),
        ):
            config = write_config(
                folder / f"serve-{mode}.yaml",
                teams,
                vtiger=vtiger,
                webhook=chat,
                store=store(mode),
                chat=verify,
                cache_seconds=cache,
            )
            say(f"[4] /score {mode}: waitress as app.yaml starts it, verification on, cache_seconds {cache} ...")
            opened: list[Phase] = []
            closed: list[Phase] = []
            floors: list[Phase] = []
            bares: list[Phase] = []
            with production_server(config, folder / f"serve-{mode}.log") as (base, pid), contextlib.ExitStack() as up:
                scorer = Scorer(base, token, teams)
                if mode == "cached":
                    warm = closed_loop_once(scorer, count)
                    say(f"    every team asked once first (live reads, stored): {warm.line()}")
                    kept = closed_loop_once(scorer, count)
                    say(f"    every team asked again (its card made from the stored readings, kept): {kept.line()}")
                    card = requests.post(base + "/", data=scorer.bodies[0], headers=scorer.headers, timeout=30).content
                    bare_base, bare_pid = up.enter_context(bare_server(card, folder))
                    sizes = f"{len(scorer.bodies[0])}-byte request body, the {len(card)}-byte card of a cached /score"
                    say(f"    bare waitress floor started ({sizes})")
                for run in range(runs):
                    opening = functools.partial(open_loop, scorer, count, rate, seconds, run)
                    opened.append(measured(pid, vtiger, opening))
                    opened[-1].report(f"open loop {rate:g}/s, run {run + 1}")
                    closing = functools.partial(
                        closed_loop, scorer, count, args.clients, args.closed_seconds, 100 + run
                    )
                    closed.append(measured(pid, vtiger, closing))
                    closed[-1].report(f"closed loop {args.clients} clients, run {run + 1}")
                    if mode == "cached":
                        pinging = functools.partial(open_loop, Pinger(base), count, rate, seconds, run)
                        floors.append(measured(pid, vtiger, pinging))
                        floors[-1].report(f"GET /healthz open loop {rate:g}/s (the floor), run {run + 1}")
                        to_bare = Scorer(bare_base, token, teams)
                        baring = functools.partial(open_loop, to_bare, count, rate, seconds, run)
                        bares.append(measured(bare_pid, vtiger, baring))
                        bares[-1].report(f"bare waitress open loop {rate:g}/s (the bare floor), run {run + 1}")
                memory.append(memory_mb(pid))
            say(f"    server RSS {memory[-1][0]:.0f} MB (peak {memory[-1][1]:.0f} MB)")
            (open_run, open_p99s), (closed_run, closed_p99s) = median_run(opened), median_run(closed)
            if mode == "live":
                calls = closed_run.calls
                rows.append(
                    Row(
                        f"/score live, {args.clients} concurrent clients (closed loop)",
                        f"{closed_run.load.line()}; {calls.data / max(1, len(closed_run.load.latencies)):.2f}"
                        f" data calls each, {calls.busy / calls.wall:.1f} in flight on average, {calls.peak} at most",
                        "p99 <= 1 s, 0 errors",
                        closed_run.load.pct(99) <= 1000 and closed_run.load.errors + closed_run.load.stale == 0,
                    )
                )
                rows.append(Row(f"/score live, open loop {rate:g}/s", open_run.load.line(), "(shown)", None))
            else:
                cpu = statistics.median(phase.cpu_ms for phase in opened)
                load = open_run.load
                rows.append(
                    Row(
                        f"/score cached (reading under a minute old), open loop {rate:g}/s, median of {runs} runs",
                        f"{load.line()}; {sum(p.calls.data for p in opened)} Vtiger calls; {open_p99s}",
                        "p99 <= 50 ms at 200 req/s",
                        load.pct(99) <= 50 and load.errors + load.stale == 0 and rate >= 200,
                    )
                )
                floor = statistics.median(phase.cpu_ms for phase in floors)
                bare = statistics.median(phase.cpu_ms for phase in bares)
                floor_p99, bare_p99 = (median_run(phases)[0].load.pct(99) for phases in (floors, bares))
                rows.append(
                    Row(
                        "server CPU per cached /score (process CPU time / requests, open loop)",
                        f"{cpu:.2f} ms (median of {runs} runs), p99 {load.pct(99):.0f} ms; {cpu - bare:.2f} ms above"
                        f" the bare waitress floor, {cpu - floor:.2f} ms above GET /healthz",
                        "<= 1 ms",
                        cpu <= 1,
                    )
                )
                rows.append(
                    Row(
                        f"the bare floor: waitress ({sizes}, a bare WSGI callable), same loop",
                        f"{bare:.2f} ms CPU a request (median of {runs} runs), p99 {bare_p99:.0f} ms",
                        "(shown)",
                        None,
                    )
                )
                rows.append(
                    Row(
                        "GET /healthz on the same server and loop (waitress, Flask, the reply's secret check)",
                        f"{floor:.2f} ms CPU a request (median of {runs} runs), p99 {floor_p99:.0f} ms",
                        "(shown)",
                        None,
                    )
                )
                rows.append(
                    Row(
                        f"/score cached, closed loop {args.clients} clients, median of {runs} runs",
                        f"{closed_run.load.line()}; {closed_p99s}",
                        "(shown)",
                        None,
                    )
                )
        rss, peak = max(memory, key=lambda m: m[1])
        rows.append(
            Row(
                "serve RSS (waitress, one process; the larger of the live and cached servers)",
                f"{rss:.0f} MB at the end (peak {peak:.0f} MB)",
                "<= 120 MB",
                peak <= 120,
            )
        )
    finally:
        chat.close()
        tokens.close()
    return rows


def closed_loop_once(scorer: Scorer, teams: int, clients: int = 16) -> Load:
    """Every team asked once, ``clients`` at a time."""
    load, taken = Load(), itertools.count()
    start = time.perf_counter()

    def client() -> None:
        while (index := next(taken)) < teams:
            sent = time.perf_counter()
            ok, stale = scorer.send(index)
            load.record(time.perf_counter() - sent, ok, stale)

    return load.run([client] * clients, start)


# --- where a cached /score's CPU goes ------------------------------------------------------------------------------


def profile_part(
    args: argparse.Namespace, teams: list[Team], vtiger: StandIn, folder: Path, store: Callable[[str], str]
) -> None:
    """Profile cached `/score` in this process (Flask's test client, the same config and checks): CPU a request
    and the share of each package and of the app's own functions."""
    tokens, chat = TokenFactory(), FakeChat()
    try:
        verify = {"verify": True, "audience": "123", "certs_url": tokens.certs_url}
        config = write_config(
            folder / "profile.yaml", teams, vtiger=vtiger, webhook=chat, store=store("profile"), chat=verify
        )
        services = build_services(load_config(config))
        client = create_app(services=services).test_client()
        now = int(time.time())
        token = tokens.sign(iss=CHAT_ISSUER, aud="123", iat=now, exp=now + 3600)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        asked = teams[: args.profile_teams]  # few enough that their readings stay under a minute old
        bodies = [
            json.dumps(payloads.classic_slash(space={"name": f"spaces/{t.space}", "type": "ROOM"})) for t in asked
        ]
        for _ in range(2):  # the readings the cached requests show, then the cards kept from them
            for body in bodies:
                client.post("/", data=body, headers=headers)
        requests_count = args.profile_requests
        order = [bodies[i % len(bodies)] for i in range(requests_count)]
        mark, cpu = vtiger.mark(), time.process_time()
        for body in order:
            client.post("/", data=body, headers=headers)
        plain = (time.process_time() - cpu) / requests_count * 1000
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for body in order:
            client.post("/", data=body, headers=headers)
        profiler.disable()
        calls = vtiger.calls(mark).data
        services.store.engine.dispose()
    finally:
        chat.close()
        tokens.close()
    stats = pstats.Stats(profiler)
    total = sum(entry[2] for entry in stats.stats.values())  # type: ignore[attr-defined]
    groups: Counter[str] = Counter()
    for (filename, _, name), entry in stats.stats.items():  # type: ignore[attr-defined]
        groups[_package(filename, name)] += entry[2]
    say(
        f"[6] a cached /score in-process (Flask test client, verification on, {requests_count} requests over"
        f" {len(bodies)} teams,"
        f" {calls} Vtiger calls): {plain:.2f} ms CPU a request without the profiler. Own time by package"
        " (cProfile on CPU time, its overhead included):"
    )
    say("    " + ", ".join(f"{name} {seconds / total:.0%}" for name, seconds in groups.most_common(10)))
    own = [
        (entry[3], f"{Path(filename).relative_to(ROOT)}:{name}")
        for (filename, _, name), entry in stats.stats.items()  # type: ignore[attr-defined]
        if any(filename.startswith(str(ROOT / part)) for part in APP)
    ]
    say(
        "    the app's functions by CPU time inside them (cumulative share of the profiled time, and that share"
        f" of the {plain:.2f} ms):"
    )
    for seconds, where in sorted(own, reverse=True)[: args.profile_lines]:
        say(f"      {seconds / total:5.0%} {seconds / total * plain:6.2f} ms  {where}")


def _package(filename: str, name: str) -> str:
    """The package a profiled function belongs to: a site-packages top level, the app's module, or a C type."""
    if filename == "~":
        owner = name.split(" of ", 1)[1].strip("'>").split("'")[0] if " of " in name else "builtins"
        return f"C: {owner}"
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    if any(filename.startswith(str(ROOT / part)) for part in APP):
        return ".".join(Path(filename).relative_to(ROOT).with_suffix("").parts[:2])
    return "stdlib: " + Path(filename).stem


# --- tick processes sharing work on PostgreSQL -----------------------------------------------------------------


def pg_part(args: argparse.Namespace, pg: PgSchemas, folder: Path) -> list[Row]:
    """1, 2, 4 tick processes at once over ``--pg-teams`` teams, each run on a fresh schema."""
    teams = generate(args.pg_teams, seed=args.seed + 1)
    vtiger = StandIn(teams, args.delay)
    rows: list[Row] = []
    rates: dict[int, float] = {}
    try:
        for processes in args.processes:
            url = pg.fresh()
            chat = webhooks(teams, args.webhook_delay)
            try:
                schedule = {"concurrency": args.concurrency} if args.concurrency else {}
                slot, cron = due(1)
                config = write_config(
                    folder / f"pg{processes}.yaml",
                    teams,
                    vtiger=vtiger,
                    webhook=chat,
                    store=url,
                    schedule=schedule,
                    cron=cron,
                )
                build_services(load_config(config), store_url=url).store.engine.dispose()  # tables made once
                say(f"[5] {processes} tick process(es) at once, PostgreSQL, {len(teams)} teams ...")
                log = folder / f"pg{processes}.log"
                run = run_ticks(config, url, slot + timedelta(seconds=30), processes, vtiger, chat, log)
            finally:
                chat.close()
            missing = len(teams) - len(run.posts)
            twice = sum(1 for n in run.posts.values() if n > 1)
            once = missing == 0 and twice == 0
            rates[processes] = len(run.posts) / run.to_last_post if run.to_last_post else 0.0
            say(
                f"    last post {run.to_last_post:.2f} s after go (processes done {run.to_exit:.2f} s);"
                f" outcomes {dict(run.states)}; Spaces posted {len(run.posts)} of {len(teams)}, {twice} more than"
                f" once; exit {run.returncodes}; {run.log_lines} log lines"
            )
            say(f"      Vtiger: {run.calls.line()}")
            say(f"      {run.cpu_line()}")
            if not once or set(run.states) != {"delivered"}:
                say("      log: " + " | ".join(sorted({line[:160] for line in log.read_text().splitlines()})[:8]))
            base = rates[args.processes[0]]
            left = ", ".join(f"{n} {state}" for state, n in run.states.items() if state != "delivered") or "none"
            rows.append(
                Row(
                    f"{processes} tick process(es) at once, PostgreSQL, {len(teams)} teams",
                    f"{len(run.posts)} of {len(teams)} posted, the last {run.to_last_post:.1f} s after go;"
                    f" {rates[processes]:.1f} teams/s ({rates[processes] / base:.2f}x the rate of"
                    f" {args.processes[0]}); {missing} Spaces without a post ({left}), {twice} with more than one;"
                    f" {run.calls.data} data calls, {run.calls.login} login",
                    "every slot delivered exactly once",
                    once,
                )
            )
    finally:
        vtiger.close()
    return rows


# --- the run ------------------------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = ["| what | measured | goal | met? |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags; the defaults fit the whole run in six to eight minutes on a busy 2-core machine."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=200, help="teams for the tick and /score (2 KPIs each)")
    parser.add_argument("--pg-teams", type=int, default=800, help="teams for the PostgreSQL multi-process ticks")
    parser.add_argument("--delay", type=float, default=0.1, help="seconds the Vtiger stand-in takes a call")
    parser.add_argument("--webhook-delay", type=float, default=0.05, help="seconds a webhook takes to answer")
    parser.add_argument("--concurrency", type=int, default=0, help="schedule.concurrency (0: the config default)")
    parser.add_argument("--sequential-teams", type=int, default=10, help="teams the sequential job runs on")
    parser.add_argument("--rate", type=float, default=200, help="open-loop arrivals a second, cached /score")
    parser.add_argument("--live-rate", type=float, default=200, help="open-loop arrivals a second, live /score")
    parser.add_argument("--seconds", type=float, default=2, help="open-loop duration, cached /score")
    parser.add_argument("--live-seconds", type=float, default=1, help="open-loop duration, live /score")
    parser.add_argument("--closed-seconds", type=float, default=3, help="closed-loop duration")
    parser.add_argument("--clients", type=int, default=50, help="closed-loop clients")
    parser.add_argument("--runs", type=int, default=3, help="runs of the cached loops (the median is shown)")
    parser.add_argument("--processes", type=lambda s: [int(n) for n in s.split(",")], default=[1, 2, 4])
    parser.add_argument(
        "--pg-url", default=os.environ.get("SCOREBOT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--serve-store", choices=["postgres", "sqlite"], default="postgres", help="the server's store")
    parser.add_argument("--parts", default="tick,score,profile,pg", help="which parts to run (comma-separated)")
    parser.add_argument("--profile-requests", type=int, default=300, help="cached /score requests profiled")
    parser.add_argument("--profile-teams", type=int, default=40, help="teams the profiled requests ask for")
    parser.add_argument("--profile-lines", type=int, default=16, help="the app's functions listed by the profile")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the configs, stores and logs (the path is printed)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the parts asked for and print the table."""
    args = parse(argv)
    logging.getLogger("bot").setLevel(logging.ERROR)  # the figures; each process's logs go to its log file
    parts = set(args.parts.split(","))
    started = time.perf_counter()
    teams = generate(args.teams, seed=args.seed)
    sizes = [len(t.open_records()) for t in teams]
    say(
        f"data: {len(teams)} teams, {sum(sizes)} open HelpDesk records ({sum(n >= 100 for n in sizes)} teams with 100"
        f" or more); Vtiger {args.delay * 1000:.0f} ms a call, webhooks {args.webhook_delay * 1000:.0f} ms;"
        f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    rows: list[Row] = []
    pg = PgSchemas(args.pg_url) if "pg" in parts or args.serve_store == "postgres" else None
    vtiger = StandIn(teams, args.delay)
    try:
        with (
            contextlib.nullcontext(tempfile.mkdtemp(prefix="scorebot-scale-"))
            if args.keep
            else tempfile.TemporaryDirectory(prefix="scorebot-scale-")
        ) as tmp:
            folder = Path(tmp)
            if args.keep:
                say(f"configs, stores and logs kept in {folder}")
            if "tick" in parts:
                rows += tick_part(args, teams, vtiger, folder)

            def store(mode: str) -> str:
                return pg.fresh() if pg and args.serve_store == "postgres" else f"sqlite:///{folder / mode}.db"

            if "score" in parts:
                rows += score_part(args, teams, vtiger, folder, store)
            if "profile" in parts:
                profile_part(args, teams, vtiger, folder, store)
            if "pg" in parts and pg:
                rows += pg_part(args, pg, folder)
    finally:
        vtiger.close()
        if pg:
            pg.close()
    say(
        f"\nwhole run {time.perf_counter() - started:.0f} s, load average now {os.getloadavg()[0]:.1f}"
        f" on {os.cpu_count()} cores; {DEFINITION}\n"
    )
    say(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
