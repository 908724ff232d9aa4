"""No secret Scorebot knows leaves the process or enters the store, even when a peer echoes it back.

A fake Chat (webhook and Chat API) and a fake Vtiger repeat the credentials
they were sent in their error messages; every channel is then searched for
every secret value: the CLI's stdout and stderr, log records at DEBUG, Flask's
replies (the `/score` card, ``GET /tasks/tick``), and every column of every
table of the SQLite store, and the store's files byte for byte.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from bot.__main__ import main
from bot.app import create_app
from bot.config import load_config
from bot.secrets import MIN_LENGTH, SecretRegistry, register, register_private_key, scrub
from bot.services import build_services
from tests.fakes.chat import ACCESS_TOKEN, FakeChat, write_config
from tests.fakes.vtiger import FakeVtiger
from tests.payloads import classic_slash
from tests.tokens import signing_key

WEBHOOK_KEY = "AIzaSyEchoKey-7731"
WEBHOOK_TOKEN = "EchoTok3n-9f2cd1"
ACCESS_KEY = "Vt1gerAccessKey-5e8a"


@pytest.fixture
def chat() -> Iterator[FakeChat]:
    fake = FakeChat()
    yield fake
    fake.close()


@pytest.fixture
def vtiger() -> Iterator[FakeVtiger]:
    fake = FakeVtiger(access_key=ACCESS_KEY)
    yield fake
    fake.close()


def echoing_config(tmp_path: Path, chat: FakeChat, vtiger: FakeVtiger, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One team counting Vtiger tasks, posting by webhook, Chat API and log; secrets from the environment."""
    webhook = [{"type": "webhook", "url": "${CRM_WEBHOOK_URL}"}]
    targets = [*webhook, {"type": "chat_api", "space": "spaces/ECHOAPI"}, {"type": "log"}]
    path = write_config(tmp_path, chat, {"crm": targets}, team_options={"crm": {"spaces": ["spaces/CRM"]}})
    data = yaml.safe_load(path.read_text())
    data["sources"]["crm"] = {
        "type": "vtiger",
        "url": vtiger.url,
        "username": vtiger.username,
        "access_key": "${VTIGER_ACCESS_KEY}",
    }
    kpi = data["teams"][0]["kpis"][0]
    kpi.update(count={"module": "Calendar"}, category="taskpriority", weights={"High": 5, "Low": 1})
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("CRM_WEBHOOK_URL", webhook_url(chat))
    monkeypatch.setenv("VTIGER_ACCESS_KEY", ACCESS_KEY)
    return path


def webhook_url(chat: FakeChat) -> str:
    """The echoing Space's webhook URL, with its key and token."""
    return f"{chat.url}v1/spaces/ECHO/messages?key={WEBHOOK_KEY}&token={WEBHOOK_TOKEN}"


def store_text(folder: Path) -> str:
    """Every value of every column of every table of the SQLite store, then its files as bytes."""
    parts = []
    with sqlite3.connect(folder / "store.db") as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"slot_runs", "deliveries", "outbox", "readings"} <= set(tables)
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 (names from sqlite_master)
                parts.extend(str(value) for value in row)
    for file in folder.glob("store.db*"):
        parts.append(file.read_bytes().decode("latin-1"))
    return "\n".join(parts)


def test_secrets_echoed_by_peers_reach_no_output_and_no_table(
    tmp_path: Path,
    chat: FakeChat,
    vtiger: FakeVtiger,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    config = str(echoing_config(tmp_path, chat, vtiger, monkeypatch))
    vtiger.add("Calendar", 2, taskpriority="High", taskstatus="Open")
    vtiger.echo_secrets = True
    chat.echo_secrets("spaces/ECHO")
    chat.echo_secrets("spaces/ECHOAPI")
    out: list[str] = []

    def cli(*args: str) -> int:
        code = main(["--config", config, *args])
        captured = capsys.readouterr()
        out.extend([captured.out, captured.err])
        return code

    assert cli("check") == 1
    assert cli("tick", "--now", "2026-11-09T09:01:30Z", "--force") == 0  # the 09:01 slot waits for Vtiger
    assert cli("send", "crm") == 1  # the stale card, refused by both Spaces

    monkeypatch.setenv("GAE_ENV", "standard")
    services = build_services(load_config(config), clock=lambda: datetime(2026, 11, 9, 9, 41, 30, tzinfo=UTC))
    client = create_app(services=services, allow_unverified=True).test_client()
    card = client.post("/", json=classic_slash(space={"name": "spaces/CRM", "type": "ROOM"}))
    vtiger.echo_secrets = False  # Vtiger answers again: the ticks post, and both Spaces refuse
    assert cli("tick", "--now", "2026-11-09T09:31:30Z", "--force") == 1
    tick = client.get("/tasks/tick", headers={"X-Appengine-Cron": "true"})
    assert cli("history", "crm") == 0
    replies = [card.get_data(as_text=True), tick.get_data(as_text=True)]

    # The peers did echo the secrets, and the failures are named by kind.
    assert any(WEBHOOK_TOKEN in message for message in chat.echoed)
    assert any(ACCESS_TOKEN in message for message in chat.echoed)
    assert "Vtiger refused the query on Calendar (QUERY_SYNTAX_ERROR)" in "".join(out)
    assert "Vtiger refused the query on Calendar (QUERY_SYNTAX_ERROR)" in replies[0]
    assert "webhook to spaces/ECHO: HTTP 403 (PERMISSION_DENIED)" in replies[1]
    assert "Chat API post to spaces/ECHOAPI: HTTP 403 (PERMISSION_DENIED)" in replies[1]
    assert "Parsing failed" not in "".join(out + replies)  # Vtiger's free text stays in the operator's log

    sessions = {seen.session for seen in vtiger.seen if seen.session}
    assert sessions
    assert any(session in message for message in vtiger.echoed for session in sessions)
    key = signing_key(0).private_pem
    secrets = {WEBHOOK_KEY, WEBHOOK_TOKEN, ACCESS_KEY, ACCESS_TOKEN, webhook_url(chat), *sessions, "test-key", key}
    secrets |= {line for line in key.splitlines() if not line.startswith("-----")}
    channels = {
        "cli": "\n".join(out),
        "logs": caplog.text,
        "replies": "\n".join(replies),
        "store": store_text(tmp_path),
    }
    assert "Vtiger answered query with QUERY_SYNTAX_ERROR: Parsing failed for session ***" in channels["logs"]
    for name, text in channels.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} in {name}"
            assert quote(secret, safe="") not in text, f"{secret!r} URL-encoded in {name}"


# --- the registry ------------------------------------------------------------------------------


def test_values_are_hidden_in_every_form_and_a_url_in_its_parts() -> None:
    registry = SecretRegistry()
    assert registry.register_url("https://chat.example/v1/spaces/A/messages?key=k3y-AAAAAA&token=t0k+en/BBBB")
    assert registry.register('p@ss"w0rd')
    text = (
        "POST https://chat.example/v1/spaces/A/messages?key=k3y-AAAAAA&token=t0k+en/BBBB; "
        'key k3y-AAAAAA token t0k%2Ben%2FBBBB token t0k+en/BBBB; json {"password": "p@ss\\"w0rd"}'
    )
    assert registry.scrub(text) == 'POST ***; key *** token *** token ***; json {"password": "***"}'


def test_short_values_are_refused_so_ordinary_text_is_left_alone() -> None:
    registry = SecretRegistry()
    assert not registry.register("")
    assert not registry.register(None)
    assert not registry.register("a" * (MIN_LENGTH - 1))
    assert registry.register("b" * MIN_LENGTH)
    assert registry.scrub("a" * 20) == "a" * 20
    assert len(registry.scrub("x" + "b" * MIN_LENGTH)) < 1 + MIN_LENGTH  # never longer than the text it hides


def test_a_short_secret_in_the_config_is_named_in_a_warning(
    tmp_path: Path,
    chat: FakeChat,
    vtiger: FakeVtiger,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = echoing_config(tmp_path, chat, vtiger, monkeypatch)
    monkeypatch.setenv("VTIGER_ACCESS_KEY", "k3y")
    load_config(config)
    assert "sources.crm.access_key: the secret is shorter than 6 characters" in caplog.text


def test_issued_values_are_kept_up_to_a_bound() -> None:
    registry = SecretRegistry()
    sessions = [f"session-{n:04d}" for n in range(300)]
    for session in sessions:
        registry.register(session, issued=True)
    assert registry.scrub(sessions[-1]) == "***"
    assert registry.scrub(sessions[0]) == sessions[0]  # the oldest were forgotten


def test_service_account_key_material_is_hidden_line_by_line() -> None:
    key = signing_key(0).private_pem
    register_private_key("0123456789abcdef", key)
    lines = [line for line in key.splitlines() if not line.startswith("-----")]
    assert scrub(f"key 0123456789abcdef: {lines[3]}") == "key ***: ***"
    as_json = scrub(key.replace("\n", "\\n"))  # as a JSON string holds it
    assert not any(line in as_json for line in lines)


def test_a_secret_in_a_logged_exception_is_hidden(caplog: pytest.LogCaptureFixture) -> None:
    register("Tr4ceback-Secret")
    try:
        raise ValueError("refused Tr4ceback-Secret")
    except ValueError:
        logging.getLogger("bot.test").exception("failed")
    assert "refused ***" in caplog.text
    assert "Tr4ceback-Secret" not in caplog.text


# --- a store URL that does not parse ------------------------------------------------------------

BAD_STORES = [
    ("postgresql://scorebot:p@ss:Hunter2-db@127.0.0.1:5432/db", "postgresql://scorebot:***@127.0.0.1:5432/db"),
    ("postgresql://scorebot:Hunter2@db@127.0.0.1/db", "postgresql://scorebot:***@127.0.0.1/db"),
    ("postgresql://scorebot:Hunter2-db@127.0.0.1:port/db", "postgresql://scorebot:***@127.0.0.1:port/db"),
]


@pytest.mark.parametrize(("url", "shown"), BAD_STORES)
def test_an_unparsable_store_url_is_one_line_with_the_password_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, shown: str
) -> None:
    monkeypatch.setenv("SCOREBOT_STORE", url)
    assert main(["check"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: $SCOREBOT_STORE: not a database URL: {shown} (")
    assert captured.err.count("\n") == 1
    assert "Hunter2" not in captured.out + captured.err


def test_the_production_server_stops_with_one_line_for_an_unparsable_store_url(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    config = yaml.safe_load((root / "config" / "demo.yaml").read_text())
    config["chat"] = {"verify": True, "audience": "123456789012"}
    config["sources"]["demo"]["path"] = str(root / "config" / "demo-issues.csv")
    (tmp_path / "production.yaml").write_text(yaml.safe_dump(config))
    env = {
        "PATH": os.environ["PATH"],
        "SCOREBOT_CONFIG": str(tmp_path / "production.yaml"),
        "SCOREBOT_STORE": BAD_STORES[0][0],
    }
    server = [sys.executable, "-m", "waitress", "--listen=127.0.0.1:0", "main:app"]  # app.yaml's server
    done = subprocess.run(server, cwd=root, env=env, capture_output=True, text=True, timeout=60, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 3
    assert output.count("cannot start: $SCOREBOT_STORE: not a database URL: " + BAD_STORES[0][1]) == 1
    assert "Traceback" not in output
    assert "Hunter2" not in output
