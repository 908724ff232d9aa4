"""The command line: preview, check and serve, as a user runs them."""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
import requests
import yaml

from bot.__main__ import build_parser, main
from bot.config import DEMO_CONFIG, is_loopback
from tests.chat_schema import validate_message


@pytest.fixture
def demo_copy(tmp_path, monkeypatch):
    for name in ("demo.yaml", "demo-issues.csv"):
        shutil.copy(DEMO_CONFIG.parent / name, tmp_path / name)
    monkeypatch.setenv("SCOREBOT_STORE", f"sqlite:///{tmp_path / 'cli.db'}")
    return tmp_path / "demo.yaml"


def test_preview_prints_the_card_as_text(demo_copy, capsys):
    assert main(["--config", str(demo_copy), "preview", "customer"]) == 0
    out = capsys.readouterr().out
    assert "Customer Issues" in out
    assert "Critical: 4 × 10 = 40" in out
    assert "[Refresh]  [Open in CRM]" in out


def test_preview_json_is_the_exact_message(demo_copy, capsys):
    assert main(["preview", "security", "--format", "json", "--config", str(demo_copy)]) == 0
    message = json.loads(capsys.readouterr().out)
    assert validate_message(message) == []
    assert message["cardsV2"][0]["card"]["header"]["title"] == "🟢 Security"


def test_preview_of_an_unknown_team(demo_copy, capsys):
    assert main(["--config", str(demo_copy), "preview", "nobody"]) == 2
    assert "teams: customer, performance, security" in capsys.readouterr().err


def test_check_reads_every_kpi(demo_copy, capsys):
    assert main(["--config", str(demo_copy), "check"]) == 0
    out = capsys.readouterr().out
    assert "ok   source demo: demo-issues.csv: 74 records" in out
    assert "ok   customer/open-issues (source demo): index 85 (bad)" in out
    assert "ok   performance/search-p95 (source demo, in ms): value 238 ms (good)" in out
    assert "ok   security/past-sla (source demo, open over 30 days): index 44 (good)" in out
    assert out.count("plan: read file; 1 calls;") == 6, "each KPI, whatever its kind, with its plan and calls"


def test_check_fails_when_a_source_fails(demo_copy, capsys):
    (demo_copy.parent / "demo-issues.csv").unlink()
    assert main(["--config", str(demo_copy), "check"]) == 1
    out = capsys.readouterr().out
    assert "FAIL source demo: cannot read demo-issues.csv" in out
    assert "FAIL customer/open-issues (source demo): cannot read demo-issues.csv" in out


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("example.com", False),
    ],
)
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def run_bot(*args, **kwargs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **kwargs.pop("env", {})}
    return subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def test_serve_refuses_verify_false_off_loopback(demo_copy):
    process = run_bot("serve", "--host", "0.0.0.0", "--config", str(demo_copy))
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "serve listens only on a loopback address" in out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_the_demo_on_loopback(demo_copy):
    port = free_port()
    process = run_bot("serve", "--port", str(port), "--config", str(demo_copy))
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        body = {
            "type": "MESSAGE",
            "space": {"name": "spaces/DEMO-CUSTOMER"},
            "message": {"slashCommand": {"commandId": "1"}},
        }
        reply = requests.post(base, json=body, timeout=10).json()
        assert reply["cardsV2"][0]["card"]["header"]["title"] == "🔴 Customer Issues"
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=30)
    assert "request verification is OFF" in out


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("not a url", "$SCOREBOT_STORE: not a database URL"),
        ("mysql://scorebot@127.0.0.1/db", "only sqlite:///FILE and postgresql://... stores are supported"),
        (
            "postgresql://scorebot:hunter2@127.0.0.1:1/db",
            "cannot open the store at postgresql://scorebot:***@127.0.0.1:1/db",
        ),
        ("sqlite:////nonexistent-folder/x.db", "cannot open the store at sqlite:////nonexistent-folder/x.db"),
    ],
)
def test_a_bad_store_is_a_clear_error(demo_copy, monkeypatch, capsys, url, problem):
    monkeypatch.setenv("SCOREBOT_STORE", url)
    assert main(["--config", str(demo_copy), "check"]) == 2
    err = capsys.readouterr().err
    assert problem in err
    assert "hunter2" not in err
    assert "Traceback" not in err


def test_check_signs_in_to_sources_no_kpi_uses(demo_copy, capsys):
    data = yaml.safe_load(demo_copy.read_text())
    data["sources"]["crm"] = {"type": "vtiger", "url": "http://127.0.0.1:1", "username": "scorebot", "access_key": "k"}
    demo_copy.write_text(yaml.safe_dump(data))
    assert main(["--config", str(demo_copy), "check"]) == 1
    out = capsys.readouterr().out
    assert "FAIL source crm: cannot reach Vtiger at 127.0.0.1" in out
    assert out.count("ok   ") == 7  # the file source and its six KPIs


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["schedule", "--count", "0"], "argument --count: must be 1 or more, got 0"),
        (["history", "customer", "--limit", "-1"], "argument --limit: must be 1 or more, got -1"),
        (["history", "customer", "--limit", "ten"], "argument --limit: not a whole number: 'ten'"),
    ],
)
def test_counts_and_limits_must_be_positive(demo_copy, capsys, args, problem):
    with pytest.raises(SystemExit, match=r"^2$"):
        main(["--config", str(demo_copy), *args])
    err = capsys.readouterr().err
    assert problem in err
    assert "Traceback" not in err


def test_every_option_has_a_description():
    parser, _ = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parsers = {"python -m bot": parser, **subparsers.choices}
    undescribed = [
        f"{name} {action.dest}"
        for name, each in parsers.items()
        for action in each._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert undescribed == []
    assert all(action.help for action in subparsers._choices_actions)


def test_a_store_error_names_the_config_file(demo_copy, monkeypatch, capsys):
    monkeypatch.delenv("SCOREBOT_STORE")
    data = yaml.safe_load(demo_copy.read_text())
    data["store"] = "sqlite:////nonexistent-folder/x.db"
    demo_copy.write_text(yaml.safe_dump(data))
    assert main(["--config", str(demo_copy), "check"]) == 2
    assert f"error: {demo_copy.resolve()}: store: cannot open the store at" in capsys.readouterr().err


def test_serve_on_a_port_in_use_says_so_once_and_exits(demo_copy):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = run_bot("serve", "--port", str(port), "--config", str(demo_copy))
        out, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert out.count(f"cannot listen on 127.0.0.1 port {port}: Address already in use") == 1
    assert out.count("in use") == 1
    assert "Scorebot on http" not in out
    assert "Traceback" not in out


def test_the_demo_console_has_one_line_per_post_and_history_has_the_card(demo_copy):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(demo_copy), "tick", "--now", "2026-11-09T15:00:30Z", "--force"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    posts = [line for line in done.stderr.splitlines() if "scheduled post for customer" in line]
    assert len(posts) == 1  # the demo's every-minute slot 15:00; 14:59 is superseded (no burst)
    assert all("Open customer issues: 85 (target 40)" in line for line in posts)
    assert "Critical: 4 × 10 = 40" not in done.stderr
    assert "[Refresh]" not in done.stderr

    history = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(demo_copy), "history", "customer"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert history.returncode == 0, history.stderr
    outbox = history.stdout.split("outbox (")[1]
    assert outbox.count("slot 2026-11-09") == 1
    assert "Critical: 4 × 10 = 40" in outbox
    assert "[Refresh]  [Open in CRM]" in outbox
