"""The web server: waitress with one set of settings, for app.yaml's entrypoint (`main.py`), `serve` and the demo.

waitress reads each request whole (headers and body) on its own event loop
before one of its worker threads sees it, so a client that sends slowly holds
a connection (at most ``connection_limit``; idle ones closed after
``channel_timeout`` seconds), never a thread; bodies over
``max_request_body_size`` are refused before they are buffered.
``bench/slow_clients.py`` measures it against gunicorn and granian.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
from collections.abc import Sequence
from types import MappingProxyType

import waitress
from flask import Flask

from bot.chat.web import MAX_BODY_BYTES

log = logging.getLogger(__name__)

WAITRESS_SETTINGS = MappingProxyType(
    {"threads": 16, "connection_limit": 200, "channel_timeout": 60, "max_request_body_size": MAX_BODY_BYTES}
)
"""The one place the server's settings are written: app.yaml's entrypoint and `serve` both run `serve`."""


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port``; raises `OSError` when the address cannot be listened on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


def serve(app: Flask, listener: socket.socket) -> None:
    """Serve ``app`` with waitress (`WAITRESS_SETTINGS`) on ``listener`` until the process is stopped."""
    server = waitress.create_server(app, sockets=[listener], **WAITRESS_SETTINGS)
    try:
        server.run()
    finally:
        server.close()


def run(app: Flask, argv: Sequence[str]) -> int:
    """``main.py --host HOST --port PORT``: serve ``app``; 2 after one line if the address cannot be listened on."""
    parser = argparse.ArgumentParser(prog="main.py", description="Serve Scorebot's app with waitress.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("PORT", "8080")), help="default $PORT, else 8080"
    )
    args = parser.parse_args(argv)
    try:
        listener = listen(args.host, args.port)
    except OSError as exc:
        log.critical("cannot listen on %s port %d: %s", args.host, args.port, reason(exc))
        return 2
    serve(app, listener)
    return 0


def reason(exc: OSError) -> str:
    """Why a socket could not listen, in words ("Address already in use")."""
    return os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or str(exc)
