"""Secrets in URLs never reach a log line, whichever library writes it."""

import logging

import pytest
import requests

from bot.logs import protect_library_loggers, redact


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        (
            "POST /v1/spaces/A/messages?key=AIzaKEY&token=TOK3N HTTP/1.1",
            "POST /v1/spaces/A/messages?key=[redacted]&token=[redacted] HTTP/1.1",
        ),
        ("GET /webservice.php?operation=query&sessionName=abc123&query=x", None),
        ("GET /api?api_key=s3cr3t&page=2", "GET /api?api_key=[redacted]&page=2"),
        ("GET /api?page=2&limit=100", "GET /api?page=2&limit=100"),
    ],
)
def test_redact(text, clean):
    out = redact(text)
    if clean is not None:
        assert out == clean
    for secret in ("AIzaKEY", "TOK3N", "abc123", "s3cr3t"):
        assert secret not in out


def test_urllib3_request_lines_are_redacted(chat_secret_server, caplog):
    protect_library_loggers()
    with caplog.at_level(logging.DEBUG, logger="urllib3"):
        requests.post(chat_secret_server + "/v1/spaces/A/messages?key=AIzaSECRET&token=TOKENSECRET", json={}, timeout=5)
    assert "/v1/spaces/A/messages?key=[redacted]&token=[redacted]" in caplog.text
    assert "SECRET" not in caplog.text


@pytest.fixture
def chat_secret_server():
    from http.server import BaseHTTPRequestHandler

    from tests.fakes.loopback import LoopbackServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    with LoopbackServer(Handler) as server:
        yield server.base_url


def test_secrets_in_prose_are_redacted_too():
    assert (
        redact("refused sessionName=abc123 for access_key=k3y")
        == "refused sessionName=[redacted] for access_key=[redacted]"
    )
