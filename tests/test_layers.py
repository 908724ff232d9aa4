"""The layers as a rule: import-linter checks the contracts in pyproject.toml, and a broken one is noticed.

The contracts: scoring, the sources and the store never import a face (chat,
schedule, pages) or the handlers; the three faces do not import each other;
and the layers run one way, from the entry point down to scoring.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "scoring")
FORBIDDEN = "Data and scoring never import a face or the handlers"
INDEPENDENT = "Chat, the schedule and the pages do not import each other"
LAYERS = "Layers from the entry point down to scoring"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the tree at ``cwd`` (its pyproject.toml, its packages), with this interpreter."""
    script = Path(sys.executable).parent / "lint-imports"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, str(script), "--no-cache", "--no-logo"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_tree_keeps_every_contract():
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    for contract in (FORBIDDEN, INDEPENDENT, LAYERS):
        assert f"{contract} KEPT" in run.stdout
    assert "3 kept, 0 broken" in run.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken", "kept"),
    [
        # Scoring reaching up to a handler breaks every contract: through scoring, each face now reaches the others.
        ("scoring/__init__.py", "import handlers.score", {FORBIDDEN, INDEPENDENT, LAYERS}, set()),
        # The status page borrowing Chat's event parsing: one face importing another.
        ("bot/pages/status.py", "import bot.chat.events", {INDEPENDENT}, {FORBIDDEN}),
        # The reports reaching up to the services record: only the layers see it.
        ("bot/reports.py", "import bot.context", {LAYERS}, {FORBIDDEN, INDEPENDENT}),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tmp_path, module, line, broken, kept):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # the forbidden import\n")

    run = lint_imports(tmp_path)

    assert run.returncode == 1, run.stdout + run.stderr
    for contract in broken:
        assert f"{contract} BROKEN" in run.stdout
    for contract in kept:
        assert f"{contract} KEPT" in run.stdout
    importer = module.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    imported = line.removeprefix("import ")
    assert f"{importer} -> {imported}" in run.stdout
