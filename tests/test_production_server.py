"""The production server on 127.0.0.1, as `app.yaml` starts it and as `python -m bot serve` runs it: slow clients
must not starve normal requests in either, even slow bodies behind a token that passes the check."""

import contextlib
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from bot.config import CHAT_ISSUER
from bot.server import WAITRESS_SETTINGS
from tests import payloads
from tests.test_web import make_config

ROOT = Path(__file__).resolve().parent.parent
SLOW_HEADERS = 20
SLOW_BODIES = 64
VERIFIED_SLOW_BODIES = int(WAITRESS_SETTINGS["threads"]) + 8
"""More slow bodies with a valid token than the server has threads: a server that reads a body in the app's
thread (after the token check) would have none left."""


def entrypoint_on_loopback(port: int) -> list[str]:
    """app.yaml's entrypoint, listening on 127.0.0.1:``port``, its program from this virtualenv."""
    entrypoint = yaml.safe_load((ROOT / "app.yaml").read_text())["entrypoint"]
    line = entrypoint.replace(" :$PORT", " 127.0.0.1:$PORT").replace("0.0.0.0", "127.0.0.1")
    line = line.replace("$PORT", str(port))
    argv = shlex.split(line)
    assert "127.0.0.1" in line, f"cannot make {entrypoint!r} listen on 127.0.0.1 only"
    return [str(Path(sys.executable).parent / argv[0]), *argv[1:]]


def serve_on_loopback(port: int) -> list[str]:
    """`python -m bot serve` on 127.0.0.1:``port`` (the config from $SCOREBOT_CONFIG)."""
    return [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)]


@pytest.fixture(params=[entrypoint_on_loopback, serve_on_loopback], ids=["app.yaml", "serve"])
def production_server(request, tmp_path, token_factory):
    """The app under the production server on a free loopback port, started as app.yaml or `serve` does; its URL."""
    config = make_config(tmp_path, audience="123", certs_url=token_factory.certs_url)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SCOREBOT_CONFIG": str(config.path), "SCOREBOT_STORE": f"sqlite:///{tmp_path / 'p.db'}"}
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(request.param(port), cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the production server did not start within 30 s"
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def slow_body_start(token: str) -> bytes:
    """The start of a `POST /` with ``token`` that announces a 100 kB body and sends only its first byte."""
    return (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: 100000\r\n\r\n{"
    )


def test_normal_requests_are_answered_while_slow_clients_hold_connections(production_server):
    port = int(production_server.rsplit(":", 1)[1])
    slow_header = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n"
    slow_body = slow_body_start("x.y.z")
    with contextlib.ExitStack() as slow:
        for start in [slow_header] * SLOW_HEADERS + [slow_body] * SLOW_BODIES:
            conn = slow.enter_context(socket.create_connection(("127.0.0.1", port), timeout=2))
            conn.sendall(start)
        for _ in range(5):
            response = requests.get(production_server + "/healthz", timeout=3)
            assert response.status_code == 200
            assert response.text == "ok\n"
            assert response.headers["Server"] == "waitress"


def test_normal_requests_are_answered_while_slow_bodies_carry_a_valid_token(production_server, token_factory):
    """Each slow body passes the token check, announces 100 kB and sends a byte every 0.5 s; normal requests and a
    whole Chat event with the same token are still answered."""
    port = int(production_server.rsplit(":", 1)[1])
    now = int(time.time())
    token = token_factory.sign(iss=CHAT_ISSUER, aud="123", iat=now, exp=now + 3600)
    slow_body = slow_body_start(token)
    with contextlib.ExitStack() as slow:
        conns = [
            slow.enter_context(socket.create_connection(("127.0.0.1", port), timeout=2))
            for _ in range(VERIFIED_SLOW_BODIES)
        ]
        for conn in conns:
            conn.sendall(slow_body)
        for _ in range(6):
            time.sleep(0.5)
            for conn in conns:
                conn.sendall(b" ")
            response = requests.get(production_server + "/healthz", timeout=3)
            assert response.status_code == 200
            assert response.text == "ok\n"
        event = requests.post(
            production_server + "/",
            data=json.dumps(payloads.classic_slash(" customer")),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=10,
        )
        assert event.status_code == 200, event.text
        assert event.headers["Server"] == "waitress"
        assert "Customer Issues" in event.text


def test_a_body_over_the_limit_is_refused_before_it_is_read(production_server):
    """waitress answers 413 on the length alone, before the app (and its token check) sees the request."""
    headers = {"Content-Type": "application/json", "Content-Length": str(2 * 1024 * 1024)}
    with socket.create_connection(("127.0.0.1", int(production_server.rsplit(":", 1)[1])), timeout=5) as conn:
        conn.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        conn.sendall("".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode() + b"\r\n")
        status = conn.recv(200).split(b"\r\n", 1)[0]
    assert status == b"HTTP/1.1 413 Request Entity Too Large"


def test_the_entrypoint_on_a_port_in_use_says_so_once_and_exits(tmp_path, token_factory):
    config = make_config(tmp_path, audience="123", certs_url=token_factory.certs_url)
    env = {**os.environ, "SCOREBOT_CONFIG": str(config.path), "SCOREBOT_STORE": f"sqlite:///{tmp_path / 'p.db'}"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            entrypoint_on_loopback(port), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
        )
    assert done.returncode == 2
    assert done.stderr.count(f"cannot listen on 127.0.0.1 port {port}: Address already in use") == 1
    assert "Traceback" not in done.stderr
