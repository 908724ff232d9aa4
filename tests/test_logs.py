"""Log records: secrets hidden, each field escaped and bounded, whichever library writes them."""

import logging

import pytest
import requests

from bot.logs import install_log_cleaning, redact


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
    install_log_cleaning()
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


def test_no_field_can_forge_a_log_line_or_make_a_huge_one():
    from io import StringIO

    from bot.app import create_app
    from bot.config import load_config
    from bot.logs import MAX_FIELD
    from bot.services import build_services

    stream = StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        client = create_app(services=build_services(load_config(), store_url="sqlite://"), allow_unverified=True)
        forged = "spaces/AAAA\nCRITICAL bot: forged line\r\x1b[2K"
        body = {"type": "X" * 200_000, "space": {"name": forged}, "message": {"text": "hi", "space": {"name": forged}}}
        assert client.test_client().post("/", json=body).status_code == 200
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    lines = stream.getvalue().splitlines()
    assert not any(line.startswith("CRITICAL") for line in lines)
    assert any("spaces/AAAA\\nCRITICAL bot: forged line\\r\\x1b[2K" in line for line in lines)
    assert any("X" * MAX_FIELD + "…(+198000 chars)" in line for line in lines)
    assert max(len(line) for line in lines) < 3 * MAX_FIELD


def test_fields_are_escaped_for_str_and_repr_alike_and_numbers_still_format(caplog):
    caplog.set_level(logging.INFO)
    log = logging.getLogger("bot.test")
    log.info("%s | %r | %d items in %.1f s", "a\nb", "c\td", 3, 1.25)
    log.info("%(space)s asked", {"space": "x\ny"})
    log.info("no arguments\nbut data")
    log.info("%s and %s", "only one")  # a template that does not fit: no exception, both shown
    messages = [record.getMessage() for record in caplog.records]
    assert messages[:3] == ["a\\nb | 'c\\\\td' | 3 items in 1.2 s", "x\\ny asked", "no arguments\\nbut data"]
    assert messages[3] == "%s and %s ('only one',)"
