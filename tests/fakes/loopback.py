"""The plumbing every loopback fake shares: a threaded HTTP server on 127.0.0.1, port 0.

A handler reaches the object it stands in for as ``self.server.owner`` (annotate
``server: LoopbackServer[Owner]`` on the handler class) and waits on
``self.server.stopping`` for slow answers, so that `close` wakes them.
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

OwnerT = TypeVar("OwnerT")


class LoopbackServer(ThreadingHTTPServer, Generic[OwnerT]):
    """Serves ``handler`` from a daemon thread until `close` (or the end of a ``with`` block)."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], owner: OwnerT | None = None) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.owner = cast(OwnerT, owner)
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Wake slow answers, stop serving and release the port."""
        self.stopping.set()
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (timed out, was killed) is not a failure of the fake; anything else is reported."""
        if not isinstance(sys.exception(), OSError):
            super().handle_error(request, client_address)

    def __enter__(self) -> LoopbackServer[OwnerT]:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
